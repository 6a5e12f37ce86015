/**
 * The in-memory fake Hypervisor, for engine tests. It follows the seam's contract the same way the
 * QEMU source does (test/hypervisor/contract.ts runs the same checks against both): a point freezes
 * the disks at one instant, a delta lists the granules written since the reference (rounded out
 * to the engine's block size), commit releases the previous tracker, abort merges the new one back
 * into it, and a point left open by a "crash" (`simulateCrash`) is cleaned up by the next start.
 * Test hooks: guest writes, resize, replace, tracker loss or inconsistency, leftover listing.
 */
import { randomBytes } from 'node:crypto';
import { HypervisorError } from '../errors.ts';
import {
  type BackupPoint,
  type BackupPointRequest,
  type BackupPointState,
  type DiskInfo,
  type DiskPointRequest,
  type DiskReference,
  type DiskRestoreTarget,
  type FullReason,
  type Hypervisor,
  type MachineInfo,
  type MachineRestoreRequest,
  type OpenedPointSource,
  type PointNotice,
  type PointDisk,
  type RestoredDisk,
  type RestoredMachine,
} from '../hypervisor.ts';
import type { DiskSource } from '../../disk/index.ts';
import {
  makeFakeMachine,
  recordWrite,
  type FakeDisk,
  type FakeMachine,
  type FakeMachineSpec,
} from './fake-state.ts';
import { validatePointRequest } from '../request.ts';
import {
  diskInfo,
  makeSource,
  planFakeDisk,
  restoreBase,
  scopeOfTracker,
  trackerName,
} from './fake-point.ts';

interface FakePointState {
  readonly scope: string;
  readonly pointId: string;
  readonly machineId: string;
  /** diskId → frozen copy of the disk at the point. */
  readonly frozen: Map<string, Buffer>;
}

export class FakeHypervisor implements Hypervisor {
  readonly kind = 'fake' as const;
  readonly displayName = 'fake hypervisor (in memory)';
  readonly #machines = new Map<string, FakeMachine>();
  /** Open points (temporary objects): what a crash leaves behind until the next start. */
  readonly #openPoints = new Map<string, FakePointState>();
  /** Machine and scope of the points this "process" has open (lost on simulateCrash). */
  readonly #busy = new Set<string>();
  #clockMs = 1_700_000_000_000;

  constructor(machines: readonly FakeMachineSpec[] = []) {
    for (const spec of machines) this.#machines.set(spec.id, makeFakeMachine(spec));
  }

  // ---- test hooks -------------------------------------------------------------------------

  /** A guest write. */
  write(machineId: string, diskId: string, offsetBytes: number, data: Buffer): void {
    const disk = this.#disk(machineId, diskId);
    if (offsetBytes < 0 || offsetBytes + data.length > disk.data.length) {
      throw new HypervisorError('HYPERVISOR_INVALID_REQUEST', 'write outside the disk');
    }
    data.copy(disk.data, offsetBytes);
    recordWrite(disk, offsetBytes, data.length);
  }

