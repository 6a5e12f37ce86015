/**
 * Copying restore points between repositories (docs/design.md §4.9): for each point, the block
 * objects of its chain walk first, then its indexes, then its manifest (the commit point on the
 * target). Idempotent and resumable: an object already on the target with the same size is
 * skipped; a manifest already there means the point is done. Blocks are checked (magic, length,
 * hash) while copied: the source is untrusted input too.
 */
import { throwIfAborted } from '../core/index.ts';
import { StorageError } from '../storage/index.ts';
import { decodeBlockObject } from './block-codec.ts';
import { RepositoryError } from './errors.ts';
import { blockKey, pointKey } from './keys.ts';
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
}

export interface CopyResult {
  readonly copiedPoints: number;
  readonly copiedObjects: number;
  readonly skippedObjects: number;
  readonly copiedBytes: number;
}

export async function copyPoints(
  source: Repository,
  target: Repository,
  options: CopyOptions = {},
): Promise<CopyResult> {
  if (source.config.blockSizeBytes !== target.config.blockSizeBytes) {
    throw new RepositoryError(
      'REPO_CONFIG_MISMATCH',
      'source and target repositories differ in block size',
    );
  }
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
  let copiedPoints = 0;
  let copiedObjects = 0;
  let skippedObjects = 0;
  let copiedBytes = 0;
  const done = new Set<string>();
  const concurrency = Math.max(
    1,
    options.concurrency ?? Math.min(8, target.store.properties.maxConcurrency),
  );

  const copyObject = async (key: string, check: (body: Buffer) => void): Promise<void> => {
    if (done.has(key)) return;
    const sourceInfo = await source.store.stat(key);
    const targetInfo = await target.store.stat(key);
    if (targetInfo !== undefined && targetInfo.sizeBytes === sourceInfo?.sizeBytes) {
      skippedObjects += 1;
    } else {
      const body = await source.getReferenced(key);
      check(body);
      await target.store.put(key, body);
      copiedObjects += 1;
      copiedBytes += body.length;
    }
    done.add(key);
  };

  for (const point of points) {
    throwIfAborted(options.signal);
    if ((newestOnTarget.get(point.vmId) ?? -1) >= point.createdMs) continue;
    if ((await target.store.stat(pointKey(point.vmId, point.pointId))) !== undefined) continue;
    await copyPoint(source, point, copyObject, concurrency);
    try {
      await target.store.put(pointKey(point.vmId, point.pointId), formatPointManifest(point), {
        ifAbsent: true,
      });
      copiedPoints += 1;
    } catch (error) {
      if (!(error instanceof StorageError && error.code === 'STORAGE_ALREADY_EXISTS')) throw error;
    }
  }
  return { copiedPoints, copiedObjects, skippedObjects, copiedBytes };
}

async function copyPoint(
  source: Repository,
  point: PointManifest,
  copyObject: (key: string, check: (body: Buffer) => void) => Promise<void>,
  concurrency: number,
): Promise<void> {
  for (const disk of point.disks) {
    const folded = await source.foldDisk(point.vmId, disk);
    function* jobs(): Generator<() => Promise<void>> {
      for (const blockIndex of folded.present) {
        const hash = folded.hashOf(blockIndex);
        if (hash === undefined) continue;
        const expected = Buffer.from(hash);
        const lengthBytes = folded.lengthOf(blockIndex);
        const key = blockKey(point.vmId, disk.chainId, expected);
        yield () =>
          copyObject(key, (body) => void decodeBlockObject(key, body, expected, lengthBytes));
      }
    }
    const queue = jobs();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (let job = queue.next(); job.done !== true; job = queue.next()) await job.value();
      }),
    );
    const chain = await source.loadChain(point.vmId, disk.chainId);
    for (const ref of chain.walk(disk.seq)) {
      await copyObject(ref.key, () => undefined);
    }
  }
}
