import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import {
  CBT_BLOCK_BYTES,
  OtherConfigKeys,
  XapiError,
  blockVmOperations,
  createVdi,
  getHostTime,
  importRawVdi,
  refByUuid,
  unblockVmOperations,
  changedBlockSet,
  dataDestroyVdi,
  enableCbt,
  getVdiRecord,
  getVmRecord,
  iterateChangedRanges,
  listBackupSourceVms,
  listChangedBlocks,
  listVmDisks,
  releaseSnapshot,
  snapshotVm,
} from '../../../src/hypervisor/xapi/index.ts';
import { startSim } from './sim-fixture.ts';

const MiB = 1024 * 1024;

test('backup sources exclude templates, control domains and snapshots; disks skip CDs and [NOBAK]', async () => {
  const fx = await startSim();
  try {
    const web = await fx.sim.addVm({
      nameLabel: 'web',
      cdrom: true,
      disks: [
        { nameLabel: 'root', sizeBytes: MiB },
        { nameLabel: '[NOBAK] scratch', sizeBytes: MiB },
        { nameLabel: 'cache', sizeBytes: MiB, tags: ['vmdelta:no-backup'] },
      ],
    });
    await fx.sim.addVm({ nameLabel: 'app', disks: [{ nameLabel: 'root', sizeBytes: MiB }] });
    const session = await fx.connect();
    await snapshotVm(session, web.vmRef, { nameLabel: 'manual snapshot' });
    const vms = await listBackupSourceVms(session);
    assert.deepEqual(
      vms.map((vm) => vm.record.name_label),
      ['app', 'web'],
    );
    const webEntry = vms.find((vm) => vm.ref === web.vmRef);
    assert.ok(webEntry !== undefined);
    const disks = await listVmDisks(session, webEntry.record);
    assert.deepEqual(
      disks.map((d) => [d.vdi.name_label, d.excluded, d.vbd.userdevice]),
      [
        ['root', false, '0'],
        ['[NOBAK] scratch', true, '1'],
        ['cache', true, '2'],
      ],
    );
    assert.equal(disks[0]?.vdi.virtual_size, MiB);
  } finally {
    await fx.close();
  }
});

test('records accept 64-bit integers sent as strings', async () => {
  const fx = await startSim();
  try {
    const vm = await fx.sim.addVm({
      nameLabel: 'x',
      disks: [{ nameLabel: 'd', sizeBytes: 3 * MiB }],
    });
    fx.sim.faults.intsAsStrings = true;
    const session = await fx.connect();
    const vdi = await getVdiRecord(session, vm.vdiRefs[0] ?? '');
    assert.equal(vdi.virtual_size, 3 * MiB);
    assert.equal(typeof vdi.virtual_size, 'number');
  } finally {
    await fx.close();
  }
});

test('snapshot: tagged with our keys on the VM and its VDIs, not a template, ignore_vdis honoured', async () => {
  const fx = await startSim();
  try {
    const vm = await fx.sim.addVm({
      nameLabel: 'web',
      disks: [
        { nameLabel: 'root', sizeBytes: MiB },
        { nameLabel: '[NOBAK] tmp', sizeBytes: MiB },
      ],
    });
    const session = await fx.connect();
    const tags = { [OtherConfigKeys.job]: 'job-1', [OtherConfigKeys.vm]: vm.vmUuid };
    const result = await snapshotVm(session, vm.vmRef, {
      nameLabel: 'vmdelta',
      ignoreVdis: [vm.vdiRefs[1] ?? ''],
      tags,
    });
    const snapshot = await getVmRecord(session, result.snapshotRef);
    assert.equal(snapshot.is_a_snapshot, true);
    assert.equal(snapshot.is_a_template, false);
    assert.equal(snapshot.snapshot_of, vm.vmRef);
    assert.equal(snapshot.other_config[OtherConfigKeys.job], 'job-1');
    assert.equal(result.vdiRefs.length, 1, 'the ignored disk was not snapshotted');
    const vdi = await getVdiRecord(session, result.vdiRefs[0] ?? '');
    assert.equal(vdi.snapshot_of, vm.vdiRefs[0]);
    assert.deepEqual(
      [vdi.other_config[OtherConfigKeys.job], vdi.other_config[OtherConfigKeys.vm]],
      ['job-1', vm.vmUuid],
    );
    // Older XAPI without ignore_vdis: retried without it, every disk snapshotted.
    fx.sim.faults.noIgnoreVdis = true;
    const old = await snapshotVm(session, vm.vmRef, {
      nameLabel: 'old',
      ignoreVdis: [vm.vdiRefs[1] ?? ''],
    });
    assert.equal(old.vdiRefs.length, 2);
  } finally {
    await fx.close();
  }
});

