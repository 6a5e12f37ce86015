/**
 * Use cases on stored backups, shared by the CLI and the server: list restore points, restore a
 * point (to files, into a hypervisor source's disks, or as a new machine), copy backups between remotes (initial seed and
 * mirrors), verify, and apply retention on demand.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { ProgressListener } from '../core/index.ts';
import type { DiskSource } from '../disk/index.ts';
import type { DiskRestoreTarget, RestoredDisk, RestoredMachine } from '../hypervisor/index.ts';
import { parseMachineMetadata, restoreIntoImageFile } from '../hypervisor/index.ts';
import {
  applyRetention,
  collectGarbage,
  copyPoints,
  openPointDisk,
  verifyRepository,
  withLease,
  type CopyResult,
  type RetentionPolicy,
  type RetentionRun,
  type VerifyResult,
} from '../repository/index.ts';
import { writeVhdFile } from '../vhd/index.ts';
import type { App } from './app.ts';
import { reportingDisk } from './disk-progress.ts';
import { AppError } from './errors.ts';

export interface BackupSummary {
  readonly remoteId: string;
  readonly vmId: string;
  readonly pointId: string;
  readonly createdMs: number;
  readonly label: string;
  readonly jobId: string | null;
  readonly scheduleId: string | null;
  readonly disks: readonly {
    readonly diskId: string;
    readonly name: string;
    readonly sizeBytes: number;
    /** What the point is now: the oldest point of its chain is the key (merges move it forward). */
    readonly kind: 'key' | 'delta';
    readonly writtenAs: 'key' | 'delta';
    readonly chainId: string;
    readonly chainLength: number;
    readonly storedBytes: number;
    readonly changedBlocks: number;
  }[];
}

export async function listBackups(
  app: App,
  remoteId: string,
  vmId?: string,
): Promise<BackupSummary[]> {
  const { repository } = await app.remote(remoteId);
  const points = await repository.listPoints(vmId);
  const seenChains = new Set<string>();
  return points.map((point) => ({
    remoteId,
    vmId: point.vmId,
    pointId: point.pointId,
    createdMs: point.createdMs,
    label: typeof point.vm['label'] === 'string' ? point.vm['label'] : point.vmId,
    jobId: point.jobId,
    scheduleId: point.scheduleId,
    disks: point.disks.map((disk) => ({
      diskId: disk.diskId,
      name: disk.name ?? disk.diskId,
      sizeBytes: disk.sizeBytes,
      kind: seenChains.has(disk.chainId) ? 'delta' : (seenChains.add(disk.chainId), 'key'),
      writtenAs: disk.writtenAs,
      chainId: disk.chainId,
      chainLength: disk.chainLength,
      storedBytes: disk.storedBytes,
      changedBlocks: disk.indexEntryCount,
    })),
  }));
}

/** Opens one disk of a restore point as a full DiskSource (every block's hash is checked). */
export async function openRestoreSource(
  app: App,
  remoteId: string,
  vmId: string,
  pointId: string,
  diskId: string,
): Promise<DiskSource> {
  const { repository } = await app.remote(remoteId);
  return openPointDisk(repository, vmId, pointId, diskId);
}

/** Runs `fn` on one disk of a restore point opened as a full DiskSource, closing it afterwards. */
async function withRestoreSource<T>(
  app: App,
  point: { readonly remoteId: string; readonly vmId: string; readonly pointId: string },
  diskId: string,
  fn: (source: DiskSource) => Promise<T>,
): Promise<T> {
  const source = await openRestoreSource(app, point.remoteId, point.vmId, point.pointId, diskId);
  try {
    return await fn(source);
  } finally {
    await source.close();
  }
}

async function pointDiskIds(
  app: App,
  remoteId: string,
  vmId: string,
  pointId: string,
  diskIds?: readonly string[],
): Promise<string[]> {
  const { repository } = await app.remote(remoteId);
  const point = await repository.readPoint(vmId, pointId);
  const all = point.disks.map((d) => d.diskId);
  if (diskIds === undefined || diskIds.length === 0) return all;
  for (const id of diskIds) {
    if (!all.includes(id))
      throw new AppError(
        'APP_CONFIG_INVALID',
        `restore point ${vmId}/${pointId} has no disk ${id}`,
      );
  }
  return [...diskIds];
}

