/**
 * Backup points of a stopped machine, from its image files (qemu.md §9, nbd.md §14). qcow2 images
 * carry persistent bitmaps managed offline with `qemu-img bitmap`: add the new one, freeze the
 * previous one, export the image read-only with qemu-nbd `-B previous` (qemu-nbd holds the image
 * lock, so the machine cannot start and write meanwhile). Raw images have no change tracker:
 * every allocated block is read and the reason says "no change tracker" (the engine keeps only
 * blocks whose hash changed). Commit removes the previous bitmap; abort folds the new one back.
 */
import { mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { describeError, type Logger } from '../../core/index.ts';
import { HypervisorError } from '../errors.ts';
import {
  makeFullReason,
  type BackupPoint,
  type BackupPointState,
  type DiskInfo,
  type DiskPointRequest,
  type DiskReference,
  type OpenedPointSource,
  type OpenPointSourceOptions,
  type PointDisk,
  type PointNotice,
} from '../hypervisor.ts';
import type { OpenNbdDisk } from '../open-nbd-disk.ts';
import { bitmapGranularityBytes } from './live-point.ts';
import { bitmapName, isScopeBitmap, isScopeTemp, newPointId, tempName } from './names.ts';
import { planDisk, type DiskPlan } from './plan.ts';
import {
  imageInfo,
  pidRuns,
  runTool,
  startQemuNbdExport,
  stopProcess,
  type ImageInfo,
  type QemuNbdProcess,
} from './qemu-tools.ts';

export interface QemuImageConfig {
  readonly id: string;
  readonly path: string;
  readonly format: 'qcow2' | 'raw';
}

export async function offlineDiskInfo(image: QemuImageConfig, qemuImg: string): Promise<DiskInfo> {
  const info = await imageInfo(qemuImg, image.path);
  return diskInfoOf(image, info);
}

function diskInfoOf(image: QemuImageConfig, info: ImageInfo): DiskInfo {
  return {
    id: image.id,
    label: image.id,
    sizeBytes: info.virtualSizeBytes,
    identity: image.path,
    changeTracker: image.format === 'qcow2' ? 'qemu-dirty-bitmap' : 'none',
    ...(image.format === 'qcow2' ? { changeTrackerGranularityBytes: bitmapGranularityBytes } : {}),
    format: image.format,
  };
}

export interface OfflinePointContext<TTls = unknown> {
  readonly machineId: string;
  readonly scope: string;
  readonly scratchDir: string;
  readonly images: readonly QemuImageConfig[];
  readonly requests: readonly DiskPointRequest[];
  readonly openDisk: OpenNbdDisk<TTls>;
  readonly qemuImg: string;
  readonly qemuNbd: string;
  readonly blockSizeBytes: number;
  readonly connections?: number;
  readonly logger: Logger;
  readonly now: () => number;
  readonly onClose: () => void;
}

/** Kills qemu-nbd servers left by a crashed run of this scope (pid files in the scratch folder). */
async function cleanupOffline(scratchDir: string, scope: string): Promise<string[]> {
  const cleaned: string[] = [];
  for (const name of await readdir(scratchDir).catch(() => [] as string[])) {
    if (!isScopeTemp(name, scope)) continue;
    const path = join(scratchDir, name);
    if (name.endsWith('.pid')) {
      const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim());
      if (pid > 0 && (await pidRuns(pid, 'qemu-nbd'))) await stopProcess(pid);
    }
    await unlink(path).catch(() => undefined);
    cleaned.push(name);
  }
  return cleaned;
}

async function bitmapCommand(
  qemuImg: string,
  image: string,
  ops: string[],
  name: string,
): Promise<void> {
  await runTool(qemuImg, ['bitmap', ...ops, image, name]);
}

