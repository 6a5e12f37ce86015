// Runs of the XAPI source interrupted at each step leave no stray snapshot once the next run
// started, and the next run's delta holds every change since the last committed reference:
// killed after VM.snapshot before tagging, after the point started, after the backup was stored
// but before commit, during commit (snapshot marked exported), an abort, and a commit whose
// release meets VDI_IN_USE (retried).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { requireTool } from '../../harness/index.ts';
import {
  DISK_SIZES,
  KiB,
  MiB,
  readInto,
  startSource,
  type SourceFixture,
  at,
} from './source-fixture.ts';
import type { BackupPoint, Hypervisor } from '../../../src/hypervisor/index.ts';
import { OtherConfigKeys } from '../../../src/hypervisor/xapi/index.ts';

const BLOCK = 64 * KiB;
const scope = 'job1';

function start(h: Hypervisor, s: SourceFixture, from?: BackupPoint): Promise<BackupPoint> {
  return h.startBackupPoint(s.vm.vmUuid, {
    scope,
    blockSizeBytes: BLOCK,
    ...(from === undefined
      ? {}
      : { disks: from.disks.map((d) => ({ diskId: d.disk.id, previous: d.reference })) }),
  });
}

/** Reads every disk of `point` onto `images` and checks them against the VDIs' `expected`. */
async function readAll(
  point: BackupPoint,
  images: Buffer[],
  expected: Buffer[],
): Promise<string[]> {
  const kinds: string[] = [];
  for (const [index, disk] of point.disks.entries()) {
    const read = await readInto(disk, at(images, index));
    kinds.push(read.kind);
    assert.ok(at(images, index).equals(at(expected, index)), `disk ${index} exact`);
  }
  return kinds;
}

test('interrupted runs: every step leaves nothing behind after the next run, no change lost', async () => {
  requireTool('qemu-nbd');
  const s = await startSource();
  try {
    const images = [Buffer.alloc(DISK_SIZES[0]), Buffer.alloc(DISK_SIZES[1])];
    const snap = async (): Promise<Buffer[]> => [await s.image(0), await s.image(1)];
    await s.write(0, 0, 2 * MiB, 0x11);
    let committed = await start(s.hypervisor, s);
    await readAll(committed, images, await snap());
    await committed.commit();

    // 1. Killed between VM.snapshot and its tagging: an untagged snapshot with our name.
    await s.write(0, MiB, 10 * KiB, 0x21);
    await s.hypervisor.session.call('VM.snapshot', [s.vm.vmRef, `[vmdelta ${scope}] web-01`]);
    // 2. Killed after the point started (another process).
    await s.write(1, 2 * MiB, 10 * KiB, 0x22);
    const other = await s.reopen();
    const crashed = await start(other, s, committed);
    assert.deepEqual(
      crashed.notices.map((n) => n.code),
      ['LEFTOVERS_REMOVED'],
      'untagged one',
    );
    assert.equal(s.snapshotVms().length, 2, 'the base and the crashed point');
    await s.write(1, 4 * MiB, 70 * KiB, 0x23);
    const p2 = await start(s.hypervisor, s, committed);
    assert.deepEqual(
      p2.notices.map((n) => n.code),
      ['LEFTOVERS_REMOVED'],
    );
    assert.equal(s.snapshotVms().length, 2, 'leftovers gone: the base and the new snapshot');
    assert.deepEqual(await readAll(p2, images, await snap()), ['delta', 'delta']);
    // 3. The backup was stored (the engine holds p2's references), killed before commit.
    await s.write(0, 6 * MiB, 4 * KiB, 0x24);
    const p3 = await start(await s.reopen(), s, p2);
    assert.deepEqual(
      p3.notices.map((n) => n.code),
      ['LEFTOVERS_REMOVED'],
      'p1 snapshot released',
    );
    assert.deepEqual(await readAll(p3, images, await snap()), ['delta', 'delta']);
    // 4. Killed during p3's commit, after the exported mark: the engine still holds p3's
    //    references (manifest written) — p2 is the leftover now; or p2's: p3 is never a base.
    const session = s.hypervisor.session;
    const p3Vm = String(
      await session.call('VM.get_by_uuid', [at(p3.disks, 0).reference.attributes?.['snapshotVm']]),
    );
    await session.call('VM.add_to_other_config', [p3Vm, OtherConfigKeys.exported, 'true']);
    await s.write(0, 7 * MiB, 4 * KiB, 0x25);
    committed = p3;
    const h4 = await s.reopen();
    const p4 = await start(h4, s, committed);
    assert.deepEqual(await readAll(p4, images, await snap()), ['delta', 'delta']);
    // 5. Abort: the snapshot goes, the reference stays and still covers the changes.
    const beforeAbort = images.map((image) => Buffer.from(image));
    await p4.abort();
    assert.equal(s.snapshotVms().length, 1, 'only the base');
    await s.write(1, 0, 4 * KiB, 0x26);
    const p5 = await start(h4, s, committed);
    assert.deepEqual(await readAll(p5, beforeAbort, await snap()), ['delta', 'delta']);
    // 6. Commit meets VDI_IN_USE while releasing the base (an NBD VBD not yet unplugged).
    s.fx.sim.faults.vdiInUse.set(at(committed.disks, 0).reference.token, 2);
    await p5.commit();
    assert.deepEqual(s.snapshotVms().length, 1, 'the base was released after retries');
    assert.equal(s.fx.sim.faults.vdiInUse.get(at(committed.disks, 0).reference.token), 0);
    const blocked = s.fx.sim.db.get('VM', s.vm.vmRef)['blocked_operations'];
    assert.deepEqual(blocked, {});
    // 7. A start that fails after its snapshot (unknown backup network) leaves nothing.
    const before = s.snapshotVms();
    const misconfigured = await s.reopen({ backupNetwork: 'no-such-network' });
    await assert.rejects(
      misconfigured.startBackupPoint(s.vm.vmUuid, {
        scope,
        blockSizeBytes: BLOCK,
        disks: [{ diskId: '0', previous: at(p5.disks, 0).reference }],
      }),
      { code: 'XAPI_RECORD_INVALID' },
    );
    assert.deepEqual(s.snapshotVms(), before);
    assert.deepEqual(s.fx.sim.db.get('VM', s.vm.vmRef)['blocked_operations'], {});
  } finally {
    await s.close();
  }
});
