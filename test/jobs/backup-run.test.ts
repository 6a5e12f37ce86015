// The backup engine end to end on the fake hypervisor and memory repositories: keys then deltas,
// the key interval, a new remote seeded without forcing keys elsewhere, a failing remote dropped,
// retention merging the oldest delta, and every remaining restore point restored bit-exact.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { CollectingSink, ManualClock } from '../../src/core/index.ts';
import { FakeHypervisor } from '../../src/hypervisor/index.ts';
import { Repository, openPointDisk } from '../../src/repository/index.ts';
import {
  FaultInjectingStore,
  MemoryObjectStore,
  StorageError,
  type ObjectStore,
} from '../../src/storage/index.ts';
import {
  parseJobDefinition,
  runBackup,
  type JobEvent,
  type RemoteTarget,
  type RunLog,
} from '../../src/jobs/index.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const BLOCK = 64 * KiB;

const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

async function remote(
  id: string,
  store: ObjectStore = new MemoryObjectStore({ name: id }),
): Promise<RemoteTarget> {
  return { id, repository: await Repository.init(store, { blockSizeBytes: BLOCK }) };
}

async function restoreHash(
  target: RemoteTarget,
  vmId: string,
  pointId: string,
  diskId: string,
  sizeBytes: number,
): Promise<string> {
  const disk = await openPointDisk(target.repository, vmId, pointId, diskId);
  const image = Buffer.alloc(sizeBytes);
  for await (const block of disk.readBlocks()) block.data.copy(image, block.index * BLOCK);
  await disk.close();
  return sha(image);
}

function setup() {
  const hypervisor = new FakeHypervisor([
    {
      id: 'vm1',
      label: 'web-01',
      disks: [
        { id: 'd0', sizeBytes: 2 * MiB },
        { id: 'd1', sizeBytes: MiB + 4 * KiB },
      ],
    },
  ]);
  const clock = new ManualClock(Date.UTC(2026, 10, 1));
  const job = parseJobDefinition({
    id: 'nightly',
    name: 'Nightly',
    source: 'fake',
    machines: { ids: ['vm1'] },
    remotes: ['a', 'b'],
    schedules: [{ id: 'night', cron: '0 2 * * *', exportRetention: 3 }],
    settings: { fullInterval: 4, nbdConcurrency: 2 },
  });
  return { hypervisor, clock, job };
}

function diskKinds(log: RunLog): string[] {
  return log.machines.flatMap((m) =>
    m.disks.flatMap((d) =>
      d.remotes.map(
        (r) =>
          `${d.diskId}@${r.remoteId}:${r.kind}${r.reason === undefined ? '' : `(${r.reason})`}`,
      ),
    ),
  );
}

