/**
 * The QEMU/KVM source. A machine is either running — a QMP socket (qemu-system or
 * qemu-storage-daemon), backed up through dirty bitmaps, fleecing and QEMU's NBD server — or
 * stopped — a list of image files, read through qemu-nbd (qcow2 with persistent bitmaps: `-B`;
 * raw: full read, "no change tracker"). Points of one machine and scope are serialised.
 */
import { join } from 'node:path';
import { silentLogger, systemClock, type Clock, type Logger } from '../../core/index.ts';
import type { DiskSource } from '../../disk/index.ts';
import { HypervisorError } from '../errors.ts';
import type {
  BackupPoint,
  BackupPointRequest,
  DiskRestoreTarget,
  Hypervisor,
  MachineInfo,
  MachineRestoreRequest,
  PointNotice,
  RestoredDisk,
  RestoredMachine,
  RestoreOptions,
} from '../hypervisor.ts';
import type { OpenNbdDisk, OpenNbdSink } from '../open-nbd-disk.ts';
import { validatePointRequest } from '../request.ts';
import { discoverDisks, type PinnedDisk, type QemuDisk } from './discovery.ts';
import { QmpError, qmpErrorClass } from './errors.ts';
import { cleanupTemporaries, foldStrayBitmaps } from './leftovers.ts';
import { qemuDiskInfo, startLivePoint, type LiveDiskPlan } from './live-point.ts';
import type { QemuNbdServerConfig } from './nbd-server.ts';
import { startOfflinePoint, offlineDiskInfo, type QemuImageConfig } from './offline-point.ts';
import { planDisk } from './plan.ts';
import { QmpSession, type QmpSessionOptions } from './qmp-session.ts';
import { parseBlockDevices, parseBlockNodes } from './qmp-types.ts';
import type { QmpAddress } from './qmp-client.ts';
import {
  restoreIntoImageFile,
  restoreIntoMachineImage,
  restoreThroughNbd,
  type NbdRestoreOptions,
} from './restore.ts';

export interface QemuMachineConfig {
  readonly id: string;
  readonly label?: string;
  /** Running machine: its QMP socket. */
  readonly qmp?: QmpAddress;
  /** Pin disk ids to node names (otherwise discovered). */
  readonly disks?: readonly PinnedDisk[];
  /** NBD server for the point-in-time exports (default: unix socket in the scratch folder). */
  readonly nbdServer?: QemuNbdServerConfig;
  /**
   * Its disk images: a machine without `qmp` is always stopped; with both, it is stopped while
   * its QMP socket refuses connections, and backed up from these images then.
   */
  readonly images?: readonly QemuImageConfig[];
}

export interface QemuHypervisorOptions<TTls = unknown> {
  readonly machines: readonly QemuMachineConfig[];
  /** Fleecing overlays, sockets and pid files: one sub-folder per machine. Short path (sockets). */
  readonly scratchDir: string;
  readonly openDisk: OpenNbdDisk<TTls>;
  /**
   * Writable NBD target (src/disk openNbdSink): restores then go through a writable qemu-nbd
   * export of the target image. Without it, restores write a sparse raw file (qemu-img convert
   * for qcow2).
   */
  readonly openSink?: OpenNbdSink<TTls>;
  /** TLS settings handed to openDisk for TCP+TLS exports. */
  readonly clientTls?: TTls;
  readonly logger?: Logger;
  readonly clock?: Clock;
  readonly qmp?: QmpSessionOptions;
  readonly timeoutMs?: number;
  readonly tools?: { readonly qemuImg?: string; readonly qemuNbd?: string };
}

export class QemuHypervisor<TTls = unknown> implements Hypervisor {
  readonly kind = 'qemu' as const;
  readonly displayName: string;
  readonly #options: QemuHypervisorOptions<TTls>;
  readonly #sessions = new Map<string, QmpSession>();
  readonly #busy = new Set<string>();
  readonly #logger: Logger;
  readonly #clock: Clock;

  constructor(options: QemuHypervisorOptions<TTls>) {
    this.#options = options;
    this.#logger = options.logger ?? silentLogger;
    this.#clock = options.clock ?? systemClock;
    this.displayName = `QEMU (${options.machines.length} machine(s))`;
  }

  async listMachines(): Promise<readonly MachineInfo[]> {
    const machines: MachineInfo[] = [];
    for (const config of this.#options.machines) {
      try {
        machines.push(await this.getMachine(config.id));
      } catch (error) {
        // One unreachable QEMU does not hide the others: it is listed, state unknown.
        if (!(error instanceof QmpError && error.code === 'QMP_CONNECT_FAILED')) throw error;
        machines.push({
          id: config.id,
          label: config.label ?? config.id,
          kind: 'qemu',
          powerState: 'unknown',
          disks: [],
        });
      }
    }
    return machines;
  }

