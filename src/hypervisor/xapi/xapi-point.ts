/**
 * A XAPI backup point (xapi.md §9, §12): migrations blocked for the run, CBT enabled where the SR
 * allows it, one `VM.snapshot` tagged with our keys, a plan per disk (key or delta and why), and
 * the end of the point: commit marks the snapshot exported, closes NBD, releases the previous
 * references (destroy, or data_destroy when purging) retrying VDI_IN_USE; abort destroys the new
 * snapshot. Nothing temporary survives either; a crash leaves a snapshot the next start removes.
 */
import { describeError } from '../../core/index.ts';
import { HypervisorError } from '../errors.ts';
import type {
  BackupPoint,
  BackupPointState,
  DiskInfo,
  DiskReference,
  OpenPointSourceOptions,
  OpenedPointSource,
  PointDisk,
  PointNotice,
} from '../hypervisor.ts';
import { XapiCodes, OtherConfigKeys } from './constants.ts';
import { isXapiCode } from './errors.ts';
import { getVdiRecord, getVmRecord, listVmDisks } from './inventory.ts';
import { openPointSource, type DiskSourcePlan, type PointSourceContext } from './point-source.ts';
import type { XapiSession } from './session.ts';
import {
  dataDestroyVdi,
  destroyVdi,
  releaseSnapshot,
  setOtherConfigKey,
  type ReleaseOptions,
} from './snapshots.ts';
import { unblockVmOperations } from './vm-operations.ts';

export interface XapiPointDisk {
  readonly disk: DiskInfo;
  readonly plan: DiskSourcePlan;
  readonly previous: DiskReference | undefined;
  readonly reference: DiskReference;
}

export interface XapiPointInit {
  readonly session: XapiSession;
  readonly ctx: PointSourceContext;
  readonly machineId: string;
  readonly vmRef: string;
  readonly pointId: string;
  readonly createdAtMs: number;
  readonly snapshotRef: string;
  readonly disks: readonly XapiPointDisk[];
  readonly notices: readonly PointNotice[];
  readonly purgeSnapshotData: boolean;
  readonly release: Partial<ReleaseOptions>;
  /** Called once the point is committed or aborted (frees the machine for the scope). */
  readonly onClosed: () => void;
}

export class XapiBackupPoint implements BackupPoint {
  readonly machineId: string;
  readonly pointId: string;
  readonly createdAtMs: number;
  readonly disks: readonly PointDisk[];
  readonly notices: readonly PointNotice[];
  readonly #init: XapiPointInit;
  readonly #opened = new Set<OpenedPointSource>();
  #state: BackupPointState = 'open';

  constructor(init: XapiPointInit) {
    this.#init = init;
    this.machineId = init.machineId;
    this.pointId = init.pointId;
    this.createdAtMs = init.createdAtMs;
    this.notices = init.notices;
    this.disks = init.disks.map((entry) => this.#pointDisk(entry));
  }

  get state(): BackupPointState {
    return this.#state;
  }

  #pointDisk(entry: XapiPointDisk): PointDisk {
    const { plan } = entry;
    return {
      disk: entry.disk,
      plannedKind: plan.base === undefined ? 'full' : 'delta',
      ...(plan.plannedFullReason === undefined
        ? {}
        : { plannedFullReason: plan.plannedFullReason }),
      ...(entry.previous === undefined ? {} : { previous: entry.previous }),
      reference: entry.reference,
      openSource: async (options: OpenPointSourceOptions = {}) => {
        this.#checkOpen();
        const result = await openPointSource(
          {
            ...this.#init.ctx,
            ...(options.signal === undefined ? {} : { signal: options.signal }),
          },
          options.connections === undefined ? plan : { ...plan, connections: options.connections },
        );
        this.#opened.add(result);
        return result;
      },
    };
  }

