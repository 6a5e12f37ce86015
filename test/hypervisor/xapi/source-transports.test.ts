// The XAPI source at the seam on the simulator: machines and disks (exclusions, stable ids), a
// key then deltas by each of the three transports (CBT + NBD, VHD BAT + NBD, VHD stream), each
// applied onto the previous image giving exactly the VDI's content at the snapshot.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { requireTool } from '../../harness/index.ts';
import { DISK_SIZES, KiB, MiB, readInto, startSource, at } from './source-fixture.ts';
import type { BackupPoint, DiskReference } from '../../../src/hypervisor/index.ts';

const BLOCK = 64 * KiB;

function refs(point: BackupPoint): { diskId: string; previous: DiskReference }[] {
  return point.disks.map((d) => ({ diskId: d.disk.id, previous: d.reference }));
}

test('xapi source: machines, disks, exclusions and a key of both disks over NBD', async () => {
  requireTool('qemu-nbd');
  const s = await startSource();
  try {
    const machines = await s.hypervisor.listMachines();
    assert.deepEqual(
      machines.map((m) => m.label),
      ['web-01'],
    );
    const machine = await s.hypervisor.getMachine(s.vm.vmUuid);
    assert.deepEqual(
      machine.disks.map((d) => [d.id, d.label, d.sizeBytes, d.identity]),
      [
        ['0', 'system', DISK_SIZES[0], s.vm.vdiUuids[0]],
        ['1', 'data', DISK_SIZES[1], s.vm.vdiUuids[1]],
      ],
      '[NOBAK] disk and CD drive left out; ids are VBD positions',
    );
    await assert.rejects(s.hypervisor.getMachine('00000000-0000-0000-0000-000000000000'), {
      code: 'HYPERVISOR_MACHINE_NOT_FOUND',
    });
    await s.write(0, 0, MiB, 0x11);
    await s.write(1, 3 * MiB, 200 * KiB, 0x22);
    const expected = [await s.image(0), await s.image(1)];
    const point = await s.hypervisor.startBackupPoint(s.vm.vmUuid, {
      scope: 'job1',
      blockSizeBytes: BLOCK,
      connections: 4,
    });
    await assert.rejects(
      s.hypervisor.startBackupPoint(s.vm.vmUuid, { scope: 'job1', blockSizeBytes: BLOCK }),
      { code: 'HYPERVISOR_MACHINE_BUSY' },
    );
    await s.write(0, 0, 4 * KiB, 0x99); // after the snapshot: must not appear
    assert.equal(s.snapshotVms().length, 1);
    for (const [index, disk] of point.disks.entries()) {
      const image = Buffer.alloc(DISK_SIZES[index] ?? 0);
      const read = await readInto(disk, image);
      assert.deepEqual(
        [read.kind, read.reason, read.transport],
        ['full', 'NO_PREVIOUS_REFERENCE', 'nbd x4'],
      );
      assert.ok(image.equals(expected[index] ?? Buffer.alloc(0)), `disk ${index} bit-exact`);
      assert.ok(
        read.blocks.length < at(DISK_SIZES, index) / BLOCK,
        'only allocated blocks are read',
      );
    }
    await point.commit();
    assert.equal(s.snapshotVms().length, 1, 'the exported snapshot stays as the next base');
    assert.equal(s.fx.sim.nbdConnections, 0, 'NBD connections closed');
    const blocked = s.fx.sim.db.get('VM', s.vm.vmRef)['blocked_operations'];
    assert.deepEqual(blocked, {}, 'migrations unblocked');
    assert.equal(
      s.fx.logger.records.some((r) => JSON.stringify(r).includes('session_id=')),
      false,
      'no export name or session in the logs',
    );
  } finally {
    await s.close();
  }
});

for (const transport of ['cbt-nbd', 'bat-nbd', 'vhd-stream'] as const) {
  test(`xapi source: deltas by ${transport} are exactly the snapshot's changes`, async () => {
    requireTool('qemu-nbd');
    const s = await startSource({
      settings: { preferNbd: transport !== 'vhd-stream' },
    });
    try {
      await s.write(0, 0, 3 * MiB, 0x31);
      await s.write(1, MiB, MiB, 0x32);
      const images = [Buffer.alloc(DISK_SIZES[0]), Buffer.alloc(DISK_SIZES[1])];
      let point = await s.hypervisor.startBackupPoint(s.vm.vmUuid, {
        scope: 'job1',
        blockSizeBytes: BLOCK,
        connections: 2,
      });
      for (const [index, disk] of point.disks.entries()) await readInto(disk, at(images, index));
      await point.commit();
      for (let round = 0; round < 3; round += 1) {
        await s.write(0, (round + 1) * 1_000_000 + 5, 70 * KiB, 0x40 + round);
        await s.write(1, 5 * MiB - round * 300 * KiB, 4 * KiB, 0x50 + round);
        if (transport === 'bat-nbd') {
          for (const uuid of s.vm.vdiUuids.slice(0, 2)) s.fx.sim.breakCbt(uuid);
        }
        const expected = [await s.image(0), await s.image(1)];
        point = await s.hypervisor.startBackupPoint(s.vm.vmUuid, {
          scope: 'job1',
          blockSizeBytes: BLOCK,
          connections: 2,
          disks: refs(point),
        });
        for (const [index, disk] of point.disks.entries()) {
          assert.equal(disk.plannedKind, 'delta');
          const read = await readInto(disk, at(images, index));
          assert.equal(read.kind, 'delta');
          assert.ok(at(images, index).equals(at(expected, index)), `round ${round} disk ${index}`);
          if (transport === 'cbt-nbd') {
            assert.deepEqual([read.tracker, read.transport], ['xapi-cbt', 'nbd x2']);
            // 70 KiB at an odd offset touches two or three 64 KiB blocks, never a 2 MiB block.
            assert.ok(read.blocks.length <= 3, `${read.blocks.length} blocks`);
          } else if (transport === 'bat-nbd') {
            assert.deepEqual([read.tracker, read.transport], ['vhd-delta-stream', 'nbd x2']);
            assert.ok(read.blocks.length <= 64, 'whole 2 MiB VHD blocks');
          } else {
            assert.deepEqual([read.tracker, read.transport], ['vhd-delta-stream', 'stream vhd']);
          }
        }
        await point.commit();
        assert.equal(s.snapshotVms().length, 1, 'only the newest snapshot is kept');
      }
    } finally {
      await s.close();
    }
  });
}
