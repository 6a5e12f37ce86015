/**
 * Copying restore points between repositories (docs/design.md §4.9): for each point, the block
 * objects of its chain walk first, then its indexes, then its manifest (the commit point on the
 * target). Idempotent and resumable: an object already on the target with the same size is
 * skipped; a manifest already there means the point is done. Blocks are checked (magic, length,
 * hash) while copied: the source is untrusted input too.
 *
 * Two phases: 'plan' lists the objects of every point to copy and compares their sizes on both
 * sides (the stats a copy needs anyway), so 'copy' knows exactly how many objects and bytes it
 * transfers before it starts (progress totals).
 */
import { ProgressMeter, throwIfAborted, type ProgressListener } from '../core/index.ts';
import { StorageError } from '../storage/index.ts';
import { decodeBlockObject } from './block-codec.ts';
import { RepositoryError } from './errors.ts';
import { blockKey, pointKey } from './keys.ts';
import { forEachLimited } from './limited.ts';
import { formatPointManifest, type PointManifest } from './manifest.ts';
import type { Repository } from './repository.ts';

export interface CopyOptions {
  readonly vmId?: string;
  /** Only these points (default: all of the source). */
  readonly pointIds?: readonly string[];
  /**
   * 'all': every selected point missing on the target. 'mirror': only points newer than the
   * target's newest point of the same VM (so the target's own retention is not undone).
   */
  readonly mode?: 'all' | 'mirror';
  readonly concurrency?: number;
  readonly signal?: AbortSignal;
  /**
   * Progress, at most ten reports a second: phase 'plan' (objects compared of those listed), then
   * 'copy' (objects and bytes transferred of the totals planned; its last report equals the result).
   */
  readonly onProgress?: ProgressListener;
}

export interface CopyResult {
  readonly copiedPoints: number;
  readonly copiedObjects: number;
  readonly skippedObjects: number;
  readonly copiedBytes: number;
}

/** Objects of one disk of a point to copy: blocks (checked, in parallel), then its indexes. */
class DiskObjects {
  readonly blockKeys: string[] = [];
  /** Plain length of each block (what its object must decode to). */
  readonly blockLengths: number[] = [];
  readonly indexKeys: string[] = [];
}

interface PlannedPoint {
  readonly point: PointManifest;
  readonly disks: DiskObjects[];
}

/** Source size of each object to transfer; absent = already on the target with the same size. */
type TransferSizes = Map<string, number>;

