/**
 * The Hypervisor seam: what every source of VM disks implements (QEMU/KVM through QMP, XenServer /
 * XCP-ng through XAPI, a plain NBD export, the in-memory fake) and what the jobs engine consumes.
 *
 * Life of a backup, per machine:
 * 1. `listMachines()` / `getMachine()` give machines and disks with stable ids.
 * 2. `startBackupPoint(machineId, request)` captures every requested disk at one instant (one QMP
 *    transaction, one XAPI VM snapshot) and decides, per disk, key or delta. The request carries
 *    the reference of the last backup *committed to the repository* for each disk.
 * 3. For each disk, `openSource()` gives a DiskSource (key: allocated blocks, kind 'full'; delta:
 *    changed blocks, kind 'delta'), the transport used and, whenever the engine wanted a delta and
 *    gets a full, a structured `fullReason`. `openSource()` may resolve only once the source knows
 *    its block list (a XAPI VHD stream after its header and BAT); it may be called again (retry).
 * 4. The engine writes the backup (manifest last), stores `disk.reference` in it, then calls
 *    `commit()`: the new references become the base of the next delta and the previous ones are
 *    released. On any failure it calls `abort()`: temporary objects go, the previous references
 *    stay valid and still cover every change (nothing is lost). A point neither committed nor
 *    aborted (crash) is cleaned up by the next `startBackupPoint` on the same machine and scope.
 *
 * References are opaque to the engine: it persists them as JSON next to the backup and hands them
 * back verbatim. A reference that does not fit the disk any more (bitmap gone, disk resized,
 * replaced, migrated...) yields a key backup with the reason, never an error.
 */
import type { DiskSource } from '../disk/index.ts';
import type { MachineMetadata } from './machine-metadata.ts';

/** Which implementation produced a machine, a disk or a reference. */
export type HypervisorKind = 'qemu' | 'xapi' | 'nbd' | 'fake';

export type PowerState = 'running' | 'paused' | 'stopped' | 'unknown';

/** How a source learns which blocks changed since a reference. */
export type ChangeTrackerKind =
  /** QEMU persistent dirty bitmap (qcow2), frozen at the point and exported over NBD. */
  | 'qemu-dirty-bitmap'
  /** XAPI Changed Block Tracking: VDI.list_changed_blocks between two snapshots (64 KiB bits). */
  | 'xapi-cbt'
  /** XAPI differencing VHD stream (`export_raw_vdi?format=vhd&base=`): changed blocks from its BAT. */
  | 'vhd-delta-stream'
  /** Test double: the fake records writes itself. */
  | 'fake'
  /** Nothing tracks changes: every block is read, the engine compares hashes. */
  | 'none';

export interface DiskInfo {
  /** Stable across runs and restarts of the machine (QEMU: device or node name; XAPI: VBD position). */
  readonly id: string;
  readonly label: string;
  readonly sizeBytes: number;
  /**
   * What backs the disk now (QEMU: image file; XAPI: VDI uuid). A reference taken on another
   * identity is checked before use: replaced or migrated disks give a key backup.
   */
  readonly identity: string;
  readonly changeTracker: ChangeTrackerKind;
  /** Granularity of the change tracker, when known (QEMU bitmaps and XAPI CBT: 64 KiB). */
  readonly changeTrackerGranularityBytes?: number;
  /** Image format or storage kind, for display (qcow2, raw, vhd...). */
  readonly format?: string;
}

export interface MachineInfo {
  /** Stable id (QEMU: the configured name; XAPI: the VM uuid). */
  readonly id: string;
  readonly label: string;
  readonly kind: HypervisorKind;
  readonly powerState: PowerState;
  readonly disks: readonly DiskInfo[];
  /**
   * What a whole-machine restore recreates (memory, CPUs, boot, network interfaces...), when the
   * source knows it (XAPI does; QEMU leaves it undefined). JSON-serialisable: the engine stores it
   * in each restore point's manifest as `vm.metadata`.
   */
  readonly metadata?: MachineMetadata;
}

