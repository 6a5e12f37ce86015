// Whole-VM restore on the simulator: a VM with two disks and two VIFs on different networks is
// backed up by the engine (its description lands in the manifest), then restored as a new VM:
// disks bit-exact, VIFs on the same networks with the saved MACs and MTUs, memory, vCPUs, boot and
// platform as saved; MACs still in use are regenerated with a warning; missing networks, invalid
// MACs, old descriptions and failed imports are handled without leaving a half-made VM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { CollectingSink, ManualClock } from '../../../src/core/index.ts';
import { MemoryDisk, type DiskSource } from '../../../src/disk/index.ts';
import { Repository, openPointDisk } from '../../../src/repository/index.ts';
import { MemoryObjectStore } from '../../../src/storage/index.ts';
import { parseJobDefinition, runBackup } from '../../../src/jobs/index.ts';
import {
  parseMachineMetadata,
  type MachineMetadata,
  type MachineRestoreRequest,
} from '../../../src/hypervisor/index.ts';
import { XapiHypervisor } from '../../../src/hypervisor/xapi/index.ts';
import { makeSimVhdEncoder } from '../../xapi-sim/index.ts';
import { startSim, type SimFixture } from './sim-fixture.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex');
const MACS = ['02:16:3e:00:00:01', '02:16:3e:00:00:02'] as const;

async function startPool(): Promise<{ fx: SimFixture; hypervisor: XapiHypervisor; sr: string }> {
  const fx = await startSim({ vhdEncoder: makeSimVhdEncoder({ exports: 0, blocks: 0 }) });
  fx.sim.faults.asyncDelayMs = 1;
  const hypervisor = new XapiHypervisor(await fx.connect(), { release: { backoffMs: 10 } });
  const sr = String(fx.sim.db.get('SR', fx.sim.db.srRefs[0])['uuid']);
  return { fx, hypervisor, sr };
}

function vmFields() {
  return {
    name_description: 'the web server',
    memory_static_min: GiB,
    memory_dynamic_min: 2 * GiB,
    memory_dynamic_max: 4 * GiB,
    memory_static_max: 4 * GiB,
    VCPUs_max: 4,
    VCPUs_at_startup: 3,
    HVM_boot_params: { order: 'dc', firmware: 'uefi' },
    platform: { secureboot: 'false', 'device-model': 'qemu-upstream-uefi', viridian: 'false' },
    tags: ['prod', 'web'],
    actions_after_crash: 'preserve',
  };
}

function vifsOf(fx: SimFixture, vmUuid: string) {
  const vmRef = fx.sim.db.byUuid('VM', vmUuid);
  return (fx.sim.db.get('VM', vmRef)['VIFs'] as string[])
    .map((ref) => fx.sim.db.get('VIF', ref))
    .map((vif) => ({
      device: String(vif['device']),
      network: String(fx.sim.db.get('network', vif['network'])['name_label']),
      mac: String(vif['MAC']),
      mtu: Number(vif['MTU']),
    }))
    .sort((a, b) => a.device.localeCompare(b.device));
}

function vmCount(fx: SimFixture): number {
  return [...fx.sim.db.table('VM').values()].filter(
    (vm) => vm['is_a_snapshot'] !== true && vm['is_a_template'] !== true,
  ).length;
}

