/**
 * Restoring a full DiskSource (a restore point) on a QEMU host:
 * - into a new raw image: a sparse file, each non-zero block written at its offset;
 * - into a new qcow2 image: the same sparse raw file next to it, converted with `qemu-img convert`
 *   (holes stay unallocated), then removed;
 * - back into a stopped machine's image: the image is rewritten the same way and replaced
 *   atomically by rename (its bitmaps go with it: the next backup is a key, BITMAP_MISSING).
 * Zero blocks are never written (the sparse file reads zeros there), so the result is bit-exact.
 * With an NBD sink injected (`openSink`), restores go through a writable qemu-nbd export instead
 * (`restoreThroughNbd`): no temporary raw file, and an in-place restore keeps the image's bitmaps.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import {
  blockCountFor,
  blockLengthBytes,
  isZeroBlock,
  writeRawFile,
  zeroBlock,
  type DiskSource,
} from '../../disk/index.ts';
import { HypervisorError } from '../errors.ts';
import type { DiskRestoreTarget, RestoredDisk } from '../hypervisor.ts';
import type { QemuImageConfig } from './offline-point.ts';
import type { NbdSink, OpenNbdSink } from '../open-nbd-disk.ts';
import { imageInfo, runTool, startQemuNbdExport, type QemuNbdProcess } from './qemu-tools.ts';

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
  return writeRawFile(source, path, {
    exclusive: true,
    ...(signal === undefined ? {} : { signal }),
  });
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

async function checkImageSize(qemuImg: string, path: string, sizeBytes: number): Promise<void> {
  const info = await imageInfo(qemuImg, path);
  if (info.virtualSizeBytes !== sizeBytes) {
    throw new HypervisorError('HYPERVISOR_SIZE_MISMATCH', `${path} differs in size`, {
      details: { sourceSizeBytes: sizeBytes, diskSizeBytes: info.virtualSizeBytes },
    });
  }
}

/**
 * Back into a stopped machine's image of the same size: in place through a writable qemu-nbd
 * export when `nbd` is given (the image keeps its bitmaps), else rewritten and replaced by rename.
 */
export async function restoreIntoMachineImage<TTls>(
  source: DiskSource,
  target: Extract<DiskRestoreTarget, { kind: 'machine-disk' }>,
  image: QemuImageConfig,
  options: RestoreToolOptions & { readonly nbd?: NbdRestoreOptions<TTls> },
): Promise<RestoredDisk> {
  if (options.nbd === undefined) return restoreDiskToImage(source, target, image, options);
  await checkImageSize(options.qemuImg, image.path, source.sizeBytes);
  const done = await restoreThroughNbd(
    source,
    { path: image.path, format: image.format, create: false },
    options.nbd,
  );
  return { target, location: image.path, sizeBytes: source.sizeBytes, ...done };
}

async function restoreDiskToImage(
  source: DiskSource,
  target: Extract<DiskRestoreTarget, { kind: 'machine-disk' }>,
  image: QemuImageConfig,
  options: RestoreToolOptions,
): Promise<RestoredDisk> {
  await checkImageSize(options.qemuImg, image.path, source.sizeBytes);
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

export interface NbdRestoreOptions<TTls> {
  readonly qemuImg: string;
  readonly qemuNbd: string;
  readonly openSink: OpenNbdSink<TTls>;
  readonly clientTls?: TTls;
  /** Where the temporary unix socket and pid file go. */
  readonly socketDir: string;
  readonly connections?: number;
  readonly signal?: AbortSignal;
}

/**
 * Restores through a writable qemu-nbd export of the target image. A new image (`create`) is
 * made with qemu-img and only non-zero blocks are written; an existing image (a stopped machine's
 * disk) is overwritten entirely: blocks absent from the source are written as zeros, and the
 * image keeps its persistent bitmaps, which record the restore (the next backup is a delta).
 */
export async function restoreThroughNbd<TTls>(
  source: DiskSource,
  image: { readonly path: string; readonly format: 'qcow2' | 'raw'; readonly create: boolean },
  options: NbdRestoreOptions<TTls>,
): Promise<{ writtenBlocks: number; transport: NbdSink['transport'] }> {
  if (source.kind !== 'full') {
    throw new HypervisorError(
      'HYPERVISOR_INVALID_REQUEST',
      'a restore needs a full disk source (a restore point), not a delta',
    );
  }
  if (image.create) {
    if (await exists(image.path)) {
      throw new HypervisorError('HYPERVISOR_TARGET_EXISTS', `${image.path} already exists`, {
        details: { path: image.path },
      });
    }
    await runTool(options.qemuImg, [
      'create',
      '-q',
      '-f',
      image.format,
      image.path,
      String(source.sizeBytes),
    ]);
  }
  await mkdir(options.socketDir, { recursive: true });
  const name = `restore-${randomBytes(4).toString('hex')}`;
  let server: QemuNbdProcess | undefined;
  try {
    server = await startQemuNbdExport({
      qemuNbd: options.qemuNbd,
      image: image.path,
      format: image.format,
      exportName: name,
      socketPath: join(options.socketDir, `${name}.sock`),
      pidFile: join(options.socketDir, `${name}.pid`),
      shared: Math.max(1, options.connections ?? 1),
      writable: true,
    });
    const sink = await options.openSink({
      uri: `nbd+unix:///${name}?socket=${server.socketPath}`,
      ...(options.clientTls === undefined ? {} : { tls: options.clientTls }),
      ...(options.connections === undefined ? {} : { connections: options.connections }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
    let writtenBlocks = 0;
    try {
      const blockSizeBytes = source.blockSizeBytes;
      const blockCount = blockCountFor(source.sizeBytes, blockSizeBytes);
      let nextIndex = 0;
      const zeroUpTo = async (endIndex: number): Promise<void> => {
        // Overwriting an existing disk: what the source does not list reads as zeros.
        for (; nextIndex < endIndex; nextIndex += 1) {
          if (image.create) continue;
          const length = blockLengthBytes(nextIndex, source.sizeBytes, blockSizeBytes);
          await sink.writeBlock(nextIndex, zeroBlock(length), blockSizeBytes);
        }
      };
      const readOptions = options.signal === undefined ? {} : { signal: options.signal };
      for await (const block of source.readBlocks(readOptions)) {
        await zeroUpTo(block.index);
        nextIndex = block.index + 1;
        if (!image.create || !isZeroBlock(block.data)) {
          await sink.writeBlock(block.index, block.data, blockSizeBytes);
          writtenBlocks += 1;
        }
        block.release?.();
      }
      await zeroUpTo(blockCount);
    } finally {
      await sink.close();
    }
    return { writtenBlocks, transport: sink.transport };
  } catch (error) {
    await server?.stop();
    server = undefined;
    if (image.create) await unlink(image.path).catch(() => undefined);
    throw error;
  } finally {
    // qemu-nbd flushes and closes the image cleanly on SIGTERM.
    await server?.stop();
  }
}
