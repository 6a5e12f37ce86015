// The fake's test hooks give the same reasons the real sources give, and its restore works.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KiB, MiB, isVmdeltaError } from '../../src/core/index.ts';
import { MemoryDisk } from '../../src/disk/index.ts';
import { FakeHypervisor, type PointDisk } from '../../src/hypervisor/index.ts';
import { readPointDisk } from './contract.ts';

const scope = 's';

test('fake: lost, inconsistent or replaced trackers and untracked disks give keys with reasons', async () => {
  const hv = new FakeHypervisor([
    {
      id: 'vm',
      disks: [
        { id: 'a', sizeBytes: MiB },
        { id: 'b', sizeBytes: MiB },
        { id: 'c', sizeBytes: MiB },
        { id: 'raw', sizeBytes: MiB, changeTracker: 'none' },
      ],
    },
  ]);
  const p1 = await hv.startBackupPoint('vm', { scope, blockSizeBytes: 64 * KiB });
  await p1.commit();
  hv.dropTrackers('vm', 'a');
  hv.markTrackersInconsistent('vm', 'b');
  hv.replace('vm', 'c');
  const p2 = await hv.startBackupPoint('vm', {
    scope,
    blockSizeBytes: 64 * KiB,
    disks: p1.disks.map((d) => ({ diskId: d.disk.id, previous: d.reference })),
  });
  assert.deepEqual(
    p2.disks.map((d) => [d.disk.id, d.plannedFullReason?.code]),
    [
      ['a', 'BITMAP_MISSING'],
      ['b', 'BITMAP_INCONSISTENT'],
      ['c', 'DISK_REPLACED'],
      ['raw', 'NO_CHANGE_TRACKER'],
    ],
  );
  const raw = await readPointDisk(p2.disks[3] as PointDisk);
  assert.equal(raw.kind, 'full');
  await p2.commit();
});

test('fake: restore into a stopped machine disk, refused while running or on size mismatch', async () => {
  const hv = new FakeHypervisor([{ id: 'vm', disks: [{ id: 'a', sizeBytes: 256 * KiB }] }]);
  const data = new Map([[1, Buffer.alloc(64 * KiB, 7)]]);
  const source = new MemoryDisk({ sizeBytes: 256 * KiB, blockSizeBytes: 64 * KiB, data });
  const target = { kind: 'machine-disk', machineId: 'vm', diskId: 'a' } as const;
  await assert.rejects(
    hv.restoreDisk(source, target),
    (e: unknown) => isVmdeltaError(e) && e.code === 'HYPERVISOR_MACHINE_RUNNING',
  );
  hv.setPowerState('vm', 'stopped');
  const small = new MemoryDisk({ sizeBytes: 128 * KiB, blockSizeBytes: 64 * KiB, data: new Map() });
  await assert.rejects(
    hv.restoreDisk(small, target),
    (e: unknown) => isVmdeltaError(e) && e.code === 'HYPERVISOR_SIZE_MISMATCH',
  );
  const restored = await hv.restoreDisk(source, target);
  assert.equal(restored.writtenBlocks, 1);
  const disk = hv.read('vm', 'a');
  assert.ok(disk.subarray(64 * KiB, 128 * KiB).every((b) => b === 7));
  assert.ok(disk.subarray(0, 64 * KiB).every((b) => b === 0));
});
