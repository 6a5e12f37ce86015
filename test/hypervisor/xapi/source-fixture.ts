/**
 * The XAPI backup source on the simulator: TLS pool with real VHD exports (vmdelta's VHD writer
 * as the simulator's vhdEncoder), NBD enabled on the backup network, a VM with two disks, and
 * views of the snapshots a test must find (or not find) on the pool.
 */
import { makeSimVhdEncoder, type SimVhdEncoderStats, type SimVm } from '../../xapi-sim/index.ts';
import {
  XapiHypervisor,
  enableNbdOnNetwork,
  listNetworks,
  type XapiSourceSettings,
} from '../../../src/hypervisor/xapi/index.ts';
import type { PointDisk } from '../../../src/hypervisor/index.ts';
import { startSim, type SimFixture } from './sim-fixture.ts';

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const DISK_SIZES = [8 * MiB, 6 * MiB] as const;

export interface SourceFixture {
  readonly fx: SimFixture;
  readonly vm: SimVm;
  readonly stats: SimVhdEncoderStats;
  readonly hypervisor: XapiHypervisor;
  /** A second source on its own session (another process after a crash). */
  reopen(settings?: XapiSourceSettings): Promise<XapiHypervisor>;
  /** Snapshot VMs of the test VM on the pool. */
  snapshotVms(): string[];
  /** Snapshot and cbt_metadata VDIs of the test VM's disks. */
  snapshotVdis(): { uuid: string; type: string }[];
  write(
    diskIndex: number,
    offsetBytes: number,
    lengthBytes: number,
    pattern: number,
  ): Promise<void>;
  image(diskIndex: number): Promise<Buffer>;
  close(): Promise<void>;
}

export async function startSource(
  options: { nbd?: boolean; settings?: XapiSourceSettings } = {},
): Promise<SourceFixture> {
  const stats: SimVhdEncoderStats = { exports: 0, blocks: 0 };
  const fx = await startSim({ tls: true, vhdEncoder: makeSimVhdEncoder(stats) });
  try {
    fx.sim.faults.asyncDelayMs = 1;
    const vm = await fx.sim.addVm({
      nameLabel: 'web-01',
      disks: [
        { nameLabel: 'system', sizeBytes: DISK_SIZES[0] },
        { nameLabel: 'data', sizeBytes: DISK_SIZES[1] },
        { nameLabel: '[NOBAK] scratch', sizeBytes: MiB },
      ],
      cdrom: true,
    });
    const session = await fx.connect();
    if (options.nbd !== false) {
      const backup = (await listNetworks(session)).find(
        (n) => n.record.name_label === 'Backup network',
      );
      await enableNbdOnNetwork(session, backup?.ref ?? '');
    }
    const settings = { release: { backoffMs: 10 }, ...options.settings };
    const hypervisor = new XapiHypervisor(session, settings);
    const liveUuids = new Set(vm.vdiUuids);
    return {
      fx,
      vm,
      stats,
      hypervisor,
      reopen: async (more = {}) => new XapiHypervisor(await fx.connect(), { ...settings, ...more }),
      snapshotVms: () =>
        [...fx.sim.db.table('VM').values()]
          .filter((r) => r['is_a_snapshot'] === true && r['snapshot_of'] === vm.vmRef)
          .map((r) => String(r['uuid'])),
      snapshotVdis: () =>
        [...fx.sim.db.table('VDI').values()]
          .filter((r) => r['is_a_snapshot'] === true && !liveUuids.has(String(r['uuid'])))
          .map((r) => ({ uuid: String(r['uuid']), type: String(r['type']) })),
      write: async (diskIndex, offsetBytes, lengthBytes, pattern) => {
        const data = Buffer.alloc(lengthBytes, pattern);
        for (let i = 0; i < data.length; i += 4096) data[i] = (pattern + i / 4096) & 0xff;
        await fx.sim.writeToVdi(currentVdi(fx, vm, diskIndex), offsetBytes, data);
      },
      image: (diskIndex) => fx.sim.readVdi(currentVdi(fx, vm, diskIndex)),
      close: () => fx.close(),
    };
  } catch (error) {
    await fx.close();
    throw error;
  }
}

/** The VDI behind the VM's disk at `diskIndex` now (it changes when the VDI migrates). */
export function currentVdi(fx: SimFixture, vm: SimVm, diskIndex: number): string {
  for (const vbdRef of fx.sim.db.get('VM', vm.vmRef)['VBDs'] as string[]) {
    const vbd = fx.sim.db.get('VBD', vbdRef);
    if (vbd['userdevice'] === String(diskIndex)) return String(vbd['VDI']);
  }
  throw new Error(`no disk ${diskIndex}`);
}

export interface ReadDisk {
  readonly kind: 'full' | 'delta';
  readonly blocks: number[];
  readonly reason: string | undefined;
  readonly transport: string;
  readonly tracker: string;
  readonly fallback: string | undefined;
}

/** Reads a point disk, applying it onto `image` (the previous image for a delta). */
export async function readInto(disk: PointDisk, image: Buffer): Promise<ReadDisk> {
  const opened = await disk.openSource();
  const { source } = opened;
  if (source.kind === 'full') image.fill(0);
  try {
    for await (const block of source.readBlocks()) {
      block.data.copy(image, block.index * source.blockSizeBytes);
    }
  } finally {
    await source.close();
  }
  return {
    kind: source.kind,
    blocks: source.blocks.toArray(),
    reason: opened.fullReason?.code,
    transport:
      opened.transport.protocol === 'nbd'
        ? `nbd x${opened.transport.connections}`
        : opened.transport.protocol === 'stream'
          ? `stream ${opened.transport.format}`
          : 'memory',
    tracker: opened.changeTracker.kind,
    fallback: opened.transportFallback?.code,
  };
}

/** `items[index]`, failing the test when it is missing. */
export function at<T>(items: readonly T[], index: number): T {
  const item = items[index];
  if (item === undefined) throw new Error(`no item ${index}`);
  return item;
}