export async function startOfflinePoint<TTls>(
  context: OfflinePointContext<TTls>,
): Promise<BackupPoint> {
  const { scope, qemuImg } = context;
  await mkdir(context.scratchDir, { recursive: true });
  const cleaned = await cleanupOffline(context.scratchDir, scope);
  const notices: PointNotice[] = [];
  if (cleaned.length > 0) {
    notices.push({
      code: 'LEFTOVERS_REMOVED',
      message: `removed leftovers of an unfinished point: ${cleaned.join(', ')}`,
    });
    context.logger.log('warn', 'removed leftovers of a previous run', {
      leftovers: cleaned.join(', '),
    });
  }
  const pointId = newPointId();
  const createdAtMs = context.now();
  const newBitmap = bitmapName(scope, pointId);
  const items: {
    image: QemuImageConfig;
    info: DiskInfo;
    request: DiskPointRequest;
    plan: DiskPlan;
    exportName: string;
    server?: QemuNbdProcess;
  }[] = [];
  for (const [index, request] of context.requests.entries()) {
    const image = context.images.find((i) => i.id === request.diskId);
    if (image === undefined)
      throw new HypervisorError('HYPERVISOR_DISK_NOT_FOUND', `no disk ${request.diskId}`);
    let info = await imageInfo(qemuImg, image.path);
    const baseName = request.previous?.kind === 'qemu' ? request.previous.token : undefined;
    const base = info.bitmaps.find((b) => b.name === baseName);
    if (
      image.format === 'qcow2' &&
      baseName !== undefined &&
      base !== undefined &&
      !base.inconsistent
    ) {
      // Fold strays of a crashed point back into the reference (offline: nobody writes).
      const strays = info.bitmaps.filter(
        (b) => b.name !== baseName && isScopeBitmap(b.name, scope) && !b.inconsistent,
      );
      if (strays.length > 0) {
        for (const stray of strays)
          await bitmapCommand(qemuImg, image.path, ['--merge', stray.name], baseName);
        await bitmapCommand(qemuImg, image.path, ['--enable'], baseName);
        for (const stray of strays)
          await bitmapCommand(qemuImg, image.path, ['--remove'], stray.name);
        info = await imageInfo(qemuImg, image.path);
      }
    }
    const plan = planDisk({
      machineId: context.machineId,
      scope,
      request,
      disk: {
        id: image.id,
        identity: image.path,
        sizeBytes: info.virtualSizeBytes,
        bitmaps: info.bitmaps,
        hasChangeTracker: image.format === 'qcow2',
      },
    });
    items.push({
      image,
      info: diskInfoOf(image, info),
      request,
      plan,
      exportName: tempName(scope, pointId, 'e', index),
    });
  }
  const stopAll = async (): Promise<string[]> => {
    const failures: string[] = [];
    for (const item of items) {
      await item.server?.stop().catch((error: unknown) => failures.push(describeError(error)));
    }
    return failures;
  };
  /** Abort: the previous bitmap recording again, with anything the new one saw; new one gone. */
  const undoBitmaps = async (): Promise<void> => {
    for (const item of items) {
      if (item.image.format !== 'qcow2') continue;
      if (item.plan.kind === 'delta') {
        await bitmapCommand(qemuImg, item.image.path, ['--merge', newBitmap], item.plan.base.name);
        await bitmapCommand(qemuImg, item.image.path, ['--enable'], item.plan.base.name);
      }
      await bitmapCommand(qemuImg, item.image.path, ['--remove'], newBitmap);
    }
  };
  let bitmapsChanged = false;
  try {
    for (const item of items) {
      if (item.image.format !== 'qcow2') continue;
      bitmapsChanged = true;
      await runTool(qemuImg, [
        'bitmap',
        '--add',
        '-g',
        String(bitmapGranularityBytes),
        item.image.path,
        newBitmap,
      ]);
      if (item.plan.kind === 'delta')
        await bitmapCommand(qemuImg, item.image.path, ['--disable'], item.plan.base.name);
    }
    for (const item of items) {
      item.server = await startQemuNbdExport({
        qemuNbd: context.qemuNbd,
        image: item.image.path,
        format: item.image.format,
        exportName: item.exportName,
        socketPath: join(context.scratchDir, `${item.exportName}.sock`),
        pidFile: join(context.scratchDir, `${item.exportName}.pid`),
        ...(item.plan.kind === 'delta' ? { bitmap: item.plan.base.name } : {}),
        shared: Math.max(1, context.connections ?? 4),
      });
    }
  } catch (error) {
    await stopAll();
    if (bitmapsChanged) await undoBitmaps().catch(() => undefined);
    context.onClose();
    throw error;
  }
  let state: BackupPointState = 'open';
  const finish = async (next: 'committed' | 'aborted'): Promise<void> => {
    if (state !== 'open')
      throw new HypervisorError('HYPERVISOR_POINT_CLOSED', `point ${pointId} is ${state}`);
    state = next;
    try {
      const failures = await stopAll();
      try {
        if (next === 'aborted') await undoBitmaps();
        else {
          for (const item of items) {
            if (item.image.format !== 'qcow2') continue;
            const info = await imageInfo(qemuImg, item.image.path);
            for (const bitmap of info.bitmaps) {
              if (bitmap.name !== newBitmap && isScopeBitmap(bitmap.name, scope)) {
                await bitmapCommand(qemuImg, item.image.path, ['--remove'], bitmap.name);
              }
            }
          }
        }
      } catch (error) {
        failures.push(describeError(error));
      }
      if (failures.length > 0) {
        throw new HypervisorError(
          'HYPERVISOR_TEARDOWN_FAILED',
          `point ${pointId} ${next} with leftovers: ${failures.join('; ')}`,
          {
            retryable: true,
          },
        );
      }
    } finally {
      context.onClose();
    }
  };
  const disks: PointDisk[] = items.map((item) => {
    const tracked = item.image.format === 'qcow2';
    const reference: DiskReference = {
      kind: 'qemu',
      machineId: context.machineId,
      diskId: item.image.id,
      diskIdentity: item.image.path,
      sizeBytes: item.info.sizeBytes,
      token: tracked ? newBitmap : bitmapName(scope, pointId),
      createdAtMs,
      attributes: tracked
        ? { granularityBytes: String(bitmapGranularityBytes), persistent: 'true' }
        : { changeTracker: 'none' },
    };
    // Raw images: "no change tracker" replaces the planner's reasons that assume a bitmap.
    const fullReason =
      item.plan.kind === 'delta'
        ? undefined
        : !tracked && item.request.previous !== undefined && item.request.mode !== 'key'
          ? makeFullReason('NO_CHANGE_TRACKER', { format: item.image.format })
          : item.plan.reason;
    const base = item.plan.kind === 'delta' ? item.plan.base.name : undefined;
    return {
      disk: item.info,
      plannedKind: base === undefined ? 'full' : 'delta',
      ...(fullReason === undefined ? {} : { plannedFullReason: fullReason }),
      ...(item.request.previous === undefined ? {} : { previous: item.request.previous }),
      reference,
      openSource: async (options: OpenPointSourceOptions = {}): Promise<OpenedPointSource> => {
        if (state !== 'open')
          throw new HypervisorError('HYPERVISOR_POINT_CLOSED', `point ${pointId} is ${state}`);
        const connections = options.connections ?? context.connections;
        const source = await context.openDisk({
          uri: `nbd+unix:///${item.exportName}?socket=${item.server?.socketPath ?? ''}`,
          blockSizeBytes: context.blockSizeBytes,
          mode: base === undefined ? { kind: 'full' } : { kind: 'delta', dirtyBitmap: base },
          ...(connections === undefined ? {} : { connections }),
          ...(options.signal === undefined ? {} : { signal: options.signal }),
        });
        return {
          source,
          transport: source.transport,
          changeTracker: tracked
            ? {
                kind: 'qemu-dirty-bitmap',
                granularityBytes: bitmapGranularityBytes,
                ...(base === undefined ? {} : { base }),
              }
            : { kind: 'none' },
          ...(fullReason === undefined ? {} : { fullReason }),
        };
      },
    };
  });
  return {
    machineId: context.machineId,
    pointId,
    createdAtMs,
    disks,
    notices,
    get state() {
      return state;
    },
    commit: () => finish('committed'),
    abort: () => finish('aborted'),
  };
}