test('key, deltas, key interval, retention merges; every kept point restores bit-exact', async () => {
  const { hypervisor, clock, job } = setup();
  const a = await remote('a');
  const expected = new Map<string, { d0: string; d1: string }>();
  const logs: RunLog[] = [];
  for (let run = 0; run < 6; run += 1) {
    hypervisor.write('vm1', 'd0', run * 200 * KiB + 5, Buffer.alloc(70 * KiB, run + 1));
    if (run % 2 === 0) hypervisor.write('vm1', 'd1', MiB, Buffer.alloc(4 * KiB, 0xa0 + run));
    clock.advance(86_400_000);
    const events = new CollectingSink<JobEvent>();
    const log = await runBackup({
      job: { ...job, remotes: ['a'] },
      scheduleId: 'night',
      trigger: 'schedule',
      hypervisor,
      remotes: [a],
      clock,
      events,
    });
    assert.equal(log.status, 'success', JSON.stringify(log.machines[0]?.error));
    logs.push(log);
    const pointId = log.machines[0]?.disks[0]?.remotes[0]?.restorePointId;
    assert.ok(pointId);
    expected.set(pointId, {
      d0: sha(hypervisor.read('vm1', 'd0')),
      d1: sha(hypervisor.read('vm1', 'd1')),
    });
    assert.ok(events.events.some((e) => e.type === 'disk-progress'));
  }
  assert.deepEqual(
    logs.map((l) => diskKinds(l)[0]),
    [
      'd0@a:key(NO_BASE)',
      'd0@a:delta',
      'd0@a:delta',
      'd0@a:delta',
      'd0@a:key(KEY_INTERVAL)',
      'd0@a:delta',
    ],
  );
  const delta = logs[1]?.machines[0]?.disks[0];
  assert.equal(delta?.read, 'delta');
  assert.equal(delta.changeTracker, 'fake');
  // 70 KiB written at offset 200 KiB + 5 touches blocks 3..4 (64 KiB blocks).
  assert.equal(delta.blocksRead, 2);
  assert.ok(
    (logs[3]?.machines[0]?.retention[0]?.removed ?? 0) >= 1,
    'retention removed the oldest point',
  );
  const points = await a.repository.listPoints('vm1');
  assert.equal(points.length, 3, 'exportRetention 3');
  for (const point of points) {
    const want = expected.get(point.pointId);
    assert.ok(want, `point ${point.pointId} was written by this test`);
    assert.equal(await restoreHash(a, 'vm1', point.pointId, 'd0', 2 * MiB), want.d0);
    assert.equal(await restoreHash(a, 'vm1', point.pointId, 'd1', MiB + 4 * KiB), want.d1);
  }
});

test('a new remote gets a key without forcing keys on the other; a failing remote is dropped', async () => {
  const { hypervisor, clock, job } = setup();
  const a = await remote('a');
  hypervisor.write('vm1', 'd0', 0, Buffer.alloc(100 * KiB, 1));
  await runBackup({
    job: { ...job, remotes: ['a'] },
    trigger: 'manual',
    hypervisor,
    remotes: [a],
    clock,
    events: new CollectingSink(),
  });
  hypervisor.write('vm1', 'd0', MiB, Buffer.alloc(10, 2));
  clock.advance(3_600_000);
  const b = await remote('b');
  const seeded = await runBackup({
    job,
    trigger: 'manual',
    hypervisor,
    remotes: [a, b],
    clock,
    events: new CollectingSink(),
  });
  assert.equal(seeded.status, 'success');
  assert.deepEqual(
    diskKinds(seeded).filter((k) => k.startsWith('d0')),
    ['d0@a:delta(FULL_READ_FOR_ANOTHER_REMOTE)', 'd0@b:key(NO_BASE)'],
  );
  const disk0 = seeded.machines[0]?.disks[0];
  assert.equal(disk0?.read, 'full', 'the whole disk was read once for remote b');
  assert.equal(disk0.remotes[0]?.blocksWritten, 1, 'remote a stored only the changed block');
  const hashNow = sha(hypervisor.read('vm1', 'd0'));
  for (const target of [a, b]) {
    const last = (await target.repository.listPoints('vm1')).at(-1);
    assert.ok(last);
    assert.equal(await restoreHash(target, 'vm1', last.pointId, 'd0', 2 * MiB), hashNow);
  }

  const broken = new FaultInjectingStore(new MemoryObjectStore(), {});
  const c = await remote('c', broken);
  broken.setPlan({
    failWhen: (op, key) =>
      op === 'put' && key.startsWith('data/')
        ? new StorageError('STORAGE_IO', 'disk full')
        : undefined,
  });
  hypervisor.write('vm1', 'd0', 2 * BLOCK, Buffer.alloc(10, 3));
  clock.advance(3_600_000);
  const partial = await runBackup({
    job,
    trigger: 'manual',
    hypervisor,
    remotes: [a, b, c],
    clock,
    events: new CollectingSink(),
  });
  assert.equal(partial.status, 'partial');
  assert.match(
    partial.machines[0]?.warnings.join('\n') ?? '',
    /remote c dropped: STORAGE_IO: disk full/,
  );
  assert.deepEqual(
    partial.machines[0]?.disks[0]?.remotes.map((r) => `${r.remoteId}:${r.status}`),
    ['a:success', 'b:success', 'c:failure'],
  );
  assert.equal(
    partial.machines[0].disks[0].read,
    'full',
    'c had no base, so the disk was read fully once',
  );
  assert.equal(
    (await c.repository.listPoints('vm1')).length,
    0,
    'nothing committed on the failed remote',
  );
});

