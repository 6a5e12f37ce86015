// The XAPI source under the jobs engine on the simulator: runBackup writes a key, then deltas by
// CBT + NBD, by the VHD BAT + NBD (CBT broken), by the plain VHD stream (preferNbd off), then a
// key of a migrated VDI; every restore point read back from the repository equals the VDI at its
// snapshot; a point restored through XAPI (new VDI, then a new VM with both disks) is bit-exact.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { CollectingSink, ManualClock } from '../../../src/core/index.ts';
import { Repository, openPointDisk } from '../../../src/repository/index.ts';
import { MemoryObjectStore } from '../../../src/storage/index.ts';
import { parseJobDefinition, runBackup, type RunLog } from '../../../src/jobs/index.ts';
import { requireTool } from '../../harness/index.ts';
import { DISK_SIZES, KiB, MiB, currentVdi, startSource, at } from './source-fixture.ts';

const BLOCK = 64 * KiB;
const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

test('xapi source under runBackup: key, three delta transports, migrated VDI; restores exact', async () => {
  requireTool('qemu-nbd');
  const s = await startSource();
  try {
    const repository = await Repository.init(new MemoryObjectStore({ name: 'a' }), {
      blockSizeBytes: BLOCK,
    });
    const remotes = [{ id: 'a', repository }];
    const clock = new ManualClock(Date.UTC(2026, 10, 1));
    const job = parseJobDefinition({
      id: 'nightly',
      name: 'Nightly',
      source: 'pool',
      machines: { ids: [s.vm.vmUuid] },
      remotes: ['a'],
      settings: { fullInterval: 0, nbdConcurrency: 4 },
    });
    const expected = new Map<string, string[]>();
    const logs: RunLog[] = [];
    const steps: (() => Promise<void>)[] = [
      async () => {
        await s.write(0, 0, 3 * MiB, 0x11);
        await s.write(1, MiB, 500 * KiB, 0x12);
      },
      async () => {
        await s.write(0, 4 * MiB + 7, 70 * KiB, 0x21);
        await s.write(1, 0, 4 * KiB, 0x22);
      },
      async () => {
        s.fx.sim.breakCbt(currentVdi(s.fx, s.vm, 0));
        await s.write(0, 6 * MiB, 100 * KiB, 0x31);
      },
      async () => {
        await s.write(0, 100 * KiB, 10 * KiB, 0x41);
        await s.write(1, 5 * MiB, 64 * KiB, 0x42);
      },
      async () => {
        const otherSr = String(s.fx.sim.db.get('SR', s.fx.sim.db.srRefs[1])['uuid']);
        await s.fx.sim.migrateVdi(currentVdi(s.fx, s.vm, 1), otherSr);
        await s.write(1, 2 * MiB, 4 * KiB, 0x52);
      },
    ];
    for (const [run, step] of steps.entries()) {
      await step();
      const images = [await s.image(0), await s.image(1)];
      clock.advance(86_400_000);
      const log = await runBackup({
        job: { ...job, settings: { ...job.settings, preferNbd: run !== 3 } },
        trigger: 'manual',
        hypervisor: s.hypervisor,
        remotes,
        clock,
        events: new CollectingSink(),
      });
      assert.equal(log.status, 'success', JSON.stringify(log.machines[0]?.error ?? log.warnings));
      logs.push(log);
      const pointId = log.machines[0]?.disks[0]?.remotes[0]?.restorePointId;
      assert.ok(pointId);
      expected.set(pointId, images.map(sha));
      assert.equal(s.snapshotVms().length, 1, `run ${run}: one snapshot, the next base`);
    }
    const summary = logs.map((log) =>
      (log.machines[0]?.disks ?? []).map(
        (d) =>
          `${d.diskId}:${d.read}/${d.changeTracker}/${d.transport.type}${d.remotes[0]?.reason === undefined ? '' : `(${d.remotes[0].reason})`}`,
      ),
    );
    assert.deepEqual(
      summary.map((disks) => disks.map((d) => d.replace(/\(.*\)/, ''))),
      [
        ['0:full/none/nbd', '1:full/none/nbd'],
        ['0:delta/xapi-cbt/nbd', '1:delta/xapi-cbt/nbd'],
        ['0:delta/vhd-delta-stream/nbd', '1:delta/xapi-cbt/nbd'],
        ['0:delta/vhd-delta-stream/stream', '1:delta/vhd-delta-stream/stream'],
        ['0:delta/xapi-cbt/nbd', '1:full/none/nbd'], // CBT back on disk 0 since run 3
      ],
    );
    assert.match(summary[4]?.[1] ?? '', /VDI_MIGRATED/, JSON.stringify(summary));

    const points = await repository.listPoints(s.vm.vmUuid);
    assert.equal(points.length, 5);
    for (const point of points) {
      for (const [index, sizeBytes] of DISK_SIZES.entries()) {
        const disk = await openPointDisk(repository, s.vm.vmUuid, point.pointId, String(index));
        const image = Buffer.alloc(sizeBytes);
        for await (const block of disk.readBlocks()) block.data.copy(image, block.index * BLOCK);
        await disk.close();
        assert.equal(sha(image), expected.get(point.pointId)?.[index], `${point.pointId}/${index}`);
      }
    }

    // Restore the oldest point's disk 0 into a new VDI, then the newest point as a new VM.
    const sr = String(s.fx.sim.db.get('SR', s.fx.sim.db.srRefs[0])['uuid']);
    const oldest = at(points, 0).pointId;
    const source = await openPointDisk(repository, s.vm.vmUuid, oldest, '0');
    const restored = await s.hypervisor.restoreDisk(source, {
      kind: 'new-disk',
      storageId: sr,
      label: 'restored system',
    });
    await source.close();
    assert.equal(restored.transport.protocol, 'stream');
    assert.equal(sha(await s.fx.sim.readVdi(restored.location)), expected.get(oldest)?.[0]);

    const newest = at(points, points.length - 1).pointId;
    const sources = await Promise.all(
      [0, 1].map((i) => openPointDisk(repository, s.vm.vmUuid, newest, String(i))),
    );
    const machine = await s.hypervisor.restoreMachine({
      machine: { label: 'web-01 restored' },
      disks: sources.map((disk, i) => ({
        source: disk,
        target: { kind: 'new-disk' as const, storageId: sr, label: `disk ${i}` },
      })),
    });
    for (const disk of sources) await disk.close();
    assert.ok(machine.machineId);
    const info = await s.hypervisor.getMachine(machine.machineId);
    assert.deepEqual(
      info.disks.map((d) => [d.id, d.sizeBytes]),
      [
        ['0', DISK_SIZES[0]],
        ['1', DISK_SIZES[1]],
      ],
    );
    for (const [i, disk] of machine.disks.entries()) {
      assert.equal(sha(await s.fx.sim.readVdi(disk.location)), expected.get(newest)?.[i]);
    }
  } finally {
    await s.close();
  }
});
