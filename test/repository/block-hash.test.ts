// The block hash algorithms are the real ones: published BLAKE3 and SHA-256 test vectors, and the
// digest does not depend on the memory the block lives in (shared or not, any offset).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  BLOCK_HASH_NAMES,
  hashAlgorithmCode,
  hashAlgorithmOfCode,
  hashBlock,
} from '../../src/repository/index.ts';

test('BLAKE3 and SHA-256 give their published digests', () => {
  // BLAKE3 reference test vectors (empty input; "abc" as in the BLAKE3 paper's examples).
  assert.equal(
    hashBlock(Buffer.alloc(0), 'blake3').toString('hex'),
    'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262',
  );
  assert.equal(
    hashBlock(Buffer.from('abc'), 'blake3').toString('hex'),
    '6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85',
  );
  assert.equal(
    hashBlock(Buffer.from('abc'), 'sha256').toString('hex'),
    'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
  );
});

test('digests do not depend on where the bytes live', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 70_000 }),
      fc.nat(63),
      fc.constantFrom(...BLOCK_HASH_NAMES),
      (bytes, offset, name) => {
        const memory = new SharedArrayBuffer(bytes.length + offset);
        const view = Buffer.from(memory, offset, bytes.length);
        view.set(bytes);
        const digest = hashBlock(view, name);
        assert.equal(digest.length, 32);
        assert.ok(digest.equals(hashBlock(Buffer.from(bytes), name)));
      },
    ),
    { numRuns: 200 },
  );
});

test('index header codes map both ways, unknown codes are refused', () => {
  for (const name of BLOCK_HASH_NAMES)
    assert.equal(hashAlgorithmOfCode(hashAlgorithmCode(name)), name);
  assert.equal(hashAlgorithmOfCode(0), undefined);
  assert.equal(hashAlgorithmOfCode(3), undefined);
});
