/**
 * The repository is untrusted input: random, truncated or bit-flipped index and block objects,
 * and malformed manifests and configs, give typed REPO_* errors naming the object (never a crash,
 * a hang or garbage data); verify reports them as findings; GC deletes nothing it cannot judge.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { VmdeltaError } from '../../src/core/index.ts';
import {
  BlockEncoder,
  collectGarbage,
  decodeBlockObject,
  decodeIndex,
  encodeIndex,
  hashBlock,
  openPointDisk,
  parsePointManifest,
  parseRepositoryConfig,
  Repository,
  RepositoryError,
  verifyRepository,
  writeBackup,
  type ChainIndex,
} from '../../src/repository/index.ts';
import { fullSource, readImage, storeFactories } from './helpers.ts';

const BLOCK = 1024;

function isCode(code: string, key?: string) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof RepositoryError, `expected a RepositoryError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    if (key !== undefined) assert.equal(error.details['key'], key);
    return true;
  };
}

const sampleIndex: ChainIndex = {
  kind: 'delta',
  chainId: 'ab'.repeat(16),
  seq: 3,
  baseSeq: 1,
  blockSizeBytes: BLOCK,
  diskSizeBytes: BLOCK * 100,
  hash: 'blake3',
  blockIndexes: Uint32Array.from([0, 5, 99]),
  hashes: Buffer.concat([
    hashBlock(Buffer.from('a'), 'blake3'),
    Buffer.alloc(32),
    hashBlock(Buffer.from('b'), 'blake3'),
  ]),
};

test('index codec round-trips, and any damage is REPO_INDEX_CORRUPT', () => {
  const encoded = encodeIndex(sampleIndex);
  assert.deepEqual(decodeIndex('k', encoded), sampleIndex);
  const sha256Index: ChainIndex = { ...sampleIndex, hash: 'sha256' };
  assert.deepEqual(decodeIndex('k', encodeIndex(sha256Index)), sha256Index);
  assert.notDeepEqual(encodeIndex(sha256Index), encoded, 'the header names the algorithm');
  // Every single-byte change of a valid index is detected (checksum, magic, fields).
  for (let at = 0; at < encoded.length; at += 1) {
    const copy = Buffer.from(encoded);
    copy[at] = (copy[at] ?? 0) ^ 0x40;
    assert.throws(
      () => decodeIndex('idx', copy),
      isCode('REPO_INDEX_CORRUPT', 'idx'),
      `byte ${at}`,
    );
  }
  fc.assert(
    fc.property(
      fc.oneof(
        fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
        fc.nat(encoded.length - 1).map((length) => encoded.subarray(0, length)),
        fc.tuple(fc.nat(encoded.length - 1), fc.integer({ min: 1, max: 255 })).map(([at, xor]) => {
          const copy = Buffer.from(encoded);
          copy[at] = (copy[at] ?? 0) ^ xor;
          return copy;
        }),
      ),
      (bytes) => {
        assert.throws(() => decodeIndex('idx', bytes), isCode('REPO_INDEX_CORRUPT', 'idx'));
      },
    ),
    { numRuns: 2000 },
  );
});

test('block codec round-trips, and any damage is REPO_BLOCK_CORRUPT', () => {
  const plain = Buffer.alloc(BLOCK, 'vmdelta ');
  const cases = [
    { hashName: 'blake3' as const, codec: { codec: 'none' as const } },
    { hashName: 'blake3' as const, codec: { codec: 'zstd' as const, level: 1 } },
    { hashName: 'sha256' as const, codec: { codec: 'zstd' as const, level: 1 } },
  ];
  for (const { hashName, codec } of cases) {
    const hash = hashBlock(plain, hashName);
    const encoded = new BlockEncoder(codec).encode(plain, hash);
    assert.deepEqual(decodeBlockObject('b', encoded, hash, BLOCK, hashName), plain);
    // Read under the other algorithm, the content does not match its name.
    const other = hashName === 'blake3' ? 'sha256' : 'blake3';
    assert.throws(
      () => decodeBlockObject('b', encoded, hash, BLOCK, other),
      isCode('REPO_BLOCK_CORRUPT', 'b'),
    );
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 2000 }).map((bytes) => Buffer.from(bytes)),
          fc.nat(encoded.length - 1).map((length) => encoded.subarray(0, length)),
          fc
            .tuple(fc.nat(encoded.length - 1), fc.integer({ min: 1, max: 255 }))
            .map(([at, xor]) => {
              const copy = Buffer.from(encoded);
              copy[at] = (copy[at] ?? 0) ^ xor;
              return copy;
            }),
        ),
        (bytes) => {
          assert.throws(
            () => decodeBlockObject('blk', bytes, hash, BLOCK, hashName),
            isCode('REPO_BLOCK_CORRUPT', 'blk'),
          );
        },
      ),
      { numRuns: 1000 },
    );
  }
});

for (const factory of storeFactories) {
  test(`${factory.name}: damaged objects in a repository give typed errors and verify findings`, async () => {
    const { store, cleanup } = await factory.create();
    try {
      await assert.rejects(Repository.open(store), isCode('REPO_NOT_INITIALIZED'));
      const repo = await Repository.init(store, { blockSizeBytes: BLOCK });
      await assert.rejects(
        Repository.init(store, { blockSizeBytes: BLOCK * 2 }),
        isCode('REPO_CONFIG_MISMATCH'),
      );
      await assert.rejects(Repository.init(store, { hash: 'sha256' }), /another hash/);
      await assert.rejects(
        Repository.init(store, { compression: { codec: 'none' } }),
        /another compression/,
      );
      // Parameters not given are the existing repository's (older defaults still open).
      assert.equal((await Repository.init(store)).config.repositoryId, repo.config.repositoryId);
      const image = Buffer.alloc(BLOCK * 4);
      for (let i = 0; i < image.length; i += 1) image[i] = (i * 31) % 251;
      const point = await writeBackup(repo, {
        vmId: 'vm',
        disks: [{ diskId: 'd', mode: 'key', source: fullSource(image, BLOCK) }],
      });
      const keys: string[] = [];
      for await (const info of store.list('data/')) keys.push(info.key);
      const blockKeyName = keys.find((key) => key.includes('/blocks/')) ?? '';
      const indexKeyName = keys.find((key) => key.includes('/indexes/')) ?? '';
      const manifestKey = `points/vm/${point.pointId}.json`;
      const original = {
        block: await store.get(blockKeyName),
        index: await store.get(indexKeyName),
        manifest: await store.get(manifestKey),
      };

      // A flipped byte in a block: the read fails naming the block; verify reports it.
      const flipped = Buffer.from(original.block);
      flipped[flipped.length - 1] = (flipped.at(-1) ?? 0) ^ 1;
      await store.put(blockKeyName, flipped);
      const disk = await openPointDisk(repo, 'vm', point.pointId, 'd');
      await assert.rejects(readImage(disk), isCode('REPO_BLOCK_CORRUPT', blockKeyName));
      let verified = await verifyRepository(repo, { dataSample: 1 });
      assert.deepEqual(
        verified.findings.map((f) => [f.code, f.key]),
        [['REPO_BLOCK_CORRUPT', blockKeyName]],
      );
      assert.equal(
        (await verifyRepository(repo)).findings.length,
        0,
        'structure-only verify does not read data',
      );
      // A missing block.
      await store.delete(blockKeyName);
      verified = await verifyRepository(repo);
      assert.deepEqual(
        verified.findings.map((f) => [f.code, f.key]),
        [['REPO_OBJECT_MISSING', blockKeyName]],
      );
      await assert.rejects(
        readImage(await openPointDisk(repo, 'vm', point.pointId, 'd')),
        isCode('REPO_OBJECT_MISSING', blockKeyName),
      );
      await store.put(blockKeyName, original.block);

      // A truncated index.
      await store.put(indexKeyName, original.index.subarray(0, original.index.length - 5));
      await assert.rejects(
        openPointDisk(repo, 'vm', point.pointId, 'd'),
        isCode('REPO_INDEX_CORRUPT', indexKeyName),
      );
      verified = await verifyRepository(repo);
      assert.deepEqual(
        verified.findings.map((f) => [f.code, f.key]),
        [['REPO_INDEX_CORRUPT', indexKeyName]],
      );
      const gcUnsure = await collectGarbage(repo, { safetyWindowMs: 0 });
      assert.equal(gcUnsure.deletedObjects, 0, 'GC deletes nothing in a chain it cannot read');
      assert.equal(gcUnsure.skipped.length, 1);
      // A missing index: the chain is broken.
      await store.delete(indexKeyName);
      await assert.rejects(
        openPointDisk(repo, 'vm', point.pointId, 'd'),
        isCode('REPO_CHAIN_BROKEN'),
      );
      await store.put(indexKeyName, original.index);

      // Manifests: not JSON, wrong schema, ids that differ from the key.
      for (const body of [
        '{',
        '{"format":"vmdelta-point"}',
        original.manifest.toString().replace('"vm"', '"other"'),
      ]) {
        await store.put(manifestKey, Buffer.from(body));
        await assert.rejects(repo.listPoints('vm'), isCode('REPO_MANIFEST_INVALID', manifestKey));
        const scan = await repo.scanPoints('vm');
        assert.equal(scan.invalid[0]?.key, manifestKey);
        const gc = await collectGarbage(repo, { safetyWindowMs: 0 });
        assert.equal(
          gc.deletedObjects,
          0,
          'GC deletes nothing of a VM with an unreadable manifest',
        );
      }
      await store.put(manifestKey, original.manifest);
      assert.deepEqual(await readImage(await openPointDisk(repo, 'vm', point.pointId, 'd')), image);
      await assert.rejects(openPointDisk(repo, 'vm', 'nope', 'd'), isCode('REPO_POINT_NOT_FOUND'));
      await assert.rejects(
        openPointDisk(repo, 'vm', point.pointId, 'x'),
        isCode('REPO_POINT_NOT_FOUND'),
      );

      // Config.
      await store.put(
        'vmdelta-repository.json',
        Buffer.from('{"format":"vmdelta-repository","formatVersion":9}'),
      );
      await assert.rejects(
        Repository.open(store),
        isCode('REPO_CONFIG_INVALID', 'vmdelta-repository.json'),
      );
    } finally {
      await cleanup();
    }
  });
}

test('errors are VmdeltaErrors with stable codes', () => {
  assert.ok(new RepositoryError('REPO_CHAIN_BROKEN', 'x') instanceof VmdeltaError);
});

test('manifest and config parsers: random JSON or bytes give typed errors, never a crash', () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.json().map((text) => Buffer.from(text)),
        fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes)),
      ),
      (body) => {
        assert.throws(() => parsePointManifest('m', body), isCode('REPO_MANIFEST_INVALID', 'm'));
        assert.throws(() => parseRepositoryConfig('c', body), isCode('REPO_CONFIG_INVALID', 'c'));
      },
    ),
    { numRuns: 500 },
  );
});