test('release: VM and VDIs destroyed, VDI_IN_USE retried; data_destroy leaves cbt_metadata', async () => {
  const fx = await startSim();
  try {
    const vm = await fx.sim.addVm({
      nameLabel: 'web',
      disks: [{ nameLabel: 'root', sizeBytes: MiB }],
    });
    const session = await fx.connect();
    await enableCbt(session, vm.vdiRefs[0] ?? '');
    const first = await snapshotVm(session, vm.vmRef, { nameLabel: 's1' });
    const firstVdiUuid = (await getVdiRecord(session, first.vdiRefs[0] ?? '')).uuid;
    fx.sim.faults.vdiInUse.set(firstVdiUuid, 2);
    await releaseSnapshot(session, first.snapshotRef, { vdiMode: 'destroy', backoffMs: 5 });
    await assert.rejects(session.call('VM.get_record', [first.snapshotRef]), {
      xapiCode: 'HANDLE_INVALID',
    });
    await assert.rejects(session.call('VDI.get_record', [first.vdiRefs[0]]), {
      xapiCode: 'HANDLE_INVALID',
    });
    assert.equal(
      fx.sim.faults.vdiInUse.get(firstVdiUuid),
      0,
      'two VDI_IN_USE answers were retried',
    );

    const second = await snapshotVm(session, vm.vmRef, { nameLabel: 's2' });
    const secondVdi = second.vdiRefs[0] ?? '';
    fx.sim.faults.vdiInUse.set((await getVdiRecord(session, secondVdi)).uuid, 5);
    await assert.rejects(dataDestroyVdi(session, secondVdi, { attempts: 3, backoffMs: 1 }), {
      xapiCode: 'VDI_IN_USE',
      retryable: true,
    });
    fx.sim.faults.vdiInUse.clear();
    await releaseSnapshot(session, second.snapshotRef, { vdiMode: 'data_destroy' });
    const metadata = await getVdiRecord(session, secondVdi);
    assert.equal(metadata.type, 'cbt_metadata');
    await assert.rejects(session.call('VDI.get_nbd_info', [secondVdi]), {
      xapiCode: 'VDI_INCOMPATIBLE_TYPE',
    });
    await assert.rejects(releaseSnapshot(session, vm.vmRef, { vdiMode: 'destroy' }), {
      code: 'XAPI_PROTOCOL',
    });
  } finally {
    await fx.close();
  }
});

/** The 64 KiB blocks touched by a list of writes. */
function touched(writes: readonly { offsetBytes: number; lengthBytes: number }[]): number[] {
  const blocks = new Set<number>();
  for (const w of writes) {
    for (
      let b = Math.floor(w.offsetBytes / CBT_BLOCK_BYTES);
      b <= Math.floor((w.offsetBytes + w.lengthBytes - 1) / CBT_BLOCK_BYTES);
      b += 1
    )
      blocks.add(b);
  }
  return [...blocks].sort((a, b) => a - b);
}

function blocksOfRanges(ranges: Iterable<{ offsetBytes: number; lengthBytes: number }>): number[] {
  const blocks: number[] = [];
  for (const r of ranges) {
    for (
      let b = r.offsetBytes / CBT_BLOCK_BYTES;
      b < Math.ceil((r.offsetBytes + r.lengthBytes) / CBT_BLOCK_BYTES);
      b += 1
    )
      blocks.push(b);
  }
  return blocks;
}

