/**
 * The Disk seam: the one shape of everything that carries disk data (architecture page, "the data
 * path is a stream of blocks"). A source has a virtual size, a block size, the set of block indexes
 * it carries, and an async iterable of `{index, data}` in ascending index order.
 *
 * - kind 'full': blocks not in `blocks` read as zeros (holes). Present blocks may still be zero.
 * - kind 'delta': `blocks` are the blocks changed since the base; the others are unchanged.
 *
 * Each yielded `data` buffer belongs to the consumer (the producer never reuses it), except the
 * shared read-only zero block from `zeroBlock()`, which consumers must not mutate, and except
 * after `release()`: a consumer done with a block may hand its buffer back (block-buffers.ts), and
 * must not touch `data` after that call; the producer may then reuse it for a later block. Calling
 * it is optional (an unreleased buffer is garbage-collected) and only the first call counts. Every block is
 * `blockSizeBytes` long except the last block of the disk, which may be shorter (partial block).
 * Back-pressure: a producer reads ahead only as far as its own bounded window.
 */
import type { BlockSet } from './block-set.ts';

export interface Block {
  readonly index: number;
  readonly data: Buffer;
  /** Hands `data` back to its producer for reuse (optional; see the module comment). */
  readonly release?: () => void;
}

export type DiskKind = 'full' | 'delta';

export interface ReadBlocksOptions {
  readonly signal?: AbortSignal;
}

export interface DiskSource {
  readonly sizeBytes: number;
  readonly blockSizeBytes: number;
  readonly kind: DiskKind;
  /** Present (full) or changed (delta) blocks; known before any data is read. */
  readonly blocks: BlockSet;
  /** Yields every block of `blocks`, ascending. May be called once unless the source says otherwise. */
  readBlocks(options?: ReadBlocksOptions): AsyncIterable<Block>;
  close(): Promise<void>;
}

/** A writable disk: the target of a restore (a file, an NBD export, a VHD being written). */
export interface DiskSink {
  readonly sizeBytes: number;
  writeBlock(index: number, data: Buffer, blockSizeBytes: number): Promise<void>;
  /** Makes everything written durable, then releases resources. */
  close(): Promise<void>;
}

export function blockCountFor(sizeBytes: number, blockSizeBytes: number): number {
  return Math.ceil(sizeBytes / blockSizeBytes);
}

/** Byte length of block `index` (the last one may be partial). */
export function blockLengthBytes(index: number, sizeBytes: number, blockSizeBytes: number): number {
  return Math.min(blockSizeBytes, sizeBytes - index * blockSizeBytes);
}

const zeroBlocks = new Map<number, Buffer>();

/** A shared all-zero buffer of the given length. Read-only by convention. */
export function zeroBlock(lengthBytes: number): Buffer {
  let block = zeroBlocks.get(lengthBytes);
  if (block === undefined) {
    block = Buffer.alloc(lengthBytes);
    zeroBlocks.set(lengthBytes, block);
  }
  return block;
}

export function isZeroBlock(data: Buffer): boolean {
  return data.equals(zeroBlock(data.length));
}
