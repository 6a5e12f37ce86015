/**
 * XapiHypervisor: XenServer / XCP-ng as a Hypervisor (the seam of hypervisor.ts) over an XAPI
 * session. Machines are VMs, disks their Disk VBDs with a VDI (id = VBD userdevice, identity = VDI
 * uuid; `[NOBAK]` names and the `vmdelta:no-backup` tag excluded). A point is one VM snapshot;
 * the data of each disk comes from CBT + NBD, the VHD BAT + NBD or the VHD stream
 * (point-source.ts). Restores import VHD (or raw) streams into new VDIs (xapi-restore.ts).
 */
import { randomBytes } from 'node:crypto';
import type { DiskSource } from '../../disk/index.ts';
import { describeError } from '../../core/index.ts';
import { HypervisorError } from '../errors.ts';
import {
  type BackupPoint,
  type BackupPointRequest,
  type DiskInfo,
  type DiskReference,
  type DiskRestoreTarget,
  type Hypervisor,
  type ListOptions,
  type MachineInfo,
  type MachineRestoreRequest,
  type PointNotice,
  type PowerState,
  type RestoreOptions,
  type RestoredDisk,
  type RestoredMachine,
} from '../hypervisor.ts';
import { validatePointRequest } from '../request.ts';
import { enableCbt } from './cbt.ts';
import { CBT_BLOCK_BYTES, OtherConfigKeys, XapiCodes } from './constants.ts';
import { XapiError, isXapiCode } from './errors.ts';
import {
  getVmRecord,
  isBackupSourceVm,
  listBackupSourceVms,
  listVmDisks,
  type VmDisk,
} from './inventory.ts';
import { NbdHostLimiter } from './nbd-reader.ts';
import { enableNbdOnNetwork, listNetworks } from './networks.ts';
import { removeLeftovers, snapshotLabelPrefix } from './point-catalogue.ts';
import type { DiskSourcePlan } from './point-source.ts';
import type { NetworkRecord, VmRecord } from './records.ts';
import { openXapiSession, type XapiSession, type XapiSessionOptions } from './session.ts';
import { releaseSnapshot, snapshotVm, type ReleaseOptions } from './snapshots.ts';
import { blockVmOperations, unblockVmOperations } from './vm-operations.ts';
import { XapiBackupPoint, type XapiPointDisk } from './xapi-point.ts';
import { readVmMetadata } from './vm-metadata.ts';
import { restoreXapiDisk, restoreXapiMachine } from './xapi-restore.ts';
import { decideXapiDisk } from './xapi-decide.ts';

export interface XapiSourceSettings {
  readonly displayName?: string;
  /** Default for requests that do not say (Xen Orchestra's `preferNbd`). */
  readonly preferNbd?: boolean;
  /** Network (uuid or name) whose addresses NBD must use (Xen Orchestra's `backupNetwork`). */
  readonly backupNetwork?: string;
  /** Give the backup network the `nbd` purpose when it has none (XO's pool Network tab). */
  readonly enableNbd?: boolean;
  /** After a commit, keep only the CBT metadata of the new snapshot (`cbtDestroySnapshotData`). */
  readonly purgeSnapshotData?: boolean;
  /** VDI_IN_USE retries when releasing snapshots. */
  readonly release?: Partial<Omit<ReleaseOptions, 'vdiMode'>>;
  /** NBD connections per host across the source (xapi-nbd allows 16). */
  readonly nbdConnectionsPerHost?: number;
}

function powerStateOf(state: string): PowerState {
  switch (state) {
    case 'Running':
      return 'running';
    case 'Paused':
      return 'paused';
    case 'Halted':
    case 'Suspended':
      return 'stopped';
    default:
      return 'unknown';
  }
}

function diskInfoOf(disk: VmDisk): DiskInfo {
  const cbt = disk.vdi.cbt_enabled === true;
  return {
    id: disk.vbd.userdevice,
    label: disk.vdi.name_label,
    sizeBytes: disk.vdi.virtual_size,
    identity: disk.vdi.uuid,
    changeTracker: cbt ? 'xapi-cbt' : 'vhd-delta-stream',
    ...(cbt ? { changeTrackerGranularityBytes: CBT_BLOCK_BYTES } : {}),
    format: 'vhd',
  };
}

/** XAPI's datetime form, YYYYMMDDTHH:MM:SSZ. */
function xapiDateTime(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace(/-/g, '')
    .replace(/\.\d+Z$/, 'Z');
}

export class XapiHypervisor implements Hypervisor {
  readonly kind = 'xapi' as const;
  readonly displayName: string;
  readonly session: XapiSession;
  readonly #settings: XapiSourceSettings;
  readonly #limiter: NbdHostLimiter;
  readonly #busy = new Set<string>();
  readonly #ownsSession: boolean;

  constructor(session: XapiSession, settings: XapiSourceSettings = {}, ownsSession = false) {
    this.session = session;
    this.#settings = settings;
    this.#ownsSession = ownsSession;
    this.#limiter = new NbdHostLimiter(settings.nbdConnectionsPerHost);
    this.displayName = settings.displayName ?? `XAPI ${session.masterOrigin.host}`;
  }

