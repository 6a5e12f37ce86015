import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BLOCK_HASH_NAMES,
  collectGarbage,
  openPointDisk,
  removePoint,
  Repository,
  RepositoryError,
  verifyRepository,
  writeBackup,
} from '../../src/repository/index.ts';
import { ManualClock } from '../../src/core/index.ts';
import { FaultInjectingStore, MemoryObjectStore } from '../../src/storage/index.ts';
import { deltaSource, fullSource, readImage, storeFactories } from './helpers.ts';

const BLOCK = 4096;

function pattern(seed: number, lengthBytes: number): Buffer {
  const data = Buffer.alloc(lengthBytes);
  for (let i = 0; i < lengthBytes; i += 4) data.writeUInt32LE((seed * 2654435761 + i) >>> 0, i);
  return data;
}

for (const factory of storeFactories) {
  test(`${factory.name}: key + deltas read back bit-exact, merges keep every other point`, async () => {
    const { store, cleanup } = await factory.create();
    try {
      const repo = await Repository.init(store, { blockSizeBytes: BLOCK });
      const image = Buffer.alloc(BLOCK * 10 + 1000); // partial last block, zero holes
      pattern(1, BLOCK * 3).copy(image, 0);
      pattern(2, 1000).copy(image, BLOCK * 10);
      const images: Buffer[] = [];
      const ids: string[] = [];
      let createdMs = 1000;
      const key = await writeBackup(repo, {
        vmId: 'vm1',
        createdMs: (createdMs += 1000),
        disks: [{ diskId: 'd0', mode: 'key', source: fullSource(image, BLOCK) }],
      });
      images.push(Buffer.from(image));
      ids.push(key.pointId);
      assert.equal(key.disks[0]?.storedBlockCount, 4, 'zero blocks are not stored');
      for (let round = 0; round < 3; round += 1) {
        const changed = [round + 1, 7, 10];
        pattern(10 + round, BLOCK).copy(image, BLOCK * (round + 1));
        image.fill(round === 1 ? 0 : 5 + round, BLOCK * 7, BLOCK * 8); // round 1: block 7 becomes zero
        pattern(20 + round, 1000).copy(image, BLOCK * 10);
        const point = await writeBackup(repo, {
          vmId: 'vm1',
          createdMs: (createdMs += 1000),
          disks: [{ diskId: 'd0', mode: 'delta', source: deltaSource(image, BLOCK, changed) }],
        });
        images.push(Buffer.from(image));
        ids.push(point.pointId);
        assert.equal(point.disks[0]?.seq, round + 1);
      }
      const readAll = async (): Promise<void> => {
        const points = await repo.listPoints('vm1');
        for (const point of points) {
          const at = ids.indexOf(point.pointId);
          const disk = await openPointDisk(repo, 'vm1', point.pointId, 'd0');
          assert.deepEqual(await readImage(disk), images[at], `point ${at}`);
          assert.deepEqual(await disk.readBlock(10), images[at]?.subarray(BLOCK * 10));
        }
      };
      await readAll();
      // Oldest merge, then a middle merge.
      const oldest = await removePoint(repo, 'vm1', ids[0] ?? '');
      assert.equal(oldest.foldedIndexes, 1);
      await readAll();
      const middle = await removePoint(repo, 'vm1', ids[2] ?? '');
      assert.equal(middle.foldedIndexes, 1);
      await readAll();
      assert.deepEqual(
        (await repo.listPoints('vm1')).map((p) => p.pointId),
        [ids[1], ids[3]],
      );
      const gc = await collectGarbage(repo, { safetyWindowMs: 0 });
      assert.equal(gc.deletedObjects, 0, 'removals already deleted what they superseded');
      const verified = await verifyRepository(repo, { dataSample: 1 });
      assert.deepEqual(verified.findings, []);
      assert.ok(verified.readBlocks > 0);
      // Removing the last points empties the chain.
      await removePoint(repo, 'vm1', ids[1] ?? '');
      await removePoint(repo, 'vm1', ids[3] ?? '');
      const left: string[] = [];
      for await (const info of store.list('data/')) left.push(info.key);
      assert.deepEqual(left, []);
    } finally {
      await cleanup();
    }
  });
}