/**
 * The base of the next delta for one disk, as produced by a committed point. JSON-serialisable;
 * the engine stores it with the backup and passes it back unchanged.
 */
export interface DiskReference {
  readonly kind: HypervisorKind;
  readonly machineId: string;
  readonly diskId: string;
  /** DiskInfo.identity at the time of the point. */
  readonly diskIdentity: string;
  readonly sizeBytes: number;
  /** QEMU: bitmap name; XAPI: snapshot (or cbt_metadata) VDI uuid; fake: generation. */
  readonly token: string;
  readonly createdAtMs: number;
  /** Source-specific extra facts (granularity, snapshot VM uuid...). Strings only. */
  readonly attributes?: Readonly<Record<string, string>>;
}

/** Why a disk is read in full although the engine may have wanted a delta. Stable codes. */
export const fullReasonCodes = {
  NO_PREVIOUS_REFERENCE: 'No previous backup of this disk was given: this is its first backup.',
  KEY_REQUESTED: 'The engine asked for a key backup (key interval reached, forced full).',
  NEW_DISK: 'The disk was not part of the machine at the previous backup.',
  REFERENCE_FOREIGN: 'The previous reference belongs to another source, machine or disk.',
  BITMAP_MISSING: 'The dirty bitmap of the previous backup is not on the disk any more.',
  BITMAP_INCONSISTENT:
    'The dirty bitmap is flagged inconsistent (QEMU stopped while it was in use).',
  BITMAP_UNRECOGNISED: 'The dirty bitmap exists but does not match the recorded reference.',
  DISK_RESIZED: 'The disk size changed since the previous backup.',
  DISK_REPLACED: 'The disk is backed by another image than at the previous backup.',
  NO_CHANGE_TRACKER:
    'The disk has no change tracker (raw image, no bitmap): every block is read and the engine keeps only blocks whose hash changed.',
  VDI_MIGRATED: 'The VDI moved to another storage repository (new VDI uuid, no common base).',
  CBT_DISABLED: 'Changed Block Tracking is disabled on the VDI or one of its snapshots.',
  CBT_FAILED: 'VDI.list_changed_blocks failed (broken CBT chain, unrelated VDIs).',
  VDI_NO_CBT_METADATA: 'The base snapshot has no CBT metadata any more.',
  BASE_MISSING: 'The base snapshot of the previous backup does not exist any more.',
  BASE_REFUSED:
    'The hypervisor could not compute a delta from the base (export with base= refused).',
  STREAM_FULL_ONLY: 'The only usable transport cannot carry a delta for this disk format.',
} as const;

export type FullReasonCode = keyof typeof fullReasonCodes;

export interface FullReason {
  readonly code: FullReasonCode;
  readonly message: string;
  /** Facts that explain it (expected and found sizes, bitmap names...), for logs. */
  readonly details?: Readonly<Record<string, string | number | boolean>>;
}

/** How disk data travels for one disk. */
export type TransportInfo =
  | {
      readonly protocol: 'nbd';
      readonly connections: number;
      readonly tls: boolean;
      /** NBD URI without secrets. */
      readonly uri: string;
      readonly exportSizeBytes: number;
      readonly multiConn: boolean;
    }
  | {
      readonly protocol: 'stream';
      /** Stream format (XAPI export_raw_vdi: vhd or raw). */
      readonly format: 'vhd' | 'raw' | 'qcow2';
      readonly tls: boolean;
      /** URL without secrets. */
      readonly url: string;
    }
  | { readonly protocol: 'memory' };

/** Why NBD was wanted and another transport is used (logged with the transport). */
export interface TransportFallback {
  readonly wanted: 'nbd';
  readonly code: 'NBD_UNAVAILABLE' | 'NBD_CONNECT_FAILED' | 'NBD_DISABLED';
  readonly message: string;
}

export interface ChangeTrackerInfo {
  readonly kind: ChangeTrackerKind;
  readonly granularityBytes?: number;
  /** The tracker's own name for the base (bitmap name, base snapshot uuid). */
  readonly base?: string;
}

