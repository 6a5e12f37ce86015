import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FaultInjectingStore, SimulatedCrash } from '../../src/storage/index.ts';
import {
  copyPoints,
  openPointDisk,
  removePoint,
  Repository,
  writeBackup,
} from '../../src/repository/index.ts';
import { deltaSource, fullSource, readImage, storeFactories } from './helpers.ts';

const BLOCK = 1024;

async function history(repo: Repository): Promise<Map<string, Buffer>> {
  const image = Buffer.alloc(BLOCK * 16);
  const images = new Map<string, Buffer>();
  for (let round = 0; round < 4; round += 1) {
    const changed = [round, round + 5, 15];
    for (const block of changed) image.fill(round + 1 + block, block * BLOCK, (block + 1) * BLOCK);
    const point = await writeBackup(repo, {
      vmId: 'vm',
      createdMs: 1000 + round,
      disks: [
        {
          diskId: 'd',
          mode: round === 0 ? 'key' : 'delta',
          source: round === 0 ? fullSource(image, BLOCK) : deltaSource(image, BLOCK, changed),
        },
      ],
    });
    images.set(point.pointId, Buffer.from(image));
  }
  return images;
}

async function assertPoints(repo: Repository, images: Map<string, Buffer>): Promise<void> {
  const ids = (await repo.listPoints('vm')).map((p) => p.pointId);
  assert.deepEqual(ids.sort(), [...images.keys()].sort());
  for (const [pointId, image] of images) {
    assert.deepEqual(await readImage(await openPointDisk(repo, 'vm', pointId, 'd')), image);
  }
}

for (const factory of storeFactories) {
  test(`${factory.name}: copy is resumable after a crash and idempotent`, async () => {
    const a = await factory.create();
    const b = await factory.create();
    try {
      const source = await Repository.init(a.store, { blockSizeBytes: BLOCK });
      const images = await history(source);
      const faulty = new FaultInjectingStore(b.store);
      const target = await Repository.init(faulty, { blockSizeBytes: BLOCK });
      faulty.setPlan({ crashAfterMutations: 9 });
      await assert.rejects(copyPoints(source, target), SimulatedCrash);
      faulty.setPlan({});
      const committedEarly = (await target.listPoints('vm')).length;
      assert.ok(committedEarly < images.size);
      const resumed = await copyPoints(source, target);
      assert.ok(resumed.skippedObjects > 0, 'objects copied before the crash are skipped');
      await assertPoints(target, images);
      const again = await copyPoints(source, target);
      assert.equal(again.copiedObjects + again.copiedPoints, 0);
      // Mirror mode does not bring back a point the target's retention removed.
      const [first] = images.keys();
      await removePoint(target, 'vm', first ?? '');
      await copyPoints(source, target, { mode: 'mirror' });
      images.delete(first ?? '');
      await assertPoints(target, images);
    } finally {
      await a.cleanup();
      await b.cleanup();
    }
  });

  test(`${factory.name}: a repository copied object by object by another tool opens and restores`, async () => {
    const a = await factory.create();
    const b = await factory.create();
    try {
      const images = await history(await Repository.init(a.store, { blockSizeBytes: BLOCK }));
      for await (const info of a.store.list(''))
        await b.store.put(info.key, await a.store.get(info.key));
      await assertPoints(await Repository.open(b.store), images);
    } finally {
      await a.cleanup();
      await b.cleanup();
    }
  });
}

test('a partial copy (points 0 and 2 only) can still merge its oldest point', async () => {
  const a = await storeFactories[0]?.create();
  const b = await storeFactories[0]?.create();
  assert.ok(a !== undefined && b !== undefined);
  const source = await Repository.init(a.store, { blockSizeBytes: BLOCK });
  const images = await history(source);
  const ids = [...images.keys()];
  const target = await Repository.init(b.store, { blockSizeBytes: BLOCK });
  await copyPoints(source, target, { pointIds: [ids[0] ?? '', ids[2] ?? ''] });
  const result = await removePoint(target, 'vm', ids[0] ?? '');
  assert.equal(result.foldedIndexes, 1);
  assert.deepEqual(
    await readImage(await openPointDisk(target, 'vm', ids[2] ?? '', 'd')),
    images.get(ids[2] ?? ''),
  );
});