test('CBT: list_changed_blocks equals the real writes at 64 KiB granularity, across snapshots', async () => {
  const diskBytes = 16 * MiB + 12_345; // not a multiple of 64 KiB: the last block is partial
  const fx = await startSim();
  try {
    const vm = await fx.sim.addVm({
      nameLabel: 'db',
      disks: [{ nameLabel: 'd', sizeBytes: diskBytes }],
    });
    const vdi = vm.vdiRefs[0] ?? '';
    const session = await fx.connect();
    await enableCbt(session, vdi);
    const base = await snapshotVm(session, vm.vmRef, { nameLabel: 'base' });
    const writeArb = fc.array(
      fc.record({
        offsetBytes: fc.integer({ min: 0, max: diskBytes - 1 }),
        lengthBytes: fc.integer({ min: 1, max: 300_000 }),
      }),
      { minLength: 0, maxLength: 12 },
    );
    const rounds = fc.sample(writeArb, { numRuns: 3, seed: 42 });
    const allWrites: { offsetBytes: number; lengthBytes: number }[] = [];
    let previous = base;
    for (const writes of rounds) {
      const clamped = writes.map((w) => ({
        offsetBytes: w.offsetBytes,
        lengthBytes: Math.min(w.lengthBytes, diskBytes - w.offsetBytes),
      }));
      for (const w of clamped)
        await fx.sim.writeToVdi(vdi, w.offsetBytes, randomBytes(w.lengthBytes));
      allWrites.push(...clamped);
      const next = await snapshotVm(session, vm.vmRef, { nameLabel: 'next' });
      const step = await listChangedBlocks(
        session,
        previous.vdiRefs[0] ?? '',
        next.vdiRefs[0] ?? '',
        diskBytes,
      );
      assert.deepEqual(
        blocksOfRanges(iterateChangedRanges(step)),
        touched(clamped),
        'one interval',
      );
      const total = await listChangedBlocks(
        session,
        base.vdiRefs[0] ?? '',
        next.vdiRefs[0] ?? '',
        diskBytes,
      );
      assert.deepEqual(
        blocksOfRanges(iterateChangedRanges(total)),
        touched(allWrites),
        'since the base',
      );
      // Changed ranges really cover every byte that differs between the two snapshots.
      const before = await fx.sim.readVdi(base.vdiRefs[0] ?? '');
      const after = await fx.sim.readVdi(next.vdiRefs[0] ?? '');
      const changed = new Set(blocksOfRanges(iterateChangedRanges(total)));
      for (let b = 0; b * CBT_BLOCK_BYTES < diskBytes; b += 1) {
        const slice = (buf: Buffer) => buf.subarray(b * CBT_BLOCK_BYTES, (b + 1) * CBT_BLOCK_BYTES);
        if (!slice(before).equals(slice(after)))
          assert.ok(changed.has(b), `block ${b} differs but is not listed`);
      }
      assert.equal(changedBlockSet(total, 2 * MiB).blockCount, Math.ceil(diskBytes / (2 * MiB)));
      previous = next;
    }
    // A destroyed intermediate snapshot does not break the chain.
    const last = await snapshotVm(session, vm.vmRef, { nameLabel: 'last' });
    await releaseSnapshot(session, previous.snapshotRef, { vdiMode: 'destroy' });
    const sinceBase = await listChangedBlocks(
      session,
      base.vdiRefs[0] ?? '',
      last.vdiRefs[0] ?? '',
      diskBytes,
    );
    assert.deepEqual(blocksOfRanges(iterateChangedRanges(sinceBase)), touched(allWrites));
  } finally {
    await fx.close();
  }
});

