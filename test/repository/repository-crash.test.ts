/**
 * Crash test: a random history of backups (key and delta), point removals (merges) and GC runs is
 * played on a FaultInjectingStore that "crashes" after a random number of mutations. Then the
 * store heals and a fresh Repository opens it: every point committed before the crash restores
 * bit-exact (the point being removed at the crash may or may not still be there, and if it is it
 * restores bit-exact too), nothing committed is lost, verify finds nothing, and one GC (no safety
 * window) removes every leftover: afterwards every object under data/ is referenced. Block objects
 * put with deferred durability and not yet synced at the crash are kept, lost or truncated at
 * random, as after a power cut.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FaultInjectingStore, SimulatedCrash } from '../../src/storage/index.ts';
import {
  collectGarbage,
  openPointDisk,
  removePoint,
  Repository,
  verifyRepository,
  writeBackup,
} from '../../src/repository/index.ts';
import {
  deltaSource,
  fullSource,
  readImage,
  runsFor,
  storeFactories,
  type StoreFactory,
} from './helpers.ts';

const BLOCK = 512;
const SIZE = BLOCK * 9 + 17;

type Op =
  | { type: 'backup'; key: boolean; writes: [number, number][] }
  | { type: 'remove'; pick: number }
  | { type: 'gc' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    type: fc.constant('backup' as const),
    key: fc.boolean(),
    writes: fc.array(fc.tuple(fc.nat(9), fc.nat(3)), { maxLength: 5 }),
  }),
  fc.record({
    type: fc.constant('backup' as const),
    key: fc.constant(false),
    writes: fc.array(fc.tuple(fc.nat(9), fc.nat(3)), { maxLength: 5 }),
  }),
  fc.record({ type: fc.constant('remove' as const), pick: fc.nat(10) }),
  fc.constant({ type: 'gc' as const }),
);

async function dataKeys(repo: Repository): Promise<string[]> {
  const keys: string[] = [];
  for await (const info of repo.store.list('data/')) keys.push(info.key);
  return keys;
}

function crashSuite(factory: StoreFactory): void {
  test(`${factory.name}: a crash at any point loses nothing committed; GC removes leftovers`, async () => {
    let crashes = 0;
    let damagedTotal = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(opArb, { minLength: 2, maxLength: 10 }),
        fc.nat(40),
        fc.constantFrom('before' as const, 'after' as const),
        fc.nat(),
        async (ops, crashAfter, crashPoint, fateSeed) => {
          const { store: inner, cleanup } = await factory.create();
          try {
            const faulty = new FaultInjectingStore(inner);
            const repo = await Repository.init(faulty, { blockSizeBytes: BLOCK });
            // Deferred block puts not yet synced at the crash are kept, lost or truncated.
            const fates = ['keep', 'lose', 'truncate'] as const;
            const undurable = (key: string): (typeof fates)[number] => {
              let h = fateSeed;
              for (let i = 0; i < key.length; i += 1) h = (h * 31 + key.charCodeAt(i)) >>> 0;
              return fates[h % 3] ?? 'keep';
            };
            faulty.setPlan({ crashAfterMutations: crashAfter, crashPoint, undurable });
            const image = Buffer.alloc(SIZE);
            const changed = new Set<number>();
            const committed = new Map<string, Buffer>();
            const order: string[] = [];
            // The operation in flight at the crash may or may not have committed.
            let maybe: { kind: 'backup' | 'remove'; pointId: string; image: Buffer } | undefined;
            let nowMs = 1_000_000;
            try {
              for (const op of ops) {
                if (op.type === 'backup') {
                  for (const [block, value] of op.writes) {
                    image.fill(value, block * BLOCK, Math.min(SIZE, (block + 1) * BLOCK));
                    changed.add(block);
                  }
                  const key = op.key || order.length === 0;
                  nowMs += 1000;
                  maybe = { kind: 'backup', pointId: `p${nowMs}`, image: Buffer.from(image) };
                  const point = await writeBackup(repo, {
                    vmId: 'vm',
                    pointId: `p${nowMs}`,
                    createdMs: nowMs,
                    disks: [
                      {
                        diskId: 'd',
                        mode: key ? 'key' : 'delta',
                        source: key ? fullSource(image, BLOCK) : deltaSource(image, BLOCK, changed),
                      },
                    ],
                  });
                  maybe = undefined;
                  changed.clear();
                  committed.set(point.pointId, Buffer.from(image));
                  order.push(point.pointId);
                } else if (op.type === 'remove' && order.length > 1) {
                  const pointId = order[op.pick % (order.length - 1)] ?? '';
                  maybe = {
                    kind: 'remove',
                    pointId,
                    image: committed.get(pointId) ?? Buffer.alloc(0),
                  };
                  committed.delete(pointId);
                  await removePoint(repo, 'vm', pointId);
                  maybe = undefined;
                  order.splice(order.indexOf(pointId), 1);
                } else if (op.type === 'gc') {
                  await collectGarbage(repo, { safetyWindowMs: 0 });
                }
              }
            } catch (error) {
              if (!(error instanceof SimulatedCrash)) throw error;
              crashes += 1;
            }
            damagedTotal += (await faulty.heal()).length;
            const reopened = await Repository.open(inner);
            const listed = (await reopened.listPoints('vm')).map((point) => point.pointId);
            for (const pointId of committed.keys())
              assert.ok(listed.includes(pointId), `lost ${pointId}`);
            for (const pointId of listed) {
              const expected =
                committed.get(pointId) ?? (maybe?.pointId === pointId ? maybe.image : undefined);
              assert.ok(expected !== undefined, `unexpected point ${pointId}`);
              const disk = await openPointDisk(reopened, 'vm', pointId, 'd');
              assert.ok(
                (await readImage(disk)).equals(expected),
                `point ${pointId} restores bit-exact`,
              );
            }
            await collectGarbage(reopened, { safetyWindowMs: 0 });
            const verified = await verifyRepository(reopened, { dataSample: 1 });
            assert.deepEqual(verified.findings, []);
            const keys = await dataKeys(reopened);
            assert.equal(
              keys.length,
              verified.checkedBlocks + verified.checkedIndexes,
              'only referenced objects remain',
            );
            // The interrupted removal can be finished.
            if (maybe?.kind === 'remove' && listed.includes(maybe.pointId)) {
              await removePoint(reopened, 'vm', maybe.pointId);
              for (const pointId of committed.keys()) {
                const disk = await openPointDisk(reopened, 'vm', pointId, 'd');
                assert.ok(
                  (await readImage(disk)).equals(committed.get(pointId) ?? Buffer.alloc(0)),
                );
              }
            }
          } finally {
            await cleanup();
          }
        },
      ),
      // Few runs (slow stores): a fixed seed, so that the share of crashing runs is not left to
      // chance; many runs: a fresh seed each time.
      { numRuns: runsFor(factory, 400), ...(runsFor(factory, 400) < 50 ? { seed: 20261126 } : {}) },
    );
    // Crash points are drawn at random, so their share varies from run to run (about 1/4 to 1/2
    // of the runs): only a suite where crashes hardly ever happen is a failure.
    assert.ok(crashes >= Math.max(1, runsFor(factory, 400) / 10), `crashes happened (${crashes})`);
    if (runsFor(factory, 400) >= 50)
      assert.ok(damagedTotal > 0, 'some crashes lost or truncated unsynced block objects');
  });
}

function rewriteSuite(factory: StoreFactory): void {
  test(`${factory.name}: a backup re-putting a block an older point holds never puts it at risk`, async () => {
    const { store: inner, cleanup } = await factory.create();
    try {
      const faulty = new FaultInjectingStore(inner);
      const repo = await Repository.init(faulty, { blockSizeBytes: BLOCK });
      const image = Buffer.alloc(SIZE);
      const backup = async (mode: 'key' | 'delta', pointId: string): Promise<void> => {
        await writeBackup(repo, {
          vmId: 'vm',
          pointId,
          createdMs: Number(pointId.slice(1)),
          disks: [
            {
              diskId: 'd',
              mode,
              source:
                mode === 'key' ? fullSource(image, BLOCK) : deltaSource(image, BLOCK, new Set([0])),
            },
          ],
        });
      };
      image.fill(1, 0, BLOCK);
      await backup('key', 'p1');
      const first = Buffer.from(image);
      image.fill(2, 0, BLOCK);
      await backup('delta', 'p2');
      // The base (p2) lacks the content of p1's block 0, so this backup puts that object again;
      // the crash strikes right after that put, before any sync; unsynced puts are truncated.
      image.fill(1, 0, BLOCK);
      faulty.setPlan({ crashAfterMutations: 0, crashPoint: 'after', undurable: () => 'truncate' });
      await assert.rejects(backup('delta', 'p3'), SimulatedCrash);
      await faulty.heal();
      const disk = await openPointDisk(await Repository.open(inner), 'vm', 'p1', 'd');
      assert.ok((await readImage(disk)).equals(first), 'p1 still restores bit-exact');
    } finally {
      await cleanup();
    }
  });
}

for (const factory of storeFactories) {
  crashSuite(factory);
  rewriteSuite(factory);
}
