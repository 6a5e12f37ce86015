// Every situation that forces the XAPI source to read a disk in full gives a full with its
// structured reason, and the full is the VDI's exact content: base snapshot gone, VDI migrated to
// another SR, CBT disabled or broken with a purged base, size changed, base= refused, NBD
// unavailable with a purged base, key requested, foreign reference. Purged bases still give
// CBT + NBD deltas when nothing is wrong.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { requireTool } from '../../harness/index.ts';
import {
  DISK_SIZES,
  KiB,
  MiB,
  currentVdi,
  readInto,
  startSource,
  type SourceFixture,
  at,
} from './source-fixture.ts';
import type { BackupPoint, DiskReference } from '../../../src/hypervisor/index.ts';
import {
  disableNbdOnNetwork,
  listNetworks,
  type XapiSourceSettings,
} from '../../../src/hypervisor/xapi/index.ts';

const BLOCK = 64 * KiB;
const scope = 'job1';

async function keyPoint(s: SourceFixture): Promise<BackupPoint> {
  await s.write(0, 0, 3 * MiB, 0x61);
  await s.write(1, MiB, 100 * KiB, 0x62);
  const point = await s.hypervisor.startBackupPoint(s.vm.vmUuid, {
    scope,
    blockSizeBytes: BLOCK,
    disks: [{ diskId: '0' }],
  });
  await readInto(at(point.disks, 0), Buffer.alloc(DISK_SIZES[0]));
  await point.commit();
  return point;
}

/** A point of disk 0 from `previous`: must be a full with `reason`, bit-exact. */
async function expectFull(
  s: SourceFixture,
  previous: DiskReference,
  reason: string,
  planned: 'full' | 'delta' = 'full',
): Promise<void> {
  await s.write(0, 2 * MiB + 3, 10 * KiB, 0x70);
  const expected = await s.image(0);
  const point = await s.hypervisor.startBackupPoint(s.vm.vmUuid, {
    scope,
    blockSizeBytes: BLOCK,
    disks: [{ diskId: '0', previous }],
  });
  const disk = at(point.disks, 0);
  assert.equal(disk.plannedKind, planned, `planned ${reason}`);
  const image = Buffer.alloc(DISK_SIZES[0]);
  const read = await readInto(disk, image);
  assert.deepEqual([read.kind, read.reason], ['full', reason]);
  assert.ok(image.equals(expected), `${reason}: the full is the disk at the snapshot`);
  await point.commit();
  assert.equal(s.snapshotVms().length <= 1, true, 'no stray snapshot');
}

async function withSource(
  settings: XapiSourceSettings,
  body: (s: SourceFixture, first: DiskReference) => Promise<void>,
): Promise<void> {
  requireTool('qemu-nbd');
  const s = await startSource({ settings });
  try {
    const first = await keyPoint(s);
    await body(s, at(first.disks, 0).reference);
  } finally {
    await s.close();
  }
}

test('forced full: the base snapshot was deleted (BASE_MISSING)', () =>
  withSource({}, async (s, first) => {
    const session = s.hypervisor.session;
    const snapshotVm = String(
      await session.call('VM.get_by_uuid', [first.attributes?.['snapshotVm']]),
    );
    await session.call('VM.destroy', [snapshotVm]);
    await session.call('VDI.destroy', [
      String(await session.call('VDI.get_by_uuid', [first.token])),
    ]);
    await expectFull(s, first, 'BASE_MISSING');
  }));

test('forced full: the VDI migrated to another SR (VDI_MIGRATED)', () =>
  withSource({}, async (s, first) => {
    const otherSr = String(s.fx.sim.db.get('SR', s.fx.sim.db.srRefs[1])['uuid']);
    await s.fx.sim.migrateVdi(currentVdi(s.fx, s.vm, 0), otherSr);
    await expectFull(s, first, 'VDI_MIGRATED');
    assert.deepEqual(
      s.snapshotVdis().filter((v) => v.uuid === first.token),
      [],
      'the orphaned base was released',
    );
  }));

test('forced full: size changed (DISK_RESIZED), key requested, foreign reference', () =>
  withSource({}, async (s, first) => {
    const point = await s.hypervisor.startBackupPoint(s.vm.vmUuid, {
      scope,
      blockSizeBytes: BLOCK,
      disks: [
        { diskId: '0', previous: first, mode: 'key' },
        { diskId: '1', previous: first },
      ],
    });
    assert.deepEqual(
      point.disks.map((d) => d.plannedFullReason?.code),
      ['KEY_REQUESTED', 'REFERENCE_FOREIGN'],
    );
    await point.abort();
    assert.equal(s.snapshotVms().length, 1, 'abort destroyed its snapshot, the base stays');
    await expectFull(s, { ...first, sizeBytes: first.sizeBytes - MiB }, 'DISK_RESIZED');
  }));

test('forced full: base= refused by XAPI on the stream path (BASE_REFUSED)', () =>
  withSource({ preferNbd: false }, async (s, first) => {
    s.fx.sim.faults.refuseVhdBase = true;
    await expectFull(s, first, 'BASE_REFUSED', 'delta');
  }));

test('purged bases: CBT + NBD deltas; CBT disabled, CBT broken, NBD gone each force a full', () =>
  withSource({ purgeSnapshotData: true }, async (s, first) => {
    assert.deepEqual(s.snapshotVms(), [], 'purge destroys the snapshot VM');
    assert.deepEqual(
      s.snapshotVdis().map((v) => v.type),
      ['cbt_metadata'],
      'and keeps the CBT metadata as the next base',
    );
    // A delta from a purged base.
    const image = await s.image(0);
    await s.write(0, 5 * MiB, 4 * KiB, 0x71);
    const expected = await s.image(0);
    const delta = await s.hypervisor.startBackupPoint(s.vm.vmUuid, {
      scope,
      blockSizeBytes: BLOCK,
      disks: [{ diskId: '0', previous: first }],
    });
    const read = await readInto(at(delta.disks, 0), image);
    assert.deepEqual([read.kind, read.tracker, read.blocks], ['delta', 'xapi-cbt', [80]]);
    assert.ok(image.equals(expected));
    await delta.commit();
    assert.equal(s.snapshotVdis().length, 1, 'the previous cbt_metadata VDI was destroyed');
    let previous = at(delta.disks, 0).reference;

    // CBT switched off by sm (inconsistent metadata): the purged base cannot be diffed.
    s.fx.sim.breakCbt(currentVdi(s.fx, s.vm, 0));
    const next = async (reason: string): Promise<void> => {
      await expectFull(s, previous, reason);
      const refs = s.snapshotVdis();
      assert.equal(refs.length, 1);
      previous = { ...previous, token: at(refs, 0).uuid };
    };
    await next('CBT_DISABLED');
    // CBT on at both ends but the log chain restarted: list_changed_blocks fails.
    const session = s.hypervisor.session;
    const live = currentVdi(s.fx, s.vm, 0);
    await session.call('VDI.disable_cbt', [live]);
    await session.call('VDI.enable_cbt', [live]);
    await next('CBT_FAILED');
    // NBD no longer available: nothing can read the changed blocks of a purged base.
    const backup = (await listNetworks(session)).find(
      (n) => n.record.name_label === 'Backup network',
    );
    await disableNbdOnNetwork(session, backup?.ref ?? '');
    await expectFull(s, previous, 'VDI_NO_CBT_METADATA', 'delta');
  }));