test('CBT disabled or the VDI migrated to another SR: list_changed_blocks fails, typed', async () => {
  const fx = await startSim();
  try {
    const vm = await fx.sim.addVm({
      nameLabel: 'db',
      disks: [{ nameLabel: 'd', sizeBytes: 2 * MiB }],
    });
    const session = await fx.connect();
    await enableCbt(session, vm.vdiRefs[0] ?? '');
    const base = await snapshotVm(session, vm.vmRef, { nameLabel: 'base' });
    fx.sim.breakCbt(vm.vdiRefs[0] ?? '');
    assert.equal((await getVdiRecord(session, vm.vdiRefs[0] ?? '')).cbt_enabled, false);
    await enableCbt(session, vm.vdiRefs[0] ?? '');
    const next = await snapshotVm(session, vm.vmRef, { nameLabel: 'next' });
    const error = await listChangedBlocks(
      session,
      base.vdiRefs[0] ?? '',
      next.vdiRefs[0] ?? '',
      2 * MiB,
    ).catch((e: unknown) => e);
    assert.ok(error instanceof XapiError);
    assert.equal(error.xapiCode, 'SR_BACKEND_FAILURE_460');
    assert.match(error.xapiParams[1] ?? '', /unrelated/);

    const sr = (await session.call('SR.get_all_records')) as Record<
      string,
      { uuid: string; name_label: string }
    >;
    const shared = Object.values(sr).find((r) => r.name_label === 'Shared NFS');
    const moved = await fx.sim.migrateVdi(vm.vdiRefs[0] ?? '', shared?.uuid ?? '');
    const vmRecord = await getVmRecord(session, vm.vmRef);
    const disks = await listVmDisks(session, vmRecord);
    assert.equal(disks[0]?.vdi.uuid, moved.vdiUuid);
    assert.notEqual(moved.vdiUuid, vm.vdiUuids[0]);
    assert.equal(disks[0].vdi.cbt_enabled, false);
    await assert.rejects(session.call('VDI.get_record', [vm.vdiRefs[0]]), {
      xapiCode: 'HANDLE_INVALID',
    });
  } finally {
    await fx.close();
  }
});

test('migrations blocked and unblocked; uuid lookups; host time', async () => {
  const fx = await startSim();
  try {
    const vm = await fx.sim.addVm({
      nameLabel: 'web',
      disks: [{ nameLabel: 'root', sizeBytes: MiB }],
    });
    const session = await fx.connect();
    await blockVmOperations(session, vm.vmRef, 'vmdelta backup running');
    await blockVmOperations(session, vm.vmRef, 'vmdelta backup running'); // idempotent
    assert.deepEqual((await getVmRecord(session, vm.vmRef)).blocked_operations, {
      pool_migrate: 'vmdelta backup running',
      migrate_send: 'vmdelta backup running',
    });
    await unblockVmOperations(session, vm.vmRef);
    assert.deepEqual((await getVmRecord(session, vm.vmRef)).blocked_operations, {});
    assert.equal(await refByUuid(session, 'VM', vm.vmUuid), vm.vmRef);
    assert.equal(await refByUuid(session, 'VDI', vm.vdiUuids[0] ?? ''), vm.vdiRefs[0]);
    await assert.rejects(refByUuid(session, 'VM', 'no-such-uuid'), { xapiCode: 'UUID_INVALID' });
    const hosts = (await session.call('host.get_all')) as string[];
    assert.match(await getHostTime(session, hosts[0] ?? ''), /^\d{8}T\d\d:\d\d:\d\dZ$/);
  } finally {
    await fx.close();
  }
});

test('createVdi makes an empty disk on an SR that import_raw_vdi can fill', async () => {
  const fx = await startSim();
  try {
    const session = await fx.connect();
    const srs = (await session.call('SR.get_all')) as string[];
    const vdiRef = await createVdi(session, {
      srRef: srs[1] ?? '',
      nameLabel: 'restored disk',
      virtualSizeBytes: 2 * MiB,
      otherConfig: { 'vmdelta:restore': 'yes' },
    });
    const vdi = await getVdiRecord(session, vdiRef);
    assert.deepEqual(
      [vdi.virtual_size, vdi.SR, vdi.other_config['vmdelta:restore']],
      [2 * MiB, srs[1], 'yes'],
    );
    const data = randomBytes(2 * MiB);
    await importRawVdi(session, {
      vdi: vdi.uuid,
      format: 'raw',
      openBody: () => Readable.from([data]),
      contentLengthBytes: data.length,
    });
    assert.ok((await fx.sim.readVdi(vdiRef)).equals(data));
    await assert.rejects(
      createVdi(session, { srRef: srs[0] ?? '', nameLabel: 'x', virtualSizeBytes: 0 }),
      {
        code: 'XAPI_PROTOCOL',
      },
    );
  } finally {
    await fx.close();
  }
});