  /** The live content of a disk (a copy). */
  read(machineId: string, diskId: string): Buffer {
    return Buffer.from(this.#disk(machineId, diskId).data);
  }

  resize(machineId: string, diskId: string, sizeBytes: number): void {
    const disk = this.#disk(machineId, diskId);
    const data = Buffer.alloc(sizeBytes);
    disk.data.copy(data, 0, 0, Math.min(sizeBytes, disk.data.length));
    disk.data = data;
  }

  /** The disk is now backed by another image (identity changes, trackers gone). */
  replace(machineId: string, diskId: string): void {
    const disk = this.#disk(machineId, diskId);
    disk.identity = `${disk.identity}+replaced`;
    disk.trackers.clear();
  }

  dropTrackers(machineId: string, diskId: string): void {
    this.#disk(machineId, diskId).trackers.clear();
  }

  markTrackersInconsistent(machineId: string, diskId: string): void {
    for (const tracker of this.#disk(machineId, diskId).trackers.values())
      tracker.inconsistent = true;
  }

  setPowerState(machineId: string, powerState: MachineInfo['powerState']): void {
    this.#machine(machineId).powerState = powerState;
  }

  /** The process driving points dies: open points stay as leftovers for the next start. */
  simulateCrash(): void {
    // Open points stay in #openPoints, as QEMU keeps exports, jobs and overlays until someone
    // removes them; only this "process"'s own bookkeeping is lost.
    this.#busy.clear();
  }

  /** Names of our temporary objects and trackers of `scope` on a machine (for leftover checks). */
  inspect(machineId: string, scope: string): { trackers: string[]; temporaries: string[] } {
    const machine = this.#machine(machineId);
    const trackers: string[] = [];
    for (const disk of machine.disks.values()) {
      for (const [name, tracker] of disk.trackers) {
        if (scopeOfTracker(name, scope))
          trackers.push(`${disk.id}:${name}${tracker.enabled ? '' : ':disabled'}`);
      }
    }
    const temporaries = [...this.#openPoints.values()]
      .filter((p) => p.machineId === machineId && p.scope === scope)
      .map((p) => `point:${p.pointId}`);
    return { trackers: trackers.sort(), temporaries };
  }

  // ---- seam -------------------------------------------------------------------------------

  async listMachines(): Promise<readonly MachineInfo[]> {
    return [...this.#machines.values()].map((m) => this.#info(m));
  }

  async getMachine(machineId: string): Promise<MachineInfo> {
    return this.#info(this.#machine(machineId));
  }

  async startBackupPoint(machineId: string, request: BackupPointRequest): Promise<BackupPoint> {
    const machine = this.#machine(machineId);
    const requests = validatePointRequest(request, [...machine.disks.keys()]);
    const busyKey = `${machineId}\u0000${request.scope}`;
    if (this.#busy.has(busyKey)) {
      throw new HypervisorError(
        'HYPERVISOR_MACHINE_BUSY',
        `a backup point of ${machineId} (scope ${request.scope}) is already open`,
      );
    }
    const notices = this.#cleanupLeftovers(machine, request.scope, requests);
    const pointId = randomBytes(6).toString('hex');
    const createdAtMs = (this.#clockMs += 1000);
    const newName = trackerName(request.scope, pointId);
    const state: FakePointState = {
      scope: request.scope,
      pointId,
      machineId,
      frozen: new Map(),
    };
    const plans: {
      disk: FakeDisk;
      info: DiskInfo;
      previous?: DiskReference;
      reason?: FullReason;
      base?: string;
    }[] = [];
    for (const diskRequest of requests) {
      const disk = this.#disk(machineId, diskRequest.diskId);
      const info = diskInfo(disk);
      const reason = planFakeDisk(machine, disk, diskRequest.previous, diskRequest.mode);
      plans.push({
        disk,
        info,
        ...(diskRequest.previous === undefined ? {} : { previous: diskRequest.previous }),
        ...(reason === undefined ? { base: diskRequest.previous?.token ?? '' } : { reason }),
      });
    }
    // The "transaction": every disk frozen, new trackers added, bases disabled, at one instant.
    for (const plan of plans) {
      state.frozen.set(plan.disk.id, Buffer.from(plan.disk.data));
      if (plan.disk.changeTracker === 'none') continue;
      plan.disk.trackers.set(newName, {
        enabled: true,
        inconsistent: false,
        granularityBytes: plan.disk.granularityBytes,
        dirty: new Set(),
      });
      if (plan.base !== undefined) {
        const base = plan.disk.trackers.get(plan.base);
        if (base !== undefined) base.enabled = false;
      }
    }
    this.#openPoints.set(pointId, state);
    this.#busy.add(busyKey);
    const disks: PointDisk[] = plans.map((plan) => {
      const reference: DiskReference = {
        kind: 'fake',
        machineId,
        diskId: plan.disk.id,
        diskIdentity: plan.info.identity,
        sizeBytes: plan.info.sizeBytes,
        token: plan.disk.changeTracker === 'none' ? `none-${pointId}` : newName,
        createdAtMs,
        attributes: { granularityBytes: String(plan.disk.granularityBytes) },
      };
      const frozen = state.frozen.get(plan.disk.id) ?? Buffer.alloc(0);
      const base = plan.base;
      return {
        disk: plan.info,
        plannedKind: base === undefined ? 'full' : 'delta',
        ...(plan.reason === undefined ? {} : { plannedFullReason: plan.reason }),
        ...(plan.previous === undefined ? {} : { previous: plan.previous }),
        reference,
        openSource: async (): Promise<OpenedPointSource> => {
          if (!this.#openPoints.has(pointId)) {
            throw new HypervisorError('HYPERVISOR_POINT_CLOSED', `point ${pointId} is closed`);
          }
          const tracker = base === undefined ? undefined : plan.disk.trackers.get(base);
          const source = makeSource(frozen, request.blockSizeBytes, tracker);
          return {
            source,
            transport: { protocol: 'memory' },
            changeTracker:
              plan.disk.changeTracker === 'none'
                ? { kind: 'none' }
                : {
                    kind: 'fake',
                    granularityBytes: plan.disk.granularityBytes,
                    ...(base === undefined ? {} : { base }),
                  },
            ...(plan.reason === undefined ? {} : { fullReason: plan.reason }),
          };
        },
      };
    });
    let pointState: BackupPointState = 'open';
    const close = (next: BackupPointState): void => {
      if (pointState !== 'open') {
        throw new HypervisorError('HYPERVISOR_POINT_CLOSED', `point ${pointId} is ${pointState}`);
      }
      pointState = next;
      this.#openPoints.delete(pointId);
      this.#busy.delete(busyKey);
    };
    return {
      machineId,
      pointId,
      createdAtMs,
      disks,
      notices,
      get state() {
        return pointState;
      },
      commit: async () => {
        close('committed');
        for (const plan of plans) {
          for (const name of [...plan.disk.trackers.keys()]) {
            if (name !== newName && scopeOfTracker(name, request.scope))
              plan.disk.trackers.delete(name);
          }
        }
      },
      abort: async () => {
        close('aborted');
        for (const plan of plans) restoreBase(plan.disk, newName, plan.base);
      },
    };
  }

  async restoreDisk(source: DiskSource, target: DiskRestoreTarget): Promise<RestoredDisk> {
    if (target.kind !== 'machine-disk') {
      throw new HypervisorError(
        'HYPERVISOR_UNSUPPORTED_TARGET',
        `the fake restores into machine disks only, not ${target.kind}`,
      );
    }
    const machine = this.#machine(target.machineId);
    if (machine.powerState !== 'stopped') {
      throw new HypervisorError('HYPERVISOR_MACHINE_RUNNING', `machine ${machine.id} is running`);
    }
    const disk = this.#disk(target.machineId, target.diskId);
    if (source.sizeBytes !== disk.data.length) {
      throw new HypervisorError('HYPERVISOR_SIZE_MISMATCH', 'source and disk sizes differ', {
        details: { sourceSizeBytes: source.sizeBytes, diskSizeBytes: disk.data.length },
      });
    }
    const data = Buffer.alloc(source.sizeBytes);
    let writtenBlocks = 0;
    for await (const block of source.readBlocks()) {
      block.data.copy(data, block.index * source.blockSizeBytes);
      block.release?.();
      writtenBlocks += 1;
    }
    disk.data = data;
    // Every tracker saw the whole disk change.
    recordWrite(disk, 0, data.length);
    return {
      target,
      location: `${machine.id}/${disk.id}`,
      sizeBytes: data.length,
      writtenBlocks,
      transport: { protocol: 'memory' },
    };
  }

  async restoreMachine(request: MachineRestoreRequest): Promise<RestoredMachine> {
    const disks: RestoredDisk[] = [];
    for (const item of request.disks) disks.push(await this.restoreDisk(item.source, item.target));
    return { disks };
  }

  async close(): Promise<void> {
    // nothing to release
  }

  // ---- internals --------------------------------------------------------------------------

  #machine(machineId: string): FakeMachine {
    const machine = this.#machines.get(machineId);
    if (machine === undefined) {
      throw new HypervisorError('HYPERVISOR_MACHINE_NOT_FOUND', `no machine ${machineId}`, {
        details: { machineId },
      });
    }
    return machine;
  }

  #disk(machineId: string, diskId: string): FakeDisk {
    const disk = this.#machine(machineId).disks.get(diskId);
    if (disk === undefined) {
      throw new HypervisorError(
        'HYPERVISOR_DISK_NOT_FOUND',
        `machine ${machineId} has no disk ${diskId}`,
        {
          details: { machineId, diskId },
        },
      );
    }
    return disk;
  }

  #info(machine: FakeMachine): MachineInfo {
    return {
      id: machine.id,
      label: machine.label,
      kind: 'fake',
      powerState: machine.powerState,
      disks: [...machine.disks.values()].map(diskInfo),
    };
  }

  /**
   * Leftovers of a crashed run of this scope: open points go; trackers of the scope other than
   * the previous reference are folded into it (enabled again), so it covers every change.
   */
  #cleanupLeftovers(
    machine: FakeMachine,
    scope: string,
    requests: readonly DiskPointRequest[],
  ): PointNotice[] {
    const notices: PointNotice[] = [];
    const removed: string[] = [];
    const folded: string[] = [];
    for (const [pointId, point] of this.#openPoints) {
      if (point.machineId === machine.id && point.scope === scope) {
        this.#openPoints.delete(pointId);
        removed.push(`point:${pointId}`);
      }
    }
    for (const request of requests) {
      const disk = this.#disk(machine.id, request.diskId);
      const baseName = request.previous?.token;
      if (baseName === undefined || !disk.trackers.has(baseName)) continue;
      for (const name of [...disk.trackers.keys()]) {
        if (name !== baseName && scopeOfTracker(name, scope)) {
          restoreBase(disk, name, baseName);
          folded.push(`${disk.id}:${name}`);
        }
      }
    }
    if (removed.length > 0) {
      notices.push({
        code: 'LEFTOVERS_REMOVED',
        message: `removed leftovers of an unfinished point: ${removed.join(', ')}`,
      });
    }
    if (folded.length > 0) {
      notices.push({
        code: 'REFERENCES_RECOVERED',
        message: `folded trackers of an unfinished point into the references: ${folded.join(', ')}`,
      });
    }
    return notices;
  }
}