test('whole-VM round trip: engine backup with the description, restore as a new VM', async () => {
  const { fx, hypervisor, sr } = await startPool();
  try {
    const vm = await fx.sim.addVm({
      nameLabel: 'web-01',
      disks: [
        { nameLabel: 'system', sizeBytes: 8 * MiB },
        { nameLabel: 'data', sizeBytes: 6 * MiB },
      ],
      vifs: [
        { network: 'Pool-wide network associated with eth0', mac: MACS[0] },
        { network: 'Backup network', mac: MACS[1], mtu: 9000 },
      ],
      fields: vmFields(),
    });
    await fx.sim.writeToVdi(vm.vdiUuids[0] ?? '', 0, Buffer.alloc(3 * MiB, 0x11));
    await fx.sim.writeToVdi(vm.vdiUuids[1] ?? '', MiB + 512, Buffer.alloc(100 * KiB, 0x22));
    const images = [
      await fx.sim.readVdi(vm.vdiUuids[0] ?? ''),
      await fx.sim.readVdi(vm.vdiUuids[1] ?? ''),
    ];
    const repository = await Repository.init(new MemoryObjectStore({ name: 'a' }), {
      blockSizeBytes: 64 * KiB,
    });
    const log = await runBackup({
      job: parseJobDefinition({
        id: 'nightly',
        name: 'Nightly',
        source: 'pool',
        machines: { ids: [vm.vmUuid] },
        remotes: ['a'],
        settings: { preferNbd: false },
      }),
      trigger: 'manual',
      hypervisor,
      remotes: [{ id: 'a', repository }],
      clock: new ManualClock(Date.UTC(2026, 10, 1)),
      events: new CollectingSink(),
    });
    assert.equal(log.status, 'success', JSON.stringify(log.machines[0]?.error));
    const [point] = await repository.listPoints(vm.vmUuid);
    assert.ok(point);
    const saved = parseMachineMetadata(point.vm['metadata']);
    assert.deepEqual(saved.vifs, [
      {
        device: '0',
        networkUuid: String(fx.sim.db.get('network', fx.sim.db.managementNetworkRef)['uuid']),
        networkLabel: 'Pool-wide network associated with eth0',
        macAddress: MACS[0],
        mtu: 1500,
      },
      {
        device: '1',
        networkUuid: String(fx.sim.db.get('network', fx.sim.db.storageNetworkRef)['uuid']),
        networkLabel: 'Backup network',
        macAddress: MACS[1],
        mtu: 9000,
      },
    ]);
    assert.equal(saved.memoryBytes, 4 * GiB);
    assert.equal(saved.vcpus, 3);
    assert.equal(saved.boot, 'uefi');
    assert.equal(saved.xapi?.actionsAfterCrash, 'preserve');

    const restore = async (label: string) => {
      const open = (diskId: string): Promise<DiskSource> =>
        openPointDisk(repository, vm.vmUuid, point.pointId, diskId);
      const sources = [await open('0'), await open('1')];
      try {
        return await hypervisor.restoreMachine({
          machine: { label, metadata: saved },
          disks: sources.map((source, i) => ({
            source,
            target: { kind: 'new-disk' as const, storageId: sr, label: `disk ${i}` },
            reopenSource: () => open(String(i)),
          })),
        });
      } finally {
        for (const source of sources) await source.close();
      }
    };

    // The original still exists: its MACs are taken, XAPI generates new ones.
    const twin = await restore('web-01 twin');
    assert.deepEqual(
      twin.warnings?.map((w) => w.code),
      ['MAC_REGENERATED', 'MAC_REGENERATED'],
    );
    assert.ok(twin.machineId);
    const twinVifs = vifsOf(fx, twin.machineId);
    assert.deepEqual(
      twinVifs.map((v) => [v.network, v.mtu]),
      [
        ['Pool-wide network associated with eth0', 1500],
        ['Backup network', 9000],
      ],
    );
    for (const vif of twinVifs) assert.ok(!(MACS as readonly string[]).includes(vif.mac));
    assert.deepEqual(
      twin.nics?.map((n) => n.macAddress),
      twinVifs.map((v) => v.mac),
    );

    // Disaster: the original and the twin are gone; the restore gets the saved MACs back.
    fx.sim.db.removeVm(vm.vmRef);
    fx.sim.db.removeVm(fx.sim.db.byUuid('VM', twin.machineId));
    const restored = await restore('web-01 restored');
    assert.deepEqual(restored.warnings, []);
    assert.ok(restored.machineId);
    assert.deepEqual(vifsOf(fx, restored.machineId), [
      { device: '0', network: 'Pool-wide network associated with eth0', mac: MACS[0], mtu: 1500 },
      { device: '1', network: 'Backup network', mac: MACS[1], mtu: 9000 },
    ]);
    for (const [i, disk] of restored.disks.entries()) {
      assert.equal(sha(await fx.sim.readVdi(disk.location)), sha(images[i] ?? Buffer.alloc(0)));
    }
    const info = await hypervisor.getMachine(restored.machineId);
    assert.equal(info.label, 'web-01 restored');
    assert.equal(info.powerState, 'stopped');
    assert.deepEqual(
      info.disks.map((d) => [d.id, d.sizeBytes]),
      [
        ['0', 8 * MiB],
        ['1', 6 * MiB],
      ],
    );
    // The restored VM describes itself exactly as the saved description.
    assert.deepEqual(info.metadata, saved);
    const record = fx.sim.db.get('VM', fx.sim.db.byUuid('VM', restored.machineId));
    assert.equal(record['memory_dynamic_min'], 2 * GiB);
    assert.equal(record['VCPUs_max'], 4);
    assert.deepEqual(record['platform'], vmFields().platform);
    assert.deepEqual(record['other_config'], { 'vmdelta:restored': 'true' });
  } finally {
    await fx.close();
  }
});

