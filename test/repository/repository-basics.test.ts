import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  collectGarbage,
  openPointDisk,
  removePoint,
  Repository,
  verifyRepository,
  writeBackup,
} from '../../src/repository/index.ts';
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
