/**
 * Model-based property test: random sequences of disk writes, key/delta backups (from tracked
 * changes or from a full read), point removals (oldest and middle merges), retention runs, GC and
 * copies to a second repository, against an in-memory model (the images each point must hold).
 * After every sequence, every remaining restore point of both repositories reads back bit-exact,
 * verify finds nothing, and a GC with no safety window finds nothing left to delete.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  applyRetention,
  BLOCK_HASH_NAMES,
  collectGarbage,
  copyPoints,
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
const DISKS = [
  { diskId: 'd0', sizeBytes: BLOCK * 12 + 100 },
  { diskId: 'd1', sizeBytes: BLOCK * 5 },
];
const HOUR = 3_600_000;

interface Model {
  nowMs: number;
  images: Buffer[];
  changed: Set<number>[];
  /** pointId -> images, per repository. */
  a: Map<string, Buffer[]>;
  b: Map<string, Buffer[]>;
  /** Points of A in creation order. */
  order: string[];
}

interface Real {
  a: Repository;
  b: Repository;
}

type Cmd = fc.AsyncCommand<Model, Real>;

class WriteCmd implements Cmd {
  constructor(
    readonly disk: number,
    readonly block: number,
    readonly value: number,
  ) {}
  check = (): boolean => true;
  async run(m: Model): Promise<void> {
    const image = m.images[this.disk];
    const spec = DISKS[this.disk];
    if (image === undefined || spec === undefined) return;
    const count = Math.ceil(spec.sizeBytes / BLOCK);
    const block = this.block % count;
    const end = Math.min(spec.sizeBytes, (block + 1) * BLOCK);
    // value 0 writes zeros; small value range makes identical blocks (dedup) frequent.
    image.fill(this.value, block * BLOCK, end);
    if (this.value !== 0) image[block * BLOCK] = (this.value * 7) & 0xff;
    m.changed[this.disk]?.add(block);
  }
  toString = (): string => `write(${this.disk},${this.block},${this.value})`;
}

class BackupCmd implements Cmd {
  constructor(
    readonly mode: 'key' | 'delta' | 'full-read-delta',
    readonly advanceHours: number,
  ) {}
  check = (): boolean => true;
  async run(m: Model, r: Real): Promise<void> {
    m.nowMs += this.advanceHours * HOUR + 1;
    const mode = m.order.length === 0 ? 'key' : this.mode;
    const point = await writeBackup(r.a, {
      vmId: 'vm',
      createdMs: m.nowMs,
      scheduleId: 'daily',
      disks: DISKS.map((spec, i) => {
        const image = m.images[i] ?? Buffer.alloc(0);
        return {
          diskId: spec.diskId,
          mode: mode === 'key' ? 'key' : 'delta',
          source:
            mode === 'delta'
              ? deltaSource(image, BLOCK, m.changed[i] ?? [])
              : fullSource(image, BLOCK),
        };
      }),
    });
    m.a.set(
      point.pointId,
      m.images.map((image) => Buffer.from(image)),
    );
    m.order.push(point.pointId);
    for (const set of m.changed) set.clear();
  }
  toString = (): string => `backup(${this.mode},+${this.advanceHours}h)`;
}

class RemoveCmd implements Cmd {
  constructor(readonly pick: number) {}
  check = (m: Model): boolean => m.order.length > 1;
  async run(m: Model, r: Real): Promise<void> {
    // Never the newest: it is the base of the next delta (retention keeps it too).
    const pointId = m.order[this.pick % (m.order.length - 1)] ?? '';
    await removePoint(r.a, 'vm', pointId);
    m.a.delete(pointId);
    m.order = m.order.filter((id) => id !== pointId);
  }
  toString = (): string => `remove(${this.pick})`;
}

class RetentionCmd implements Cmd {
  constructor(
    readonly keepLast: number,
    readonly daily: number,
  ) {}
  check = (m: Model): boolean => m.order.length > 0;
  async run(m: Model, r: Real): Promise<void> {
    const run = await applyRetention(r.a, 'vm', { keepLast: this.keepLast, daily: this.daily });
    for (const decision of run.decisions) {
      if (!decision.keep) {
        m.a.delete(decision.pointId);
        m.order = m.order.filter((id) => id !== decision.pointId);
      }
    }
    assert.ok(m.order.length >= 1);
  }
  toString = (): string => `retention(last ${this.keepLast}, daily ${this.daily})`;
}

class GcCmd implements Cmd {
  constructor(readonly target: 'a' | 'b') {}
  check = (): boolean => true;
  async run(_m: Model, r: Real): Promise<void> {
    await collectGarbage(r[this.target], { safetyWindowMs: 0 });
  }
  toString = (): string => `gc(${this.target})`;
}