function disks(sizes: readonly number[], sr: string): MachineRestoreRequest['disks'] {
  return sizes.map((sizeBytes, i) => ({
    source: new MemoryDisk({
      sizeBytes,
      blockSizeBytes: 64 * KiB,
      data: new Map([[1, Buffer.alloc(64 * KiB, 0x40 + i)]]),
    }),
    target: { kind: 'new-disk' as const, storageId: sr, label: `d${i}` },
  }));
}

test('missing networks: skipped with a warning, matched by name, or the default network', async () => {
  const { fx, hypervisor, sr } = await startPool();
  try {
    const labUuid = fx.sim.addNetwork('Lab network');
    const vm = await fx.sim.addVm({
      nameLabel: 'lab-vm',
      powerState: 'Halted',
      disks: [{ nameLabel: 'system', sizeBytes: 2 * MiB }],
      vifs: [
        { network: 'Pool-wide network associated with eth0', mac: MACS[0] },
        { network: labUuid, mac: MACS[1], mtu: 1400 },
      ],
    });
    const metadata = (await hypervisor.getMachine(vm.vmUuid)).metadata;
    assert.ok(metadata);
    fx.sim.db.removeVm(vm.vmRef);
    fx.sim.removeNetwork(labUuid);

    const skipped = await hypervisor.restoreMachine({
      machine: { label: 'a', metadata },
      disks: disks([2 * MiB], sr),
    });
    assert.deepEqual(
      skipped.warnings?.map((w) => [w.code, w.details?.['device']]),
      [['NETWORK_NOT_FOUND', '1']],
    );
    assert.deepEqual(
      vifsOf(fx, skipped.machineId ?? '').map((v) => [v.device, v.network, v.mac]),
      [['0', 'Pool-wide network associated with eth0', MACS[0]]],
    );
    fx.sim.db.removeVm(fx.sim.db.byUuid('VM', skipped.machineId));

    // A network with the same name on this pool (another uuid) is used.
    fx.sim.addNetwork('Lab network');
    const byName = await hypervisor.restoreMachine({
      machine: { label: 'b', metadata },
      disks: disks([2 * MiB], sr),
    });
    assert.deepEqual(byName.warnings, []);
    assert.deepEqual(
      vifsOf(fx, byName.machineId ?? '').map((v) => [v.network, v.mtu]),
      [
        ['Pool-wide network associated with eth0', 1500],
        ['Lab network', 1400],
      ],
    );
    fx.sim.db.removeVm(fx.sim.db.byUuid('VM', byName.machineId));
    fx.sim.removeNetwork('Lab network');

    // A named default network takes the orphans; an invalid saved MAC is regenerated.
    const broken: MachineMetadata = {
      ...metadata,
      vifs: metadata.vifs.map((v) => (v.device === '1' ? { ...v, macAddress: 'zz:zz' } : v)),
    };
    const fallback = await hypervisor.restoreMachine({
      machine: { label: 'c', metadata: broken, defaultNetwork: 'Backup network' },
      disks: disks([2 * MiB], sr),
    });
    assert.deepEqual(
      fallback.warnings?.map((w) => w.code),
      ['MAC_REGENERATED'],
    );
    const vifs = vifsOf(fx, fallback.machineId ?? '');
    assert.deepEqual(
      vifs.map((v) => [v.network, v.mtu]),
      [
        ['Pool-wide network associated with eth0', 1500],
        ['Backup network', 1400],
      ],
    );
    assert.match(vifs[1]?.mac ?? '', /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);

    // Any other refusal of VIF.create is a warning: the VM and its disks are kept.
    const first = metadata.vifs[0];
    assert.ok(first);
    const duplicate = await hypervisor.restoreMachine({
      machine: {
        label: 'd',
        metadata: { ...metadata, vifs: [first, { ...first, macAddress: '' }] },
      },
      disks: disks([2 * MiB], sr),
    });
    assert.deepEqual(
      duplicate.warnings?.map((w) => [w.code, w.details?.['xapiCode']]),
      [
        ['MAC_REGENERATED', undefined],
        ['VIF_CREATE_FAILED', 'DEVICE_ALREADY_EXISTS'],
      ],
    );
    assert.equal(duplicate.disks.length, 1);
    assert.equal(vifsOf(fx, duplicate.machineId ?? '').length, 1);
  } finally {
    await fx.close();
  }
});