/** What the engine asks for one disk. */
export interface DiskPointRequest {
  readonly diskId: string;
  /** Reference of the last backup of this disk committed to the repository; none = key. */
  readonly previous?: DiskReference;
  /** 'key' forces a key backup (the previous reference is still released on commit). */
  readonly mode?: 'auto' | 'key';
}

export interface BackupPointRequest {
  /**
   * Namespace of this backup lineage (job and repository). References of another scope are never
   * touched, so two jobs can back up the same machine. [A-Za-z0-9_-], 1 to 40 characters.
   */
  readonly scope: string;
  /** Disks to capture; undefined = every disk of the machine, each without a previous reference. */
  readonly disks?: readonly DiskPointRequest[];
  /** Block size the engine wants (the repository's); a power of two, ≥ 4 KiB. */
  readonly blockSizeBytes: number;
  /** NBD connections per disk (the source may use fewer). */
  readonly connections?: number;
  /** Prefer NBD over a stream export where both exist (XAPI). */
  readonly preferNbd?: boolean;
  readonly signal?: AbortSignal;
}

export interface OpenedPointSource {
  /** kind 'full' (allocated blocks; unlisted blocks are zeros) or 'delta' (changed blocks). */
  readonly source: DiskSource;
  readonly transport: TransportInfo;
  readonly transportFallback?: TransportFallback;
  readonly changeTracker: ChangeTrackerInfo;
  /** Set whenever the source is 'full' although a delta was possible to ask for. */
  readonly fullReason?: FullReason;
}

export interface OpenPointSourceOptions {
  readonly signal?: AbortSignal;
  /** Overrides the request's connection count for this open. */
  readonly connections?: number;
}

export interface PointDisk {
  readonly disk: DiskInfo;
  /** The plan at start; `openSource()` is the truth (a XAPI stream may still fall back to full). */
  readonly plannedKind: 'full' | 'delta';
  /** Why a full is planned, when it is (same codes as OpenedPointSource.fullReason). */
  readonly plannedFullReason?: FullReason;
  readonly previous?: DiskReference;
  /** Becomes the base of the next delta once the point is committed. Store it with the backup. */
  readonly reference: DiskReference;
  openSource(options?: OpenPointSourceOptions): Promise<OpenedPointSource>;
}

export type BackupPointState = 'open' | 'committed' | 'aborted';

/** Something the run log should say about a point (recoveries, fallbacks); not an error. */
export interface PointNotice {
  /**
   * LEFTOVERS_REMOVED: temporary objects of an earlier, unfinished point were removed.
   * REFERENCES_RECOVERED: trackers of an unfinished point were folded back into the references.
   * Sources may add their own codes (XAPI: FEWER_DISKS_IN_SNAPSHOT...).
   */
  readonly code: string;
  readonly message: string;
  readonly details?: Readonly<Record<string, string | number | boolean>>;
}

export interface BackupPoint {
  readonly machineId: string;
  /** Unique id of this point (part of the names of its references and temporary objects). */
  readonly pointId: string;
  readonly createdAtMs: number;
  readonly disks: readonly PointDisk[];
  readonly state: BackupPointState;
  /** What happened while starting the point that the run log should show. */
  readonly notices: readonly PointNotice[];
  /** The backup is safely stored: make the new references current, release the previous ones. */
  commit(): Promise<void>;
  /** Give up: remove temporary objects; previous references stay valid and lose no change. */
  abort(): Promise<void>;
}

