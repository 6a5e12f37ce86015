/**
 * The XAPI source for the seam's contract, on the simulator: a TLS pool with NBD enabled on the
 * backup network (CBT + NBD deltas at 64 KiB), a running VM with two 8 MiB disks (ids "0" and
 * "1", the VBD userdevices), guest writes through the simulator, and views of our snapshots. A
 * crash is a second XapiHypervisor on its own session that starts a point and disappears.
 */
import { KiB, MiB } from '../../src/core/index.ts';
import {
  XapiHypervisor,
  enableNbdOnNetwork,
  listNetworks,
  type XapiSourceSettings,
} from '../../src/hypervisor/xapi/index.ts';
import { requireTool } from '../harness/index.ts';
import { makeSimVhdEncoder } from '../xapi-sim/index.ts';
import type { ContractSubject } from './contract.ts';
import { currentVdi } from './xapi/source-fixture.ts';
import { startSim } from './xapi/sim-fixture.ts';

const JOB_KEY = 'vmdelta:job';
const VM_KEY = 'vmdelta:vm';
const EXPORTED_KEY = 'vmdelta:exported';

export interface XapiSubject extends ContractSubject {
  hypervisor: XapiHypervisor;
}

export async function makeXapiSubject(): Promise<XapiSubject> {
  requireTool('qemu-nbd');
  const diskSizeBytes = 8 * MiB;
  const fx = await startSim({
    tls: true,
    vhdEncoder: makeSimVhdEncoder({ exports: 0, blocks: 0 }),
  });
  try {
    fx.sim.faults.asyncDelayMs = 1;
    const vm = await fx.sim.addVm({
      nameLabel: 'contract-vm',
      disks: [
        { nameLabel: 'disk 0', sizeBytes: diskSizeBytes },
        { nameLabel: 'disk 1', sizeBytes: diskSizeBytes },
      ],
    });
    const first = await fx.connect();
    const backup = (await listNetworks(first)).find(
      (n) => n.record.name_label === 'Backup network',
    );
    await enableNbdOnNetwork(first, backup?.ref ?? '');
    const settings: XapiSourceSettings = { release: { backoffMs: 5 } };
    const db = fx.sim.db;
    const ours = (record: Record<string, unknown>, scope: string): boolean => {
      const config = record['other_config'] as Record<string, string>;
      return record['is_a_snapshot'] === true && config[JOB_KEY] === scope;
    };
    const exported = (record: Record<string, unknown>): boolean =>
      (record['other_config'] as Record<string, string>)[EXPORTED_KEY] === 'true';
    const subject: XapiSubject = {
      hypervisor: new XapiHypervisor(first, settings),
      machineId: vm.vmUuid,
      diskIds: ['0', '1'],
      diskSizeBytes,
      granularityBytes: 64 * KiB,
      crashRecovery: { notices: ['LEFTOVERS_REMOVED'], disabledReferences: 0 },
      write: async (diskId, offsetBytes, lengthBytes, pattern) => {
        await fx.sim.writeToVdi(
          currentVdi(fx, vm, Number(diskId)),
          offsetBytes,
          Buffer.alloc(lengthBytes, pattern),
        );
      },
      crashDuringPoint: async (request) => {
        // Another process starts a point, then dies: no commit, no abort, its session dropped.
        const other = new XapiHypervisor(await fx.connect(), settings);
        await other.startBackupPoint(vm.vmUuid, request);
        await other.session.close();
      },
      restart: async () => {
        const old = subject.hypervisor;
        subject.hypervisor = new XapiHypervisor(await fx.connect(), settings);
        await old.session.close();
      },
      // Snapshot VMs and VDIs of the scope not (yet) marked exported by a commit.
      leftovers: (scope) => {
        const found: string[] = [];
        for (const record of db.table('VM').values())
          if (ours(record, scope) && !exported(record)) found.push(`vm:${String(record['uuid'])}`);
        for (const record of db.table('VDI').values())
          if (ours(record, scope) && !exported(record)) found.push(`vdi:${String(record['uuid'])}`);
        return Promise.resolve(found.sort());
      },
      // Snapshot VDIs of the scope and VM: "userdevice:vdi uuid" (the reference token).
      references: (scope) => {
        const found: string[] = [];
        for (const record of db.table('VDI').values()) {
          const config = record['other_config'] as Record<string, string>;
          if (!ours(record, scope) || config[VM_KEY] !== vm.vmUuid) continue;
          const vbd = db.table('VBD').get((record['VBDs'] as string[])[0] ?? '');
          const userdevice = vbd?.['userdevice'];
          found.push(
            `${typeof userdevice === 'string' ? userdevice : '?'}:${String(record['uuid'])}`,
          );
        }
        return Promise.resolve(found.sort());
      },
      close: async () => {
        await subject.hypervisor.close();
        await fx.close();
      },
    };
    return subject;
  } catch (error) {
    await fx.close();
    throw error;
  }
}