  #checkOpen(): void {
    if (this.#state !== 'open') {
      throw new HypervisorError(
        'HYPERVISOR_POINT_CLOSED',
        `point ${this.pointId} is ${this.#state}`,
        {
          details: { pointId: this.pointId },
        },
      );
    }
  }

  async #closeSources(): Promise<void> {
    for (const opened of this.#opened) await opened.source.close().catch(() => undefined);
    this.#opened.clear();
  }

  async #unblock(): Promise<void> {
    await unblockVmOperations(this.#init.session, this.#init.vmRef).catch((error: unknown) => {
      this.#init.session.logger.log('warn', 'could not unblock migrations', {
        error: describeError(error),
      });
    });
  }

  async commit(): Promise<void> {
    this.#checkOpen();
    this.#state = 'committed';
    const { session, snapshotRef } = this.#init;
    try {
      await this.#closeSources();
      await setOtherConfigKey(session, 'VM', snapshotRef, OtherConfigKeys.exported, 'true');
      for (const entry of this.#init.disks) {
        await setOtherConfigKey(
          session,
          'VDI',
          entry.plan.snapshotVdiRef,
          OtherConfigKeys.exported,
          'true',
        );
      }
      await this.#releasePrevious();
      if (this.#init.purgeSnapshotData) await this.#purgeSnapshotData();
    } finally {
      await this.#unblock();
      this.#init.onClosed();
    }
  }

  /** Destroys the snapshot VM, then frees the data of each VDI that has CBT metadata. */
  async #purgeSnapshotData(): Promise<void> {
    const { session, snapshotRef, release } = this.#init;
    try {
      const snapshot = await getVmRecord(session, snapshotRef);
      const disks = await listVmDisks(session, snapshot);
      await session.call('VM.destroy', [snapshotRef]);
      for (const disk of disks) {
        if (disk.vdi.cbt_enabled === true) await dataDestroyVdi(session, disk.vdiRef, release);
      }
    } catch (error) {
      session.logger.log('warn', "couldn't delete snapshot data", { error: describeError(error) });
    }
  }

  /** The previous references: their snapshot VMs (and VDIs), or orphaned / cbt_metadata VDIs. */
  async #releasePrevious(): Promise<void> {
    const { session, release } = this.#init;
    const ours = new Set(this.#init.disks.map((entry) => entry.reference.token));
    const released = new Set<string>();
    for (const entry of this.#init.disks) {
      const previous = entry.previous;
      if (previous === undefined || previous.kind !== 'xapi' || ours.has(previous.token)) continue;
      if (previous.machineId !== this.machineId) continue;
      try {
        const vdiRef = String(await session.call('VDI.get_by_uuid', [previous.token]));
        if (released.has(vdiRef)) continue;
        const vdi = await getVdiRecord(session, vdiRef);
        if (vdi.other_config[OtherConfigKeys.job] !== entry.reference.attributes?.['scope'])
          continue;
        let snapshotVmRef: string | undefined;
        for (const vbdRef of vdi.VBDs) {
          const vm = String(await session.call('VBD.get_VM', [vbdRef]));
          const record = await getVmRecord(session, vm);
          if (record.is_a_snapshot) snapshotVmRef = vm;
        }
        if (snapshotVmRef !== undefined) {
          const disks = await listVmDisks(session, await getVmRecord(session, snapshotVmRef));
          for (const disk of disks) released.add(disk.vdiRef);
          await releaseSnapshot(session, snapshotVmRef, { vdiMode: 'destroy', ...release });
        } else {
          released.add(vdiRef);
          await destroyVdi(session, vdiRef, release);
        }
      } catch (error) {
        if (isXapiCode(error, XapiCodes.UUID_INVALID)) continue; // already gone
        session.logger.log('warn', 'could not release the previous snapshot (the next run will)', {
          token: previous.token,
          error: describeError(error),
        });
      }
    }
  }

  async abort(): Promise<void> {
    this.#checkOpen();
    this.#state = 'aborted';
    const { session, snapshotRef, release } = this.#init;
    try {
      await this.#closeSources();
      await releaseSnapshot(session, snapshotRef, { vdiMode: 'destroy', ...release }).catch(
        (error: unknown) => {
          session.logger.log('warn', 'could not destroy the snapshot (the next run will)', {
            error: describeError(error),
          });
        },
      );
    } finally {
      await this.#unblock();
      this.#init.onClosed();
    }
  }
}
