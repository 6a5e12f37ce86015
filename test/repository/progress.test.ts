// Progress of copy, verify and GC: phases in order, totals fixed per phase and known at its start,
// done counters monotonic, and the last report equal to what was transferred or checked, measured
// on the repositories themselves (objects listed on the target, block objects decoded).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { WorkProgress } from '../../src/core/index.ts';
import type { ObjectStore } from '../../src/storage/index.ts';
import {
  collectGarbage,
  copyPoints,
  decodeBlockHeader,
  parseDataKey,
  Repository,
  verifyRepository,
  writeBackup,
} from '../../src/repository/index.ts';
import { deltaSource, fullSource, storeFactories } from './helpers.ts';

const BLOCK = 4096;

/** Two VMs; vm1 has two disks and a second chain (a later key backup); some data compresses. */
async function fill(repo: Repository): Promise<void> {
  for (const vmId of ['vm1', 'vm2']) {
    const disks = vmId === 'vm1' ? ['a', 'b'] : ['a'];
    const images = new Map(disks.map((d) => [d, randomBytes(BLOCK * 24 + 1000)]));
    images.get('a')?.fill(7, 0, BLOCK * 6); // compressible, and equal blocks share one object
    for (let round = 0; round < 4; round += 1) {
      const changed = [round, 9 + round, 24];
      const key = round === 0 || (vmId === 'vm1' && round === 2);
      for (const image of images.values())
        for (const block of changed) randomBytes(100).copy(image, block * BLOCK + 50);
      await writeBackup(repo, {
        vmId,
        createdMs: 1000 + round,
        disks: disks.map((diskId) => {
          const image = images.get(diskId) ?? Buffer.alloc(0);
          return {
            diskId,
            mode: key ? ('key' as const) : ('delta' as const),
            source: key ? fullSource(image, BLOCK) : deltaSource(image, BLOCK, changed),
          };
        }),
      });
    }
  }
}

/** Checks the report stream of each phase; returns the last report of every phase. */
function checkReports(
  reports: readonly WorkProgress[],
  phases: readonly [string, string],
): [WorkProgress, WorkProgress] {
  assert.deepEqual([...new Set(reports.map((r) => r.phase))], phases, 'phases, in order');
  const lastOf = (phase: string): WorkProgress => {
    const own = reports.filter((r) => r.phase === phase);
    const first = own[0];
    assert.ok(first !== undefined);
    assert.equal(first.doneBytes + first.doneObjects, 0, `${phase} starts at 0`);
    for (const [i, r] of own.entries()) {
      assert.equal(r.totalBytes, first.totalBytes, `${phase}: totals fixed`);
      assert.equal(r.totalObjects, first.totalObjects, `${phase}: totals fixed`);
      assert.ok(r.doneBytes <= r.totalBytes || r.totalBytes === 0, `${phase}: done ≤ total`);
      assert.ok(r.doneObjects <= r.totalObjects, `${phase}: objects done ≤ total`);
      const before = own[i - 1];
      if (before !== undefined) {
        assert.ok(r.doneBytes >= before.doneBytes, `${phase}: bytes monotonic`);
        assert.ok(r.doneObjects >= before.doneObjects, `${phase}: objects monotonic`);
      }
    }
    const last = own.at(-1) ?? first;
    assert.equal(last.doneObjects, last.totalObjects, `${phase} ends complete`);
    assert.equal(last.doneBytes, last.totalBytes, `${phase} ends complete`);
    return last;
  };
  return [lastOf(phases[0]), lastOf(phases[1])];
}

async function dataObjects(store: ObjectStore): Promise<Map<string, number>> {
  const sizes = new Map<string, number>();
  for await (const info of store.list('data/')) sizes.set(info.key, info.sizeBytes);
  return sizes;
}