test('no saved description: the defaults of older restores; a failed import leaves no VM', async () => {
  const { fx, hypervisor, sr } = await startPool();
  try {
    const before = vmCount(fx);
    const restored = await hypervisor.restoreMachine({
      machine: { label: 'old point' },
      disks: disks([MiB, 2 * MiB], sr),
    });
    assert.deepEqual(
      restored.warnings?.map((w) => w.code),
      ['METADATA_MISSING'],
    );
    assert.deepEqual(restored.nics, []);
    const record = fx.sim.db.get('VM', fx.sim.db.byUuid('VM', restored.machineId));
    assert.equal(record['memory_static_max'], GiB);
    assert.equal(record['VCPUs_at_startup'], 1);
    assert.equal(record['HVM_boot_policy'], 'BIOS order');
    assert.equal(vmCount(fx), before + 1);
    const image = await fx.sim.readVdi(restored.disks[1]?.location ?? '');
    assert.ok(image.subarray(64 * KiB, 128 * KiB).equals(Buffer.alloc(64 * KiB, 0x41)));

    // The second disk's SR does not exist: the VM and the first disk are removed again.
    const vdisBefore = fx.sim.db.table('VDI').size;
    const [first, second] = disks([MiB, MiB], sr);
    assert.ok(first && second);
    await assert.rejects(
      hypervisor.restoreMachine({
        machine: { label: 'doomed' },
        disks: [
          first,
          { ...second, target: { ...second.target, storageId: 'no-such-sr' } as never },
        ],
      }),
      { xapiCode: 'UUID_INVALID' },
    );
    assert.equal(vmCount(fx), before + 1, 'the half-made VM was destroyed');
    assert.equal(fx.sim.db.table('VDI').size, vdisBefore, 'its VDIs too');

    // The simulator refuses what XAPI refuses.
    const session = hypervisor.session;
    await assert.rejects(
      session.call('VM.create', [{ name_label: 'x', memory_static_min: 2, memory_static_max: 1 }]),
      { xapiCode: 'MEMORY_CONSTRAINT_VIOLATION' },
    );
    await assert.rejects(
      session.call('VIF.create', [
        { VM: 'OpaqueRef:nope', network: fx.sim.db.managementNetworkRef, device: '0', MAC: '' },
      ]),
      { xapiCode: 'HANDLE_INVALID' },
    );
  } finally {
    await fx.close();
  }
});

test('restored disks keep their saved positions (VBD userdevice), gaps included', async () => {
  const { fx, hypervisor, sr } = await startPool();
  try {
    const request = disks([MiB, 2 * MiB], sr).map((entry, i) => ({
      ...entry,
      target: { ...entry.target, position: ['2', '5'][i] ?? '0' },
    }));
    const restored = await hypervisor.restoreMachine({
      machine: { label: 'gappy' },
      disks: request,
    });
    assert.ok(restored.machineId);
    const info = await hypervisor.getMachine(restored.machineId);
    assert.deepEqual(
      info.disks.map((d) => [d.id, d.sizeBytes]),
      [
        ['2', MiB],
        ['5', 2 * MiB],
      ],
    );
    const vbds = (
      fx.sim.db.get('VM', fx.sim.db.byUuid('VM', restored.machineId))['VBDs'] as string[]
    )
      .map((ref) => fx.sim.db.get('VBD', ref))
      .map((vbd) => [String(vbd['userdevice']), vbd['bootable']]);
    assert.deepEqual(vbds.sort(), [
      ['2', true],
      ['5', false],
    ]);
  } finally {
    await fx.close();
  }
});
