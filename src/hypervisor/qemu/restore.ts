/**
 * Restoring a full DiskSource (a restore point) on a QEMU host:
 * - into a new raw image: a sparse file, each non-zero block written at its offset;
 * - into a new qcow2 image: the same sparse raw file next to it, converted with `qemu-img convert`
 *   (holes stay unallocated), then removed;
 * - back into a stopped machine's image: the image is rewritten the same way and replaced
 *   atomically by rename (its bitmaps go with it: the next backup is a key, BITMAP_MISSING).
 * Zero blocks are never written (the sparse file reads zeros there), so the result is bit-exact.
 */
import { open, rename, stat, unlink } from 'node:fs/promises';
import { throwIfAborted } from '../../core/index.ts';
import { isZeroBlock, type DiskSource } from '../../disk/index.ts';
import { HypervisorError } from '../errors.ts';
import type { DiskRestoreTarget, RestoredDisk } from '../hypervisor.ts';
import type { QemuImageConfig } from './offline-point.ts';
import { imageInfo, runTool } from './qemu-tools.ts';

interface RestoreToolOptions {
  readonly qemuImg: string;
  readonly signal?: AbortSignal;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Writes `source` into a new sparse raw file; returns the number of blocks written. */
async function writeSparseRaw(
  source: DiskSource,
  path: string,
  signal: AbortSignal | undefined,
): Promise<number> {
  if (source.kind !== 'full') {
    throw new HypervisorError(
      'HYPERVISOR_INVALID_REQUEST',
      'a restore needs a full disk source (a restore point), not a delta',
    );
  }
  const file = await open(path, 'wx');
  let written = 0;
  try {
    await file.truncate(source.sizeBytes);
    for await (const block of source.readBlocks(signal === undefined ? {} : { signal })) {
      throwIfAborted(signal);
      if (isZeroBlock(block.data)) continue;
      await file.write(block.data, 0, block.data.length, block.index * source.blockSizeBytes);
      written += 1;
    }
    await file.sync();
  } finally {
    await file.close();
  }
  return written;
}

export async function restoreIntoImageFile(
  source: DiskSource,
  target: Extract<DiskRestoreTarget, { kind: 'image-file' }>,
  options: RestoreToolOptions,
): Promise<RestoredDisk> {
  if (await exists(target.path)) {
    throw new HypervisorError('HYPERVISOR_TARGET_EXISTS', `${target.path} already exists`, {
      details: { path: target.path },
    });
  }
  const rawPath = target.format === 'raw' ? target.path : `${target.path}.vmdelta-restore.raw`;
  try {
    const writtenBlocks = await writeSparseRaw(source, rawPath, options.signal);
    if (target.format === 'qcow2') {
      await runTool(options.qemuImg, ['convert', '-f', 'raw', '-O', 'qcow2', rawPath, target.path]);
    }
    return {
      target,
      location: target.path,
      sizeBytes: source.sizeBytes,
      writtenBlocks,
      transport: { protocol: 'file' },
    };
  } catch (error) {
    await unlink(target.path).catch(() => undefined);
    throw error;
  } finally {
    if (rawPath !== target.path) await unlink(rawPath).catch(() => undefined);
  }
}

export async function restoreDiskToImage(
  source: DiskSource,
  target: Extract<DiskRestoreTarget, { kind: 'machine-disk' }>,
  image: QemuImageConfig,
  options: RestoreToolOptions,
): Promise<RestoredDisk> {
  const info = await imageInfo(options.qemuImg, image.path);
  if (info.virtualSizeBytes !== source.sizeBytes) {
    throw new HypervisorError('HYPERVISOR_SIZE_MISMATCH', `${image.path} differs in size`, {
      details: { sourceSizeBytes: source.sizeBytes, diskSizeBytes: info.virtualSizeBytes },
    });
  }
  const temporary = `${image.path}.vmdelta-restore`;
  await unlink(temporary).catch(() => undefined);
  const restored = await restoreIntoImageFile(
    source,
    { kind: 'image-file', path: temporary, format: image.format },
    options,
  );
  // qemu-img convert/open locks: a running machine holding the image makes this fail first.
  await runTool(options.qemuImg, ['info', image.path]);
  await rename(temporary, image.path);
  return { ...restored, target, location: image.path };
}
