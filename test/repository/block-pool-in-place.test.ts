// The block worker pool works in place on blocks in shared memory (BlockBuffers) and through its
// copy slots on other buffers: both give byte-identical objects, leave the input untouched, decode
// into the caller's block, and report corrupt objects with REPO_BLOCK_CORRUPT.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomFillSync } from 'node:crypto';
import { BlockBuffers } from '../../src/disk/index.ts';
import { BlockWorkerPool } from '../../src/repository/block-pool.ts';
import {
  BLOCK_HEADER_BYTES,
  RepositoryError,
  blockKey,
  decodeBlockObject,
  hashBlock,
} from '../../src/repository/index.ts';

const capacityBytes = 256 * 1024;
/** The repository defaults' codecs, at zstd level 1. */
const ZSTD_BLAKE3 = { compression: { codec: 'zstd', level: 1 }, hash: 'blake3' } as const;

function samples(): { name: string; data: Buffer }[] {
  const random = randomFillSync(Buffer.alloc(capacityBytes));
  const text = Buffer.alloc(capacityBytes);
  for (let at = 0; at < text.length; at += 1) text[at] = 97 + ((at * 7) % 13);
  const mixed = Buffer.from(text);
  randomFillSync(mixed, 0, capacityBytes / 2);
  return [
    { name: 'incompressible', data: random },
    { name: 'compressible', data: text },
    { name: 'half compressible', data: mixed },
    { name: 'short last block', data: text.subarray(0, 12_345) },
  ];
}

function shared(buffers: BlockBuffers, data: Buffer): Buffer {
  const copy = buffers.take(data.length);
  data.copy(copy);
  assert.ok(copy.buffer instanceof SharedArrayBuffer);
  return copy;
}

test('in place and through slots: identical objects, input untouched, decoded into the block', async () => {
  const pool = new BlockWorkerPool(2, ZSTD_BLAKE3, capacityBytes);
  const buffers = new BlockBuffers(capacityBytes);
  try {
    for (const { name, data } of samples()) {
      const input = shared(buffers, data);
      const inPlace = await pool.encode(input);
      assert.ok(input.equals(data), `${name}: the encoded block was modified`);
      const viaSlots = await pool.encode(Buffer.from(data));
      assert.ok(inPlace.object.equals(viaSlots.object), `${name}: objects differ`);
      assert.ok(inPlace.hash.equals(viaSlots.hash));
      assert.ok(inPlace.hash.equals(hashBlock(data, 'blake3')), `${name}: not the BLAKE3 digest`);
      if (name === 'incompressible') {
        assert.equal(inPlace.object.length, BLOCK_HEADER_BYTES + data.length, 'stored as is');
      }
      const key = blockKey('vm', 'chain', inPlace.hash);
      assert.ok(
        decodeBlockObject(key, inPlace.object, inPlace.hash, data.length, 'blake3').equals(data),
      );
      // Decoded in place into a shared block, and through the slots into an ordinary one.
      const objectCopy = pool.objectBuffer(inPlace.object.length);
      inPlace.object.copy(objectCopy);
      const into = buffers.take(data.length);
      into.fill(0xee);
      const plain = await pool.decode(key, objectCopy, inPlace.hash, data.length, into);
      assert.equal(plain, into, `${name}: not decoded into the given block`);
      assert.ok(plain.equals(data), `${name}: decoded in place differs`);
      const ordinary = Buffer.alloc(data.length, 0xee);
      const viaSlotsPlain = await pool.decode(key, objectCopy, inPlace.hash, data.length, ordinary);
      assert.ok(viaSlotsPlain.equals(data), `${name}: decoded through slots differs`);
      pool.recycleObject(inPlace.object);
      pool.recycleObject(objectCopy);
      buffers.give(into);
    }
  } finally {
    await pool.close();
  }
});

test('many objects out at once: encoding goes on through the slots, every object intact', async () => {
  const pool = new BlockWorkerPool(2, ZSTD_BLAKE3, capacityBytes);
  const buffers = new BlockBuffers(capacityBytes, 64);
  try {
    const blocks = Array.from({ length: 40 }, (_, i) => {
      const block = buffers.take(capacityBytes);
      block.fill(i);
      randomFillSync(block, 0, (i % 4) * 1024);
      return block;
    });
    // None recycled: past the object pool's shared budget, objects are ordinary memory.
    const encoded = await Promise.all(blocks.map((block) => pool.encode(block)));
    assert.ok(encoded.some(({ object }) => !(object.buffer instanceof SharedArrayBuffer)));
    encoded.forEach(({ hash, object }, i) => {
      const key = blockKey('vm', 'chain', hash);
      const block = blocks[i] ?? assert.fail();
      assert.ok(
        decodeBlockObject(key, object, hash, capacityBytes, 'blake3').equals(block),
        `block ${i}`,
      );
    });
  } finally {
    await pool.close();
  }
});

test('a corrupt object decoded in place is REPO_BLOCK_CORRUPT naming it', async () => {
  const pool = new BlockWorkerPool(1, ZSTD_BLAKE3, capacityBytes);
  const buffers = new BlockBuffers(capacityBytes);
  try {
    for (const { name, data } of samples()) {
      const { hash, object } = await pool.encode(shared(buffers, data));
      const key = blockKey('vm', 'chain', hash);
      const corrupt = pool.objectBuffer(object.length);
      object.copy(corrupt);
      const at = BLOCK_HEADER_BYTES + Math.floor((object.length - BLOCK_HEADER_BYTES) / 2);
      corrupt[at] = (corrupt[at] ?? 0) ^ 0x5a;
      const into = buffers.take(data.length);
      await assert.rejects(
        pool.decode(key, corrupt, hash, data.length, into),
        (error: unknown) =>
          error instanceof RepositoryError &&
          error.code === 'REPO_BLOCK_CORRUPT' &&
          error.message.includes(key),
        name,
      );
      pool.recycleObject(object);
    }
  } finally {
    await pool.close();
  }
});

test('a sha256 repository pool hashes with sha256 on both paths', async () => {
  const pool = new BlockWorkerPool(
    1,
    { compression: { codec: 'none' }, hash: 'sha256' },
    capacityBytes,
  );
  const buffers = new BlockBuffers(capacityBytes);
  try {
    for (const { name, data } of samples()) {
      const expected = createHash('sha256').update(data).digest();
      assert.ok(
        (await pool.encode(shared(buffers, data))).hash.equals(expected),
        `${name}: in place`,
      );
      assert.ok((await pool.encode(Buffer.from(data))).hash.equals(expected), `${name}: slots`);
    }
  } finally {
    await pool.close();
  }
});