test('every remote failing fails the machine and aborts the point: the next run loses no change', async () => {
  const { hypervisor, clock, job } = setup();
  const store = new FaultInjectingStore(new MemoryObjectStore(), {});
  const a = await remote('a', store);
  hypervisor.write('vm1', 'd0', 0, Buffer.alloc(10, 1));
  await runBackup({
    job: { ...job, remotes: ['a'] },
    trigger: 'manual',
    hypervisor,
    remotes: [a],
    clock,
    events: new CollectingSink(),
  });
  hypervisor.write('vm1', 'd0', 5 * BLOCK, Buffer.alloc(10, 2));
  store.setPlan({
    failWhen: (op, key) =>
      op === 'put' && key.startsWith('points/')
        ? new StorageError('STORAGE_IO', 'gone')
        : undefined,
  });
  clock.advance(1000);
  const failed = await runBackup({
    job: { ...job, remotes: ['a'] },
    trigger: 'manual',
    hypervisor,
    remotes: [a],
    clock,
    events: new CollectingSink(),
  });
  assert.equal(failed.status, 'failure');
  assert.equal(failed.machines[0]?.error?.code, 'JOB_NO_REMOTE_LEFT');
  store.setPlan({});
  hypervisor.write('vm1', 'd0', 9 * BLOCK, Buffer.alloc(10, 3));
  clock.advance(1000);
  const next = await runBackup({
    job: { ...job, remotes: ['a'] },
    trigger: 'manual',
    hypervisor,
    remotes: [a],
    clock,
    events: new CollectingSink(),
  });
  assert.equal(next.status, 'success');
  const disk0 = next.machines[0]?.disks[0];
  assert.equal(disk0?.read, 'delta');
  assert.deepEqual(
    disk0.blocksRead,
    2,
    'the changes of the failed run (block 5) and of now (block 9)',
  );
  const last = (await a.repository.listPoints('vm1')).at(-1);
  assert.ok(last);
  assert.equal(
    await restoreHash(a, 'vm1', last.pointId, 'd0', 2 * MiB),
    sha(hypervisor.read('vm1', 'd0')),
  );
});

test('the key interval counts backups since the key even when retention merged them away', async () => {
  const { hypervisor, clock, job } = setup();
  const a = await remote('a');
  const short = {
    ...job,
    remotes: ['a'],
    schedules: [
      {
        ...job.schedules[0],
        id: 'night',
        cron: '0 2 * * *',
        timezone: 'UTC',
        enabled: true,
        forceFull: false,
        exportRetention: 2,
      },
    ],
  };
  const kinds: string[] = [];
  for (let run = 0; run < 6; run += 1) {
    hypervisor.write('vm1', 'd0', run * BLOCK, Buffer.alloc(10, run + 1));
    clock.advance(86_400_000);
    const log = await runBackup({
      job: short,
      scheduleId: 'night',
      trigger: 'schedule',
      hypervisor,
      remotes: [a],
      clock,
      events: new CollectingSink(),
    });
    kinds.push(log.machines[0]?.disks[0]?.remotes[0]?.kind ?? 'none');
  }
  assert.deepEqual(kinds, ['key', 'delta', 'delta', 'delta', 'key', 'delta']);
  assert.equal((await a.repository.listPoints('vm1')).length, 2);
});