export async function copyPoints(
  source: Repository,
  target: Repository,
  options: CopyOptions = {},
): Promise<CopyResult> {
  // Objects are copied as they are: their names and indexes are only valid under the same block
  // size and hash (compression may differ: each block object names its codec).
  for (const field of ['blockSizeBytes', 'hash'] as const) {
    if (source.config[field] !== target.config[field]) {
      throw new RepositoryError(
        'REPO_CONFIG_MISMATCH',
        `source and target repositories differ in ${field === 'hash' ? 'block hash' : 'block size'} (${String(source.config[field])} and ${String(target.config[field])})`,
        { details: { field } },
      );
    }
  }
  const meter = new ProgressMeter(options.onProgress);
  const concurrency = Math.max(
    1,
    options.concurrency ?? Math.min(8, target.store.properties.maxConcurrency),
  );
  const planned = await planCopy(source, target, options);
  const listed = planned.flatMap((p) => p.disks.flatMap((d) => [...d.blockKeys, ...d.indexKeys]));
  meter.start('plan', { totalObjects: listed.length });
  const sizes: TransferSizes = new Map();
  await forEachLimited(listed, concurrency, async (key) => {
    throwIfAborted(options.signal);
    const sourceInfo = await source.store.stat(key);
    const targetInfo = await target.store.stat(key);
    // A source object that is absent is kept in the plan: its read fails with REPO_OBJECT_MISSING.
    if (targetInfo === undefined || targetInfo.sizeBytes !== sourceInfo?.sizeBytes)
      sizes.set(key, sourceInfo?.sizeBytes ?? 0);
    meter.add(1, 0);
  });
  meter.report();
  const skippedObjects = listed.length - sizes.size;
  let totalBytes = 0;
  for (const sizeBytes of sizes.values()) totalBytes += sizeBytes;
  meter.start('copy', { totalObjects: sizes.size, totalBytes });

  const copyObject = async (key: string, expected?: Buffer, lengthBytes = 0): Promise<void> => {
    if (!sizes.has(key)) return;
    const body = await source.getReferenced(key);
    if (expected !== undefined) {
      decodeBlockObject(key, body, expected, lengthBytes, source.config.hash);
    }
    await target.store.put(key, body);
    meter.add(1, body.length);
  };

  let copiedPoints = 0;
  for (const { point, disks } of planned) {
    throwIfAborted(options.signal);
    for (const disk of disks) {
      await forEachLimited(disk.blockKeys.keys(), concurrency, async (i) => {
        const key = disk.blockKeys[i] ?? '';
        await copyObject(key, hashOfBlockKey(key), disk.blockLengths[i]);
      });
      for (const key of disk.indexKeys) await copyObject(key);
    }
    try {
      await target.store.put(pointKey(point.vmId, point.pointId), formatPointManifest(point), {
        ifAbsent: true,
      });
      copiedPoints += 1;
    } catch (error) {
      if (!(error instanceof StorageError && error.code === 'STORAGE_ALREADY_EXISTS')) throw error;
    }
  }
  meter.report();
  return {
    copiedPoints,
    copiedObjects: meter.doneObjects,
    skippedObjects,
    copiedBytes: meter.doneBytes,
  };
}

/** The points to copy, oldest first, each with the objects no earlier planned point brings. */
async function planCopy(
  source: Repository,
  target: Repository,
  options: CopyOptions,
): Promise<PlannedPoint[]> {
  let points = await source.listPoints(options.vmId);
  if (options.pointIds !== undefined) {
    const wanted = new Set(options.pointIds);
    points = points.filter((point) => wanted.has(point.pointId));
  }
  const newestOnTarget = new Map<string, number>();
  if (options.mode === 'mirror') {
    for (const point of await target.listPoints(options.vmId)) {
      newestOnTarget.set(
        point.vmId,
        Math.max(newestOnTarget.get(point.vmId) ?? -1, point.createdMs),
      );
    }
  }
  const seen = new Set<string>();
  const planned: PlannedPoint[] = [];
  for (const point of points) {
    throwIfAborted(options.signal);
    if ((newestOnTarget.get(point.vmId) ?? -1) >= point.createdMs) continue;
    if ((await target.store.stat(pointKey(point.vmId, point.pointId))) !== undefined) continue;
    const disks: DiskObjects[] = [];
    for (const disk of point.disks) {
      const objects = new DiskObjects();
      const chain = await source.loadChain(point.vmId, disk.chainId);
      const folded = await source.foldDisk(point.vmId, disk, chain);
      for (const blockIndex of folded.present) {
        const hash = folded.hashOf(blockIndex);
        if (hash === undefined) continue;
        const key = blockKey(point.vmId, disk.chainId, hash);
        if (seen.has(key)) continue;
        seen.add(key);
        objects.blockKeys.push(key);
        objects.blockLengths.push(folded.lengthOf(blockIndex));
      }
      for (const ref of chain.walk(disk.seq)) {
        if (seen.has(ref.key)) continue;
        seen.add(ref.key);
        objects.indexKeys.push(ref.key);
      }
      disks.push(objects);
    }
    planned.push({ point, disks });
  }
  return planned;
}

/** The hash a block key names (its last path segment, hex). */
function hashOfBlockKey(key: string): Buffer {
  return Buffer.from(key.slice(key.lastIndexOf('/') + 1), 'hex');
}