  /** Logs in and returns a source that closes the session with itself. */
  static async open(
    sessionOptions: XapiSessionOptions,
    settings: XapiSourceSettings = {},
  ): Promise<XapiHypervisor> {
    return new XapiHypervisor(await openXapiSession(sessionOptions), settings, true);
  }

  async #machineOf(
    record: VmRecord,
    networks: Map<string, NetworkRecord> = new Map(),
  ): Promise<MachineInfo> {
    const disks = await listVmDisks(this.session, record);
    return {
      id: record.uuid,
      label: record.name_label,
      kind: 'xapi',
      powerState: powerStateOf(record.power_state),
      disks: disks.filter((disk) => !disk.excluded).map(diskInfoOf),
      metadata: await readVmMetadata(this.session, record, networks),
    };
  }

  async listMachines(_options?: ListOptions): Promise<readonly MachineInfo[]> {
    const machines: MachineInfo[] = [];
    const networks = new Map<string, NetworkRecord>();
    for (const entry of await listBackupSourceVms(this.session)) {
      machines.push(await this.#machineOf(entry.record, networks));
    }
    return machines;
  }

  async #vmRef(machineId: string): Promise<{ ref: string; record: VmRecord }> {
    let ref: string;
    try {
      ref = String(await this.session.call('VM.get_by_uuid', [machineId]));
    } catch (error) {
      if (isXapiCode(error, XapiCodes.UUID_INVALID) || isXapiCode(error, XapiCodes.HANDLE_INVALID))
        throw new HypervisorError('HYPERVISOR_MACHINE_NOT_FOUND', `no VM ${machineId}`, {
          details: { machineId },
        });
      throw error;
    }
    const record = await getVmRecord(this.session, ref);
    if (!isBackupSourceVm(record)) {
      throw new HypervisorError('HYPERVISOR_MACHINE_NOT_FOUND', `${machineId} is not a VM`, {
        details: { machineId },
      });
    }
    return { ref, record };
  }

  async getMachine(machineId: string, _options?: ListOptions): Promise<MachineInfo> {
    const { record } = await this.#vmRef(machineId);
    return this.#machineOf(record);
  }

  async #nbdAddresses(): Promise<ReadonlySet<string> | undefined> {
    const wanted = this.#settings.backupNetwork;
    if (wanted === undefined) return undefined;
    const network = (await listNetworks(this.session)).find(
      (n) => n.record.uuid === wanted || n.record.name_label === wanted,
    );
    if (network === undefined) {
      throw new XapiError('XAPI_RECORD_INVALID', `no network ${wanted} (backupNetwork)`, {
        details: { className: 'network', field: 'backupNetwork' },
      });
    }
    if (this.#settings.enableNbd === true && network.nbd === 'off') {
      await enableNbdOnNetwork(this.session, network.ref);
      this.session.logger.log('info', 'NBD enabled on the backup network', {
        network: network.record.uuid,
      });
    }
    return new Set(network.addresses);
  }

  async startBackupPoint(machineId: string, request: BackupPointRequest): Promise<BackupPoint> {
    const { ref: vmRef, record: vm } = await this.#vmRef(machineId);
    const liveDisks = (await listVmDisks(this.session, vm)).filter((disk) => !disk.excluded);
    const requests = validatePointRequest(
      request,
      liveDisks.map((disk) => disk.vbd.userdevice),
    );
    const busyKey = `${machineId}/${request.scope}`;
    if (this.#busy.has(busyKey)) {
      throw new HypervisorError(
        'HYPERVISOR_MACHINE_BUSY',
        `a backup point of ${machineId} for scope ${request.scope} is still open`,
        { details: { machineId, scope: request.scope } },
      );
    }
    this.#busy.add(busyKey);
    const session = this.session;
    const release = this.#settings.release ?? {};
    let snapshotRef: string | undefined;
    let blocked = false;
    let snapshotAttempted = false;
    let keep: ReadonlySet<string> = new Set();
    try {
      const notices: PointNotice[] = [];
      keep = new Set(
        requests.flatMap((r) => (r.previous?.kind === 'xapi' ? [r.previous.token] : [])),
      );
      const leftovers = await removeLeftovers(session, {
        scope: request.scope,
        vmUuid: machineId,
        vm: await getVmRecord(session, vmRef),
        liveVdiRefs: liveDisks.map((disk) => disk.vdiRef),
        keepVdiUuids: keep,
        release,
      });
      if (leftovers !== undefined) notices.push(leftovers);

      await blockVmOperations(session, vmRef, `vmdelta backup (${request.scope}) in progress`);
      blocked = true;
      const requested = new Set(requests.map((r) => r.diskId));
      const cbtWasOn = new Map<string, boolean>();
      for (const disk of liveDisks) {
        if (!requested.has(disk.vbd.userdevice)) continue;
        cbtWasOn.set(disk.vbd.userdevice, disk.vdi.cbt_enabled === true);
        if (disk.vdi.cbt_enabled === true) continue;
        await enableCbt(session, disk.vdiRef).catch((error: unknown) => {
          session.logger.log('info', 'CBT cannot be enabled: this disk is stream-only', {
            vdi: disk.vdi.uuid,
            error: describeError(error),
          });
        });
      }

      const pointId = randomBytes(6).toString('hex');
      const createdAtMs = session.clock.nowMs();
      const allDisks = await listVmDisks(session, vm);
      const ignoreVdis = allDisks
        .filter((disk) => disk.excluded || !requested.has(disk.vbd.userdevice))
        .map((disk) => disk.vdiRef);
      snapshotAttempted = true;
      const snapshot = await snapshotVm(session, vmRef, {
        nameLabel: `${snapshotLabelPrefix(request.scope)}${vm.name_label}`,
        ignoreVdis,
        tags: {
          [OtherConfigKeys.job]: request.scope,
          [OtherConfigKeys.vm]: machineId,
          [OtherConfigKeys.datetime]: xapiDateTime(createdAtMs),
          [OtherConfigKeys.point]: pointId,
        },
        ...(request.signal === undefined ? {} : { signal: request.signal }),
      });
      snapshotRef = snapshot.snapshotRef;
      const snapshotRecord = await getVmRecord(session, snapshotRef);
      const snapshotDisks = new Map(
        (await listVmDisks(session, snapshotRecord)).map((d) => [d.vbd.userdevice, d]),
      );
      const nbdAddresses = await this.#nbdAddresses();
      const preferNbd = request.preferNbd ?? this.#settings.preferNbd ?? true;
      const disks: XapiPointDisk[] = [];
      for (const diskRequest of requests) {
        const live = liveDisks.find((d) => d.vbd.userdevice === diskRequest.diskId);
        const snap = snapshotDisks.get(diskRequest.diskId);
        if (live === undefined || snap === undefined) {
          throw new HypervisorError(
            'HYPERVISOR_DISK_NOT_FOUND',
            `the snapshot has no disk ${diskRequest.diskId}`,
            { details: { diskId: diskRequest.diskId } },
          );
        }
        const info = diskInfoOf(live);
        const decided = await decideXapiDisk(session, {
          scope: request.scope,
          machineId,
          info,
          request: diskRequest,
          snap,
          cbtWasOn: cbtWasOn.get(diskRequest.diskId) === true,
        });
        const plan: DiskSourcePlan = {
          snapshotVdiRef: snap.vdiRef,
          snapshotVdiUuid: snap.vdi.uuid,
          sizeBytes: info.sizeBytes,
          blockSizeBytes: request.blockSizeBytes,
          base: decided.base,
          plannedFullReason: decided.fullReason,
          cbt: decided.cbt,
          preferNbd,
          connections: request.connections ?? 1,
          nbdAddresses,
        };
        const reference: DiskReference = {
          kind: 'xapi',
          machineId,
          diskId: info.id,
          diskIdentity: info.identity,
          sizeBytes: info.sizeBytes,
          token: snap.vdi.uuid,
          createdAtMs,
          attributes: {
            scope: request.scope,
            snapshotVm: snapshotRecord.uuid,
            cbt: String(snap.vdi.cbt_enabled === true),
            pointId,
          },
        };
        disks.push({ disk: info, plan, previous: diskRequest.previous, reference });
      }
      return new XapiBackupPoint({
        session,
        ctx: { session, limiter: this.#limiter },
        machineId,
        vmRef,
        pointId,
        createdAtMs,
        snapshotRef,
        disks,
        notices,
        purgeSnapshotData: this.#settings.purgeSnapshotData === true,
        release,
        onClosed: () => this.#busy.delete(busyKey),
      });
    } catch (error) {
      // Never leave a temporary snapshot or a blocked VM behind.
      if (snapshotRef !== undefined) {
        await releaseSnapshot(session, snapshotRef, { vdiMode: 'destroy', ...release }).catch(
          () => undefined,
        );
      } else if (snapshotAttempted) {
        // The snapshot task may have completed although we stopped waiting (abort, timeout).
        await removeLeftovers(session, {
          scope: request.scope,
          vmUuid: machineId,
          vm: await getVmRecord(session, vmRef),
          liveVdiRefs: liveDisks.map((disk) => disk.vdiRef),
          keepVdiUuids: keep,
          release,
        }).catch(() => undefined);
      }
      if (blocked) {
        await unblockVmOperations(session, vmRef).catch(() => undefined);
      }
      this.#busy.delete(busyKey);
      throw error;
    }
  }

  restoreDisk(
    source: DiskSource,
    target: DiskRestoreTarget,
    options: RestoreOptions = {},
  ): Promise<RestoredDisk> {
    return restoreXapiDisk(this.session, source, target, options);
  }

  restoreMachine(request: MachineRestoreRequest): Promise<RestoredMachine> {
    return restoreXapiMachine(this.session, request);
  }

  async close(): Promise<void> {
    if (this.#ownsSession) await this.session.close();
  }
}