for (const hash of BLOCK_HASH_NAMES) {
  test(`${hash}: a worker pool writes the same objects and reads them back, corruption detected`, async () => {
    const inline = new MemoryObjectStore();
    const pooled = new MemoryObjectStore();
    const image = Buffer.alloc(64 * 1024 * 6);
    pattern(7, 64 * 1024 * 2).copy(image, 0);
    image.fill(3, 64 * 1024 * 4); // compressible; block 1 random-ish
    const repos = [
      await Repository.init(inline, { blockSizeBytes: 64 * 1024, hash }),
      await Repository.init(pooled, { blockSizeBytes: 64 * 1024, blockWorkers: 2, hash }),
    ];
    try {
      const points = [];
      for (const repo of repos) {
        points.push(
          await writeBackup(repo, {
            vmId: 'vm',
            pointId: 'p1',
            createdMs: 1,
            disks: [{ diskId: 'd', mode: 'key', source: fullSource(image, 64 * 1024) }],
          }),
        );
      }
      const objects = async (store: MemoryObjectStore): Promise<Map<string, Buffer>> => {
        const map = new Map<string, Buffer>();
        for await (const info of store.list('data/'))
          map.set(info.key.replace(/data\/vm\/[0-9a-f]+\//, ''), await store.get(info.key));
        return map;
      };
      const a = await objects(inline);
      const b = await objects(pooled);
      assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
      for (const [key, value] of a)
        if (key.includes('/blocks/')) assert.deepEqual(b.get(key), value, key);
      const pooledRepo = repos[1];
      assert.ok(pooledRepo !== undefined);
      assert.deepEqual(await readImage(await openPointDisk(pooledRepo, 'vm', 'p1', 'd')), image);
      // Corrupt a compressed block and a raw one: both are REPO_BLOCK_CORRUPT through the pool.
      for await (const info of pooled.list('data/')) {
        if (!info.key.includes('/blocks/')) continue;
        pooled.corrupt(info.key, (data) => {
          data[data.length - 1] = (data.at(-1) ?? 0) ^ 0x55;
          return data;
        });
      }
      await assert.rejects(
        readImage(await openPointDisk(pooledRepo, 'vm', 'p1', 'd')),
        (error: unknown) =>
          error instanceof RepositoryError &&
          error.code === 'REPO_BLOCK_CORRUPT' &&
          typeof error.details['key'] === 'string',
      );
      const verified = await verifyRepository(pooledRepo, { dataSample: 1 });
      assert.equal(verified.findings.length, 3);
    } finally {
      for (const repo of repos) await repo.close();
    }
  });
}

test('GC keeps unreferenced objects younger than the safety window (writers in progress)', async () => {
  const clock = new ManualClock(10_000_000);
  const inner = new MemoryObjectStore({ nowMs: () => clock.nowMs() });
  const faulty = new FaultInjectingStore(inner);
  const repo = await Repository.init(faulty, { blockSizeBytes: BLOCK, clock });
  const image = pattern(3, BLOCK * 4);
  const committed = await writeBackup(repo, {
    vmId: 'vm',
    disks: [{ diskId: 'd', mode: 'key', source: fullSource(image, BLOCK) }],
  });
  // A writer "in progress": blocks and index written, manifest not yet.
  faulty.setPlan({
    failWhen: (op, key) =>
      op === 'put' && key.startsWith('points/') ? new Error('not yet') : undefined,
  });
  await assert.rejects(
    writeBackup(repo, {
      vmId: 'vm',
      disks: [{ diskId: 'd', mode: 'key', source: fullSource(pattern(4, BLOCK * 4), BLOCK) }],
    }),
  );
  faulty.setPlan({});
  clock.advance(30 * 60_000);
  const young = await collectGarbage(repo, { safetyWindowMs: 3_600_000 });
  assert.equal(young.deletedObjects, 0);
  assert.equal(young.keptYoungObjects, 5, '4 blocks + 1 index of the writer in progress');
  clock.advance(31 * 60_000);
  const old = await collectGarbage(repo, { safetyWindowMs: 3_600_000 });
  assert.equal(old.deletedObjects, 5);
  assert.deepEqual(await readImage(await openPointDisk(repo, 'vm', committed.pointId, 'd')), image);
});

test('a disk added to the VM starts its own chain; several disks commit in one manifest', async () => {
  const repo = await Repository.init(new MemoryObjectStore(), { blockSizeBytes: BLOCK });
  const a = pattern(5, BLOCK * 3);
  const b = pattern(6, BLOCK * 2);
  const first = await writeBackup(repo, {
    vmId: 'vm',
    createdMs: 1,
    disks: [{ diskId: 'a', mode: 'key', source: fullSource(a, BLOCK) }],
  });
  await assert.rejects(
    writeBackup(repo, {
      vmId: 'vm',
      disks: [{ diskId: 'b', mode: 'delta', source: deltaSource(b, BLOCK, [0]) }],
    }),
    (error: unknown) => error instanceof RepositoryError && error.code === 'REPO_INVALID_REQUEST',
  );
  pattern(9, BLOCK).copy(a, BLOCK);
  const second = await writeBackup(repo, {
    vmId: 'vm',
    createdMs: 2,
    disks: [
      { diskId: 'a', mode: 'delta', source: deltaSource(a, BLOCK, [1]) },
      { diskId: 'b', mode: 'delta', source: fullSource(b, BLOCK) },
    ],
  });
  assert.equal(second.disks[0]?.chainId, first.disks[0]?.chainId);
  assert.equal(second.disks[1]?.writtenAs, 'key');
  await removePoint(repo, 'vm', first.pointId);
  assert.deepEqual(await readImage(await openPointDisk(repo, 'vm', second.pointId, 'a')), a);
  assert.deepEqual(await readImage(await openPointDisk(repo, 'vm', second.pointId, 'b')), b);
});

test('verify samples blocks; GC dry run deletes nothing', async () => {
  const store = new MemoryObjectStore();
  const repo = await Repository.init(store, { blockSizeBytes: BLOCK });
  const image = pattern(11, BLOCK * 40);
  await writeBackup(repo, {
    vmId: 'vm',
    disks: [{ diskId: 'd', mode: 'key', source: fullSource(image, BLOCK) }],
  });
  let seed = 1;
  const random = (): number => {
    seed = (seed * 1664525 + 1013904223) >>> 0;
    return seed / 2 ** 32;
  };
  const sampled = await verifyRepository(repo, { dataSample: 0.25, random });
  assert.equal(sampled.checkedBlocks, 40);
  assert.ok(sampled.readBlocks > 2 && sampled.readBlocks < 25, `read ${sampled.readBlocks}`);
  await store.put('data/vm/leftover', Buffer.from('x'));
  const dry = await collectGarbage(repo, { safetyWindowMs: 0, dryRun: true });
  assert.equal(dry.deletedObjects, 1);
  assert.ok((await store.stat('data/vm/leftover')) !== undefined);
  await collectGarbage(repo, { safetyWindowMs: 0 });
  assert.equal(await store.stat('data/vm/leftover'), undefined);
});