for (const factory of storeFactories) {
  test(`${factory.name}: copy reports exact totals, a resumed copy only what it transfers`, async () => {
    const a = await factory.create();
    const b = await factory.create();
    try {
      const source = await Repository.init(a.store, { blockSizeBytes: BLOCK });
      await fill(source);
      const target = await Repository.init(b.store, { blockSizeBytes: BLOCK });
      const vm2Point = (await source.listPoints('vm2'))[1]?.pointId ?? '';
      await copyPoints(source, target, { pointIds: [vm2Point] });
      const before = await dataObjects(b.store);
      assert.ok(before.size > 0);

      const reports: WorkProgress[] = [];
      const result = await copyPoints(source, target, { onProgress: (p) => reports.push(p) });
      const [plan, copy] = checkReports(reports, ['plan', 'copy']);
      const after = await dataObjects(b.store);
      const added = [...after].filter(([key]) => !before.has(key));
      assert.equal(copy.totalObjects, added.length, 'objects planned = objects new on target');
      assert.equal(
        copy.totalBytes,
        added.reduce((sum, [, sizeBytes]) => sum + sizeBytes, 0),
        'bytes planned = bytes new on target',
      );
      assert.equal(copy.doneBytes, result.copiedBytes);
      assert.equal(copy.doneObjects, result.copiedObjects);
      assert.equal(plan.totalObjects, result.copiedObjects + result.skippedObjects);
      assert.equal(plan.totalBytes, 0);
      assert.ok(result.skippedObjects > 0, 'what the first copy brought is skipped');
      assert.deepEqual(after, await dataObjects(a.store), 'the target now holds every object');

      const again: WorkProgress[] = [];
      await copyPoints(source, target, { onProgress: (p) => again.push(p) });
      const [, none] = checkReports(again, ['plan', 'copy']);
      assert.deepEqual([none.totalObjects, none.totalBytes], [0, 0], 'nothing left to copy');
    } finally {
      await a.cleanup();
      await b.cleanup();
    }
  });

  test(`${factory.name}: verify reports every referenced block and its plain bytes`, async () => {
    const a = await factory.create();
    try {
      const repo = await Repository.init(a.store, { blockSizeBytes: BLOCK });
      await fill(repo);
      let blockObjects = 0;
      let plainBytes = 0;
      for (const key of (await dataObjects(a.store)).keys()) {
        if (parseDataKey(key)?.type !== 'block') continue;
        blockObjects += 1;
        plainBytes += decodeBlockHeader(key, await a.store.get(key)).plainLengthBytes;
      }
      for (const dataSample of [0, 1]) {
        const reports: WorkProgress[] = [];
        const result = await verifyRepository(repo, {
          dataSample,
          onProgress: (p) => reports.push(p),
        });
        assert.deepEqual(result.findings, []);
        const [scan, verify] = checkReports(reports, ['scan', 'verify']);
        assert.equal(scan.totalObjects, 3 + 2, 'chains: vm1 a and b twice, vm2 a once');
        assert.equal(verify.totalObjects, blockObjects, 'every block object is referenced');
        assert.equal(verify.doneObjects, result.checkedBlocks);
        assert.equal(verify.totalBytes, plainBytes, 'plain bytes of every block object');
        assert.equal(result.readBlocks, dataSample === 1 ? blockObjects : 0);
      }
    } finally {
      await a.cleanup();
    }
  });

  test(`${factory.name}: GC reports every object it examines`, async () => {
    const a = await factory.create();
    try {
      const repo = await Repository.init(a.store, { blockSizeBytes: BLOCK });
      await fill(repo);
      const listed = (await dataObjects(a.store)).size;
      const reports: WorkProgress[] = [];
      const result = await collectGarbage(repo, { onProgress: (p) => reports.push(p) });
      assert.equal(result.deletedObjects, 0, 'everything is referenced');
      assert.ok(reports.length >= 2);
      assert.ok(reports.every((r) => r.phase === 'gc' && r.totalObjects === 0));
      assert.equal(reports[0]?.doneObjects, 0);
      for (let i = 1; i < reports.length; i += 1) {
        assert.ok((reports[i]?.doneObjects ?? 0) >= (reports[i - 1]?.doneObjects ?? 0));
      }
      assert.equal(reports.at(-1)?.doneObjects, listed, 'every object under data/ examined');
    } finally {
      await a.cleanup();
    }
  });
}