export type FileFormat = 'raw' | 'qcow2' | 'vhd';

export interface RestoredFile {
  readonly diskId: string;
  readonly path: string;
  readonly format: FileFormat;
  readonly sizeBytes: number;
}

/** Restores disks of a point into new files `<dir>/<vmId>-<diskId>.<format>` (never overwrites). */
export async function restoreToFiles(
  app: App,
  request: {
    remoteId: string;
    vmId: string;
    pointId: string;
    diskIds?: readonly string[];
    dir: string;
    format: FileFormat;
    signal?: AbortSignal;
    /** Phase 'restore', item the disk id: blocks and bytes read of the disk's (ten a second). */
    onProgress?: ProgressListener;
  },
): Promise<RestoredFile[]> {
  await mkdir(request.dir, { recursive: true });
  const restored: RestoredFile[] = [];
  for (const diskId of await pointDiskIds(
    app,
    request.remoteId,
    request.vmId,
    request.pointId,
    request.diskIds,
  )) {
    const path = join(request.dir, `${request.vmId}-${diskId}.${request.format}`);
    const signal = request.signal === undefined ? {} : { signal: request.signal };
    const format = request.format;
    const sizeBytes = await withRestoreSource(app, request, diskId, async (point) => {
      const source = reportingDisk(point, request.onProgress, 'restore', diskId);
      if (format === 'vhd') await writeVhdFile(source, path, signal);
      else
        await restoreIntoImageFile(
          source,
          { kind: 'image-file', path, format },
          { qemuImg: 'qemu-img', ...signal },
        );
      return source.sizeBytes;
    });
    restored.push({ diskId, path, format, sizeBytes });
  }
  return restored;
}

/** Restores disks of a point through a hypervisor source (a new image, a stopped machine's disk...). */
export async function restoreToSource(
  app: App,
  request: {
    remoteId: string;
    vmId: string;
    pointId: string;
    sourceId: string;
    targets: readonly { diskId: string; target: DiskRestoreTarget }[];
    signal?: AbortSignal;
    /** Phase 'restore', item the disk id: blocks and bytes read of the disk's (ten a second). */
    onProgress?: ProgressListener;
  },
): Promise<RestoredDisk[]> {
  const hypervisor = app.source(request.sourceId);
  const results: RestoredDisk[] = [];
  for (const { diskId, target } of request.targets) {
    results.push(
      await withRestoreSource(app, request, diskId, (source) =>
        hypervisor.restoreDisk(
          reportingDisk(source, request.onProgress, 'restore', diskId),
          target,
          request.signal === undefined ? {} : { signal: request.signal },
        ),
      ),
    );
  }
  return results;
}

export interface MachineRestoreToSourceRequest {
  readonly remoteId: string;
  readonly vmId: string;
  readonly pointId: string;
  readonly sourceId: string;
  /** Name of the new machine. */
  readonly label: string;
  /** Storage pool of the new disks (XAPI: SR uuid). */
  readonly storageId: string;
  /** Only these disks (default: every disk of the point, in manifest order). */
  readonly diskIds?: readonly string[];
  /** Network (id or name) for interfaces whose saved network is not found; else skipped. */
  readonly defaultNetwork?: string;
  readonly signal?: AbortSignal;
}

/**
 * Restores a whole machine of a restore point into a source as a NEW machine: its properties
 * and network interfaces from the description saved in the point's manifest (`vm.metadata`;
 * points written before descriptions were saved restore with the source's defaults), each disk
 * as a new disk in `storageId`. Every disk can be opened again if the source must resend it.
 */
