/**
 * A XAPI source that logs in on first use (the composition root builds sources synchronously
 * from configuration; logging in is asynchronous and may fail until the pool is reachable).
 */
import type { DiskSource } from '../../disk/index.ts';
import type {
  BackupPoint,
  BackupPointRequest,
  DiskRestoreTarget,
  Hypervisor,
  ListOptions,
  MachineInfo,
  MachineRestoreRequest,
  RestoreOptions,
  RestoredDisk,
  RestoredMachine,
} from '../hypervisor.ts';
import type { XapiSessionOptions } from './session.ts';
import { XapiHypervisor, type XapiSourceSettings } from './xapi-hypervisor.ts';

export class LazyXapiHypervisor implements Hypervisor {
  readonly kind = 'xapi' as const;
  readonly displayName: string;
  readonly #sessionOptions: XapiSessionOptions;
  readonly #settings: XapiSourceSettings;
  #opening: Promise<XapiHypervisor> | undefined;

  constructor(sessionOptions: XapiSessionOptions, settings: XapiSourceSettings = {}) {
    this.#sessionOptions = sessionOptions;
    this.#settings = settings;
    this.displayName = settings.displayName ?? `XAPI ${new URL(sessionOptions.url).host}`;
  }

  #open(): Promise<XapiHypervisor> {
    this.#opening ??= XapiHypervisor.open(this.#sessionOptions, {
      displayName: this.displayName,
      ...this.#settings,
    }).catch((error: unknown) => {
      this.#opening = undefined; // try again next time
      throw error;
    });
    return this.#opening;
  }

  async listMachines(options?: ListOptions): Promise<readonly MachineInfo[]> {
    return (await this.#open()).listMachines(options);
  }

  async getMachine(machineId: string, options?: ListOptions): Promise<MachineInfo> {
    return (await this.#open()).getMachine(machineId, options);
  }

  async startBackupPoint(machineId: string, request: BackupPointRequest): Promise<BackupPoint> {
    return (await this.#open()).startBackupPoint(machineId, request);
  }

  async restoreDisk(
    source: DiskSource,
    target: DiskRestoreTarget,
    options?: RestoreOptions,
  ): Promise<RestoredDisk> {
    return (await this.#open()).restoreDisk(source, target, options);
  }

  async restoreMachine(request: MachineRestoreRequest): Promise<RestoredMachine> {
    return (await this.#open()).restoreMachine(request);
  }

  async close(): Promise<void> {
    const opening = this.#opening;
    this.#opening = undefined;
    if (opening !== undefined) await (await opening.catch(() => undefined))?.close();
  }
}