/** Where a restored disk goes. Each source supports a subset and says so with an error. */
export type DiskRestoreTarget =
  /** A new image file on the hypervisor host (QEMU): qcow2 or raw. Must not exist. */
  | { readonly kind: 'image-file'; readonly path: string; readonly format: 'qcow2' | 'raw' }
  /** Back into an existing disk of a stopped machine (overwritten entirely). */
  | { readonly kind: 'machine-disk'; readonly machineId: string; readonly diskId: string }
  /** A new disk in a storage pool (XAPI: a VDI in the SR), optionally attached to a machine. */
  | {
      readonly kind: 'new-disk';
      readonly storageId: string;
      readonly label: string;
      readonly machineId?: string;
      /**
       * The disk's place on the machine when it is attached (XAPI: VBD userdevice, the disk id of
       * a XAPI source); default: the next free one.
       */
      readonly position?: string;
    };

export interface RestoreOptions {
  readonly signal?: AbortSignal;
  readonly connections?: number;
  /**
   * Opens the same restore point again (a fresh full DiskSource, closed by the callee) when the
   * transport must resend it from the start (XAPI: a 302 on import_raw_vdi). Without it, such a
   * restore fails with a typed error instead.
   */
  readonly reopenSource?: () => Promise<DiskSource>;
}

export interface RestoredDisk {
  readonly target: DiskRestoreTarget;
  /** Where the data now lives (path, VDI uuid...). */
  readonly location: string;
  readonly sizeBytes: number;
  readonly writtenBlocks: number;
  readonly transport: TransportInfo | { readonly protocol: 'file' };
}

export interface MachineRestoreRequest {
  readonly disks: readonly {
    readonly source: DiskSource;
    readonly target: DiskRestoreTarget;
    /** As RestoreOptions.reopenSource. */
    readonly reopenSource?: () => Promise<DiskSource>;
  }[];
  /**
   * New machine to create around the disks, from the description saved at backup time (without
   * one, the source's defaults); QEMU restores disks only. Disks are attached in request order.
   */
  readonly machine?: {
    readonly label: string;
    readonly metadata?: MachineMetadata;
    /** Network (id or name) for interfaces whose saved network is not found; else skipped. */
    readonly defaultNetwork?: string;
  };
  readonly signal?: AbortSignal;
}

/** Something a machine restore could not recreate as saved (a network missing...); not an error. */
export interface RestoreWarning {
  /** XAPI: NETWORK_NOT_FOUND, MAC_REGENERATED, VIF_CREATE_FAILED, METADATA_MISSING. */
  readonly code: string;
  readonly message: string;
  readonly details?: Readonly<Record<string, string | number | boolean>>;
}

/** A network interface of a restored machine. */
export interface RestoredNic {
  readonly device: string;
  readonly networkUuid: string;
  readonly macAddress: string;
  readonly mtu: number;
}

export interface RestoredMachine {
  readonly machineId?: string;
  readonly disks: readonly RestoredDisk[];
  readonly nics?: readonly RestoredNic[];
  readonly warnings?: readonly RestoreWarning[];
}

export interface ListOptions {
  readonly signal?: AbortSignal;
}

export interface Hypervisor {
  readonly kind: HypervisorKind;
  /** Display name without secrets. */
  readonly displayName: string;
  listMachines(options?: ListOptions): Promise<readonly MachineInfo[]>;
  /** Throws HYPERVISOR_MACHINE_NOT_FOUND. */
  getMachine(machineId: string, options?: ListOptions): Promise<MachineInfo>;
  startBackupPoint(machineId: string, request: BackupPointRequest): Promise<BackupPoint>;
  /** Writes a full DiskSource (a restore point) into the target; bit-exact. */
  restoreDisk(
    source: DiskSource,
    target: DiskRestoreTarget,
    options?: RestoreOptions,
  ): Promise<RestoredDisk>;
  restoreMachine(request: MachineRestoreRequest): Promise<RestoredMachine>;
  close(): Promise<void>;
}

const scopePattern = /^[A-Za-z0-9_-]{1,40}$/;

export function isValidScope(scope: string): boolean {
  return scopePattern.test(scope);
}

export function makeFullReason(
  code: FullReasonCode,
  details?: Readonly<Record<string, string | number | boolean>>,
): FullReason {
  return details === undefined
    ? { code, message: fullReasonCodes[code] }
    : { code, message: fullReasonCodes[code], details };
}
