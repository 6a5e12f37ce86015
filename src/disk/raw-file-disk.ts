/**
 * A raw image file as a DiskSource (kind 'full') and as a DiskSink (restore target).
 *
 * Source: `blocks` must be known before any data is read, and Node exposes no SEEK_DATA/SEEK_HOLE,
 * so every block is listed and read; holes read back as zeros from the page cache (cheap), and
 * consumers drop all-zero blocks (the repository writer never stores them). Reads run a bounded
 * window ahead of the consumer. Sink: the file is created or truncated to the disk size (one
 * sparse hole), zero blocks are skipped so they stay holes, `close()` fsyncs. Every
 * WRITEBACK_STEP_BYTES written, the sink starts an fdatasync in the background (one at a time), so
 * the disk writes while the restore computes instead of all at the final fsync; an error of a
 * background sync is reported by `close()`.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { BlockBuffers } from './block-buffers.ts';
import { BlockSet } from './block-set.ts';
import { readAhead } from './read-ahead.ts';
import {
  blockCountFor,
  blockLengthBytes,
  isZeroBlock,
  type Block,
  type DiskSink,
  type DiskSource,
  type ReadBlocksOptions,
} from './disk.ts';
import { CoreError, throwIfAborted } from '../core/index.ts';

export interface RawFileSourceOptions {
  readonly blockSizeBytes: number;
  /** Blocks read ahead of the consumer (default 4). */
  readonly readAhead?: number;
}

export class RawFileSource implements DiskSource {
  readonly kind = 'full' as const;
  readonly sizeBytes: number;
  readonly blockSizeBytes: number;
  readonly blocks: BlockSet;
  readonly #handle: FileHandle;
  readonly #readAhead: number;
  readonly #buffers: BlockBuffers;

  constructor(handle: FileHandle, sizeBytes: number, options: RawFileSourceOptions) {
    this.#handle = handle;
    this.sizeBytes = sizeBytes;
    this.blockSizeBytes = options.blockSizeBytes;
    this.blocks = BlockSet.all(blockCountFor(sizeBytes, options.blockSizeBytes));
    this.#readAhead = Math.max(1, options.readAhead ?? 4);
    this.#buffers = new BlockBuffers(options.blockSizeBytes);
  }

  async #read(index: number): Promise<Buffer> {
    const lengthBytes = blockLengthBytes(index, this.sizeBytes, this.blockSizeBytes);
    const data = this.#buffers.take(lengthBytes);
    let doneBytes = 0;
    while (doneBytes < lengthBytes) {
      const { bytesRead } = await this.#handle.read(
        data,
        doneBytes,
        lengthBytes - doneBytes,
        index * this.blockSizeBytes + doneBytes,
      );
      if (bytesRead === 0)
        throw new CoreError('INVALID_ARGUMENT', `file shrank while reading block ${index}`);
      doneBytes += bytesRead;
    }
    return data;
  }

  readBlocks(options: ReadBlocksOptions = {}): AsyncIterable<Block> {
    return readAhead(
      this.blocks,
      this.#readAhead,
      (index) => this.#read(index),
      options.signal,
      this.#buffers,
    );
  }

  async close(): Promise<void> {
    await this.#handle.close();
  }
}

export async function openRawFileSource(
  path: string,
  options: RawFileSourceOptions,
): Promise<RawFileSource> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    return new RawFileSource(handle, size, options);
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/** Bytes written between two background fdatasyncs of a sink. */
export const WRITEBACK_STEP_BYTES = 64 * 1024 * 1024;

export class RawFileSink implements DiskSink {
  readonly sizeBytes: number;
  readonly #handle: FileHandle;
  /** Blocks written so far (zero blocks are skipped, not written). */
  writtenBlocks = 0;
  #unsyncedBytes = 0;
  #writeback: Promise<void> | undefined;
  #writebackError: Error | undefined;

  constructor(handle: FileHandle, sizeBytes: number) {
    this.#handle = handle;
    this.sizeBytes = sizeBytes;
  }

  async writeBlock(index: number, data: Buffer, blockSizeBytes: number): Promise<void> {
    const offsetBytes = index * blockSizeBytes;
    if (offsetBytes + data.length > this.sizeBytes) {
      throw new CoreError(
        'INVALID_ARGUMENT',
        `block ${index} ends past the disk size ${this.sizeBytes}`,
      );
    }
    if (isZeroBlock(data)) return;
    let doneBytes = 0;
    while (doneBytes < data.length) {
      const { bytesWritten } = await this.#handle.write(
        data,
        doneBytes,
        data.length - doneBytes,
        offsetBytes + doneBytes,
      );
      doneBytes += bytesWritten;
    }
    this.writtenBlocks += 1;
    this.#unsyncedBytes += data.length;
    if (this.#unsyncedBytes >= WRITEBACK_STEP_BYTES && this.#writeback === undefined) {
      this.#unsyncedBytes = 0;
      this.#writeback = this.#handle
        .datasync()
        .catch((error: unknown) => {
          this.#writebackError ??= error instanceof Error ? error : new Error(String(error));
        })
        .finally(() => (this.#writeback = undefined));
    }
  }

  /** Closes without the final fsync (after a failure: nothing of the file is relied on). */
  async abandon(): Promise<void> {
    await this.#writeback;
    await this.#handle.close();
  }

  async close(): Promise<void> {
    try {
      await this.#writeback;
      if (this.#writebackError !== undefined) throw this.#writebackError;
      await this.#handle.sync();
    } finally {
      await this.#handle.close();
    }
  }
}

/**
 * Creates (or truncates; with `exclusive`, only creates) `path` as a sparse file of `sizeBytes`,
 * ready for a restore.
 */
export async function openRawFileSink(
  path: string,
  sizeBytes: number,
  options: { exclusive?: boolean } = {},
): Promise<RawFileSink> {
  const handle = await open(path, options.exclusive === true ? 'wx' : 'w');
  try {
    await handle.truncate(sizeBytes);
    return new RawFileSink(handle, sizeBytes);
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/**
 * Writes a full source as a sparse raw file at `path` (zero blocks stay holes, each block is
 * released once written, the file is fsynced); returns the number of blocks written.
 */
export async function writeRawFile(
  source: DiskSource,
  path: string,
  options: { signal?: AbortSignal; exclusive?: boolean } = {},
): Promise<number> {
  const { signal } = options;
  const sink = await openRawFileSink(
    path,
    source.sizeBytes,
    options.exclusive === undefined ? {} : { exclusive: options.exclusive },
  );
  try {
    for await (const block of source.readBlocks(signal === undefined ? {} : { signal })) {
      throwIfAborted(signal);
      await sink.writeBlock(block.index, block.data, source.blockSizeBytes);
      block.release?.();
    }
  } catch (error) {
    await sink.abandon().catch(() => undefined);
    throw error;
  }
  await sink.close();
  return sink.writtenBlocks;
}