  async getMachine(machineId: string): Promise<MachineInfo> {
    const config = this.#config(machineId);
    if (!(await this.#isRunning(config))) {
      const disks = [];
      for (const image of config.images ?? [])
        disks.push(await offlineDiskInfo(image, this.#qemuImg()));
      return {
        id: config.id,
        label: config.label ?? config.id,
        kind: 'qemu',
        powerState: 'stopped',
        disks,
      };
    }
    const { disks, powerState } = await this.#discover(config);
    return {
      id: config.id,
      label: config.label ?? config.id,
      kind: 'qemu',
      powerState,
      disks: disks.map(qemuDiskInfo),
    };
  }

  async startBackupPoint(machineId: string, request: BackupPointRequest): Promise<BackupPoint> {
    const config = this.#config(machineId);
    const lockKey = `${machineId}\u0000${request.scope}`;
    if (this.#busy.has(lockKey)) {
      throw new HypervisorError(
        'HYPERVISOR_MACHINE_BUSY',
        `a backup point of ${machineId} (scope ${request.scope}) is already open`,
      );
    }
    this.#busy.add(lockKey);
    const onClose = (): void => {
      this.#busy.delete(lockKey);
    };
    try {
      const scratchDir = this.#scratch(config);
      if (!(await this.#isRunning(config))) {
        const images = config.images ?? [];
        const requests = validatePointRequest(
          request,
          images.map((i) => i.id),
        );
        return await startOfflinePoint({
          machineId,
          scope: request.scope,
          scratchDir,
          images,
          requests,
          openDisk: this.#options.openDisk,
          qemuImg: this.#qemuImg(),
          qemuNbd: this.#options.tools?.qemuNbd ?? 'qemu-nbd',
          blockSizeBytes: request.blockSizeBytes,
          ...(request.connections === undefined ? {} : { connections: request.connections }),
          logger: this.#logger,
          now: () => this.#clock.nowMs(),
          onClose,
        });
      }
      const session = this.#session(config);
      const client = await session.client();
      const cleaned = await cleanupTemporaries(
        client,
        request.scope,
        scratchDir,
        this.#options.timeoutMs,
      );
      const notices: PointNotice[] = [];
      if (cleaned.length > 0) {
        this.#logger.log('warn', 'removed leftovers of a previous run', {
          machineId,
          leftovers: cleaned.join(', '),
        });
        notices.push({
          code: 'LEFTOVERS_REMOVED',
          message: `removed leftovers of an unfinished point: ${cleaned.join(', ')}`,
        });
      }
      let { disks } = await this.#discover(config);
      const requests = validatePointRequest(
        request,
        disks.map((d) => d.id),
      );
      const byId = new Map(disks.map((d) => [d.id, d]));
      const folded = await foldStrayBitmaps(
        client,
        request.scope,
        requests.map((r) => ({
          disk: byId.get(r.diskId) as QemuDisk,
          baseName: r.previous?.kind === 'qemu' ? r.previous.token : undefined,
        })),
      );
      if (folded.length > 0) {
        this.#logger.log('warn', 'folded bitmaps of an unfinished point back into the reference', {
          machineId,
          bitmaps: folded.join(', '),
        });
        notices.push({
          code: 'REFERENCES_RECOVERED',
          message: `folded bitmaps of an unfinished point into the references: ${folded.join(', ')}`,
        });
        ({ disks } = await this.#discover(config));
      }
      const current = new Map(disks.map((d) => [d.id, d]));
      const plans: LiveDiskPlan[] = requests.map((r) => {
        const disk = current.get(r.diskId) as QemuDisk;
        const plan = planDisk({
          machineId,
          scope: request.scope,
          request: r,
          disk: {
            id: disk.id,
            identity: disk.filename,
            sizeBytes: disk.sizeBytes,
            bitmaps: disk.bitmaps,
            hasChangeTracker: true,
          },
        });
        return { disk, info: qemuDiskInfo(disk), request: r, plan };
      });
      return await startLivePoint(
        {
          client,
          // Always the machine's current session: a QMP monitor serves one client at a time.
          reconnect: () => this.#session(config).client(),
          machineId,
          scope: request.scope,
          scratchDir,
          nbdServer: config.nbdServer ?? {
            transport: 'unix',
            socketPath: join(scratchDir, 'nbd.sock'),
          },
          openDisk: this.#options.openDisk,
          ...(this.#options.clientTls === undefined ? {} : { clientTls: this.#options.clientTls }),
          qemuImg: this.#qemuImg(),
          logger: this.#logger,
          timeoutMs: this.#options.timeoutMs ?? 30_000,
          blockSizeBytes: request.blockSizeBytes,
          ...(request.connections === undefined ? {} : { connections: request.connections }),
          now: () => this.#clock.nowMs(),
          notices,
          onClose,
        },
        plans,
      );
    } catch (error) {
      onClose();
      throw error;
    }
  }

  async restoreDisk(
    source: DiskSource,
    target: DiskRestoreTarget,
    options: RestoreOptions = {},
  ): Promise<RestoredDisk> {
    const openSink = this.#options.openSink;
    if (target.kind === 'image-file' && openSink !== undefined) {
      const done = await restoreThroughNbd(
        source,
        { path: target.path, format: target.format, create: true },
        this.#nbdRestoreOptions(openSink, options),
      );
      return { target, location: target.path, sizeBytes: source.sizeBytes, ...done };
    }
    if (target.kind === 'image-file') {
      return restoreIntoImageFile(source, target, {
        qemuImg: this.#qemuImg(),
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      });
    }
    if (target.kind === 'machine-disk') {
      const config = this.#config(target.machineId);
      if (await this.#isRunning(config)) {
        throw new HypervisorError(
          'HYPERVISOR_MACHINE_RUNNING',
          `machine ${config.id} is running (QMP); restore into a new image or stop it first`,
        );
      }
      const image = (config.images ?? []).find((i) => i.id === target.diskId);
      if (image === undefined) {
        throw new HypervisorError(
          'HYPERVISOR_DISK_NOT_FOUND',
          `machine ${config.id} has no disk ${target.diskId}`,
        );
      }
      return restoreIntoMachineImage(source, target, image, {
        qemuImg: this.#qemuImg(),
        ...(options.signal === undefined ? {} : { signal: options.signal }),
        ...(openSink === undefined ? {} : { nbd: this.#nbdRestoreOptions(openSink, options) }),
      });
    }
    throw new HypervisorError(
      'HYPERVISOR_UNSUPPORTED_TARGET',
      `QEMU cannot restore to a ${target.kind} target`,
    );
  }

  async restoreMachine(request: MachineRestoreRequest): Promise<RestoredMachine> {
    const disks: RestoredDisk[] = [];
    for (const item of request.disks) {
      disks.push(
        await this.restoreDisk(
          item.source,
          item.target,
          request.signal === undefined ? {} : { signal: request.signal },
        ),
      );
    }
    return { disks };
  }

  async close(): Promise<void> {
    for (const session of this.#sessions.values()) await session.close();
    this.#sessions.clear();
  }

  /**
   * Whether to treat the machine as running (QMP). A machine configured with both a QMP socket
   * and images is stopped when its QMP socket refuses connections (qemu-system not started).
   */
  async #isRunning(config: QemuMachineConfig): Promise<boolean> {
    if (config.qmp === undefined) return false;
    if (config.images === undefined || config.images.length === 0) return true;
    try {
      await this.#session(config).client();
      return true;
    } catch (error) {
      if (error instanceof QmpError && error.code === 'QMP_CONNECT_FAILED') return false;
      throw error;
    }
  }

  #nbdRestoreOptions(
    openSink: OpenNbdSink<TTls>,
    options: RestoreOptions,
  ): NbdRestoreOptions<TTls> {
    return {
      qemuImg: this.#qemuImg(),
      qemuNbd: this.#options.tools?.qemuNbd ?? 'qemu-nbd',
      openSink,
      ...(this.#options.clientTls === undefined ? {} : { clientTls: this.#options.clientTls }),
      socketDir: join(this.#options.scratchDir, 'restore'),
      ...(options.connections === undefined ? {} : { connections: options.connections }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    };
  }

  #config(machineId: string): QemuMachineConfig {
    const config = this.#options.machines.find((m) => m.id === machineId);
    if (config === undefined) {
      throw new HypervisorError('HYPERVISOR_MACHINE_NOT_FOUND', `no QEMU machine ${machineId}`, {
        details: { machineId },
      });
    }
    return config;
  }

  #scratch(config: QemuMachineConfig): string {
    return join(this.#options.scratchDir, config.id.replace(/[^A-Za-z0-9_.-]/g, '_'));
  }

  #qemuImg(): string {
    return this.#options.tools?.qemuImg ?? 'qemu-img';
  }

  #session(config: QemuMachineConfig): QmpSession {
    let session = this.#sessions.get(config.id);
    if (session === undefined) {
      if (config.qmp === undefined) throw new Error('unreachable: no QMP address');
      session = new QmpSession(config.qmp, { logger: this.#logger, ...this.#options.qmp });
      this.#sessions.set(config.id, session);
    }
    return session;
  }

  async #discover(
    config: QemuMachineConfig,
  ): Promise<{ disks: QemuDisk[]; powerState: MachineInfo['powerState'] }> {
    const client = await this.#session(config).client();
    const nodes = parseBlockNodes(await client.execute('query-named-block-nodes', { flat: true }));
    const devices = parseBlockDevices(await client.execute('query-block'));
    let powerState: MachineInfo['powerState'] = 'running';
    try {
      const status = (await client.execute('query-status')) as { status?: unknown };
      powerState =
        status.status === 'running' ? 'running' : status.status === 'paused' ? 'paused' : 'unknown';
    } catch (error) {
      // qemu-storage-daemon has no run state: it serves as long as it runs.
      if (qmpErrorClass(error) !== 'CommandNotFound') throw error;
    }
    return { disks: discoverDisks(nodes, devices, config.disks), powerState };
  }
}