export async function restoreMachineToSource(
  app: App,
  request: MachineRestoreToSourceRequest,
): Promise<RestoredMachine> {
  const { repository } = await app.remote(request.remoteId);
  const point = await repository.readPoint(request.vmId, request.pointId);
  const saved = point.vm['metadata'];
  const metadata = saved === undefined ? undefined : parseMachineMetadata(saved);
  const diskIds = await pointDiskIds(
    app,
    request.remoteId,
    request.vmId,
    request.pointId,
    request.diskIds,
  );
  const hypervisor = app.source(request.sourceId);
  const open = (diskId: string): Promise<DiskSource> =>
    openRestoreSource(app, request.remoteId, request.vmId, request.pointId, diskId);
  const sources: DiskSource[] = [];
  try {
    for (const diskId of diskIds) sources.push(await open(diskId));
    return await hypervisor.restoreMachine({
      machine: {
        label: request.label,
        ...(metadata === undefined ? {} : { metadata }),
        ...(request.defaultNetwork === undefined ? {} : { defaultNetwork: request.defaultNetwork }),
      },
      disks: sources.map((source, i) => {
        const diskId = diskIds[i] ?? '';
        const name = point.disks.find((d) => d.diskId === diskId)?.name ?? diskId;
        return {
          source,
          // A XAPI disk id is its VBD position: the restored VM gets the same numbering.
          target: { kind: 'new-disk', storageId: request.storageId, label: name, position: diskId },
          reopenSource: () => open(diskId),
        };
      }),
      ...(request.signal === undefined ? {} : { signal: request.signal }),
    });
  } finally {
    for (const source of sources) await source.close();
  }
}

/** Copies backups from one remote to another (idempotent, resumable): initial seed and mirrors. */
export async function copyBackups(
  app: App,
  request: {
    from: string;
    to: string;
    vmId?: string;
    mode?: 'all' | 'mirror';
    signal?: AbortSignal;
    /** See CopyOptions.onProgress: 'plan', then 'copy' with exact totals. */
    onProgress?: ProgressListener;
  },
): Promise<CopyResult> {
  const from = await app.remote(request.from);
  // A new target gets the source's parameters: objects are copied as they are (§4.7).
  const to = await app.remote(request.to, { initLike: from.repository.config });
  return copyPoints(from.repository, to.repository, {
    ...(request.vmId === undefined ? {} : { vmId: request.vmId }),
    ...(request.mode === undefined ? {} : { mode: request.mode }),
    ...(request.signal === undefined ? {} : { signal: request.signal }),
    ...(request.onProgress === undefined ? {} : { onProgress: request.onProgress }),
  });
}

export async function verifyBackups(
  app: App,
  request: {
    remoteId: string;
    vmId?: string;
    dataSample?: number;
    /** See VerifyOptions.onProgress: 'scan', then 'verify' with exact totals. */
    onProgress?: ProgressListener;
  },
): Promise<VerifyResult> {
  const { repository } = await app.remote(request.remoteId);
  return verifyRepository(repository, {
    ...(request.vmId === undefined ? {} : { vmId: request.vmId }),
    ...(request.dataSample === undefined ? {} : { dataSample: request.dataSample }),
    ...(request.onProgress === undefined ? {} : { onProgress: request.onProgress }),
  });
}

/** Retention on demand (merges the removed points into their successors), then GC. */
export async function pruneBackups(
  app: App,
  request: {
    remoteId: string;
    vmId: string;
    policy: RetentionPolicy;
    dryRun?: boolean;
    /** Phase 'merge' (points removed of those to remove), then 'gc' (objects examined). */
    onProgress?: ProgressListener;
  },
): Promise<RetentionRun> {
  const { repository } = await app.remote(request.remoteId);
  if (request.dryRun === true)
    return applyRetention(repository, request.vmId, request.policy, { dryRun: true });
  // Merges rewrite the VM's chains: under its lease, so no backup runs at the same time.
  const run = await withLease(
    repository,
    request.vmId,
    { holderId: `vmdelta-prune:${process.pid}` },
    () =>
      applyRetention(
        repository,
        request.vmId,
        request.policy,
        request.onProgress === undefined ? {} : { onProgress: request.onProgress },
      ),
  );
  await collectGarbage(
    repository,
    request.onProgress === undefined ? {} : { onProgress: request.onProgress },
  );
  return run;
}