class CopyCmd implements Cmd {
  check = (): boolean => true;
  async run(m: Model, r: Real): Promise<void> {
    await copyPoints(r.a, r.b);
    for (const [pointId, images] of m.a) if (!m.b.has(pointId)) m.b.set(pointId, images);
  }
  toString = (): string => 'copy(a->b)';
}

class RemoveBCmd implements Cmd {
  constructor(readonly pick: number) {}
  check = (m: Model): boolean => m.b.size > 0;
  async run(m: Model, r: Real): Promise<void> {
    const ids = (await r.b.listPoints('vm')).map((point) => point.pointId);
    const pointId = ids[this.pick % ids.length] ?? '';
    await removePoint(r.b, 'vm', pointId);
    m.b.delete(pointId);
  }
  toString = (): string => `removeB(${this.pick})`;
}

async function checkAll(
  repo: Repository,
  expected: Map<string, Buffer[]>,
  label: string,
): Promise<void> {
  const points = await repo.listPoints('vm');
  assert.deepEqual(
    points.map((p) => p.pointId).sort(),
    [...expected.keys()].sort(),
    `${label}: point set`,
  );
  for (const point of points) {
    for (const [i, spec] of DISKS.entries()) {
      const disk = await openPointDisk(repo, 'vm', point.pointId, spec.diskId);
      assert.ok(
        (await readImage(disk)).equals(expected.get(point.pointId)?.[i] ?? Buffer.alloc(0)),
        `${label}: ${point.pointId}/${spec.diskId}`,
      );
    }
  }
  const verified = await verifyRepository(repo, { dataSample: 1 });
  assert.deepEqual(verified.findings, [], `${label}: verify`);
  const gc = await collectGarbage(repo, { safetyWindowMs: 0 });
  assert.equal(gc.skipped.length, 0);
  const again = await collectGarbage(repo, { safetyWindowMs: 0 });
  assert.equal(again.deletedObjects, 0, `${label}: GC is idempotent`);
  await checkAllAfterGc(repo, expected, label);
}

async function checkAllAfterGc(
  repo: Repository,
  expected: Map<string, Buffer[]>,
  label: string,
): Promise<void> {
  for (const pointId of expected.keys()) {
    for (const [i, spec] of DISKS.entries()) {
      const disk = await openPointDisk(repo, 'vm', pointId, spec.diskId);
      assert.ok(
        (await readImage(disk)).equals(expected.get(pointId)?.[i] ?? Buffer.alloc(0)),
        `${label} after GC: ${pointId}`,
      );
    }
  }
}

const backup = fc
  .tuple(fc.constantFrom('key', 'delta', 'delta', 'delta', 'full-read-delta'), fc.nat(30))
  .map(([mode, hours]) => new BackupCmd(mode, hours));

const commands = [
  backup,
  backup,
  fc.tuple(fc.nat(1), fc.nat(20), fc.nat(3)).map(([d, b, v]) => new WriteCmd(d, b, v)),
  fc.tuple(fc.nat(1), fc.nat(20), fc.nat(3)).map(([d, b, v]) => new WriteCmd(d, b, v)),
  fc.nat(10).map((pick) => new RemoveCmd(pick)),
  fc
    .tuple(fc.integer({ min: 1, max: 4 }), fc.nat(3))
    .map(([last, daily]) => new RetentionCmd(last, daily)),
  fc.constantFrom('a', 'b').map((target) => new GcCmd(target)),
  fc.constant(new CopyCmd()),
  fc.nat(10).map((pick) => new RemoveBCmd(pick)),
];

function modelSuite(factory: StoreFactory): void {
  test(`${factory.name}: repository behaves like the model`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.commands(commands, { maxCommands: 40, size: 'max' }),
        fc.constantFrom(...BLOCK_HASH_NAMES),
        async (cmds, hash) => {
          const a = await factory.create();
          const b = await factory.create();
          try {
            const model: Model = {
              nowMs: Date.UTC(2026, 0, 1),
              images: DISKS.map((spec) => Buffer.alloc(spec.sizeBytes)),
              changed: DISKS.map(() => new Set<number>()),
              a: new Map(),
              b: new Map(),
              order: [],
            };
            const real: Real = {
              a: await Repository.init(a.store, { blockSizeBytes: BLOCK, hash }),
              b: await Repository.init(b.store, {
                blockSizeBytes: BLOCK,
                hash,
                compression: { codec: 'none' },
              }),
            };
            await fc.asyncModelRun(() => ({ model, real }), cmds);
            await checkAll(real.a, model.a, 'A');
            await checkAll(real.b, model.b, 'B');
          } finally {
            await a.cleanup();
            await b.cleanup();
          }
        },
      ),
      { numRuns: runsFor(factory, 300) },
    );
  });
}

for (const factory of storeFactories) modelSuite(factory);
