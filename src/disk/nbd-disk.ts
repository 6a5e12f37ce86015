/**
 * NbdDisk: an NBD export as a DiskSource (design §2.6). The block set comes from block status
 * before any data is read: in 'full' mode the blocks holding anything but zeros per
 * `base:allocation`; in 'delta' mode the blocks touched by a dirty extent of
 * `qemu:dirty-bitmap:NAME`. Blocks are read over N connections with a bounded read-ahead window and
 * yielded in index order; memory stays within `maxInFlightBytes` whatever the disk size.
 */
import {
  NBD_CONTEXT_BASE_ALLOCATION,
  NBD_CONTEXT_DIRTY_BITMAP_PREFIX,
  NBD_STATE_DIRTY,
  NBD_STATE_ZERO,
  NbdError,
  iterateNbdExtents,
  openNbdPool,
  type NbdPool,
  type NbdTlsOptions,
} from '../nbd/index.ts';
import { CoreError, MiB } from '../core/index.ts';
import { BlockBuffers } from './block-buffers.ts';
import { BlockSet } from './block-set.ts';
import {
  blockCountFor,
  blockLengthBytes,
  type Block,
  type DiskKind,
  type DiskSource,
  type ReadBlocksOptions,
} from './disk.ts';

export interface NbdTransportInfo {
  readonly protocol: 'nbd';
  readonly connections: number;
  readonly tls: boolean;
  /** The export's URI, without secrets. */
  readonly uri: string;
  readonly exportSizeBytes: number;
  /** Whether several connections were allowed (CAN_MULTI_CONN, or a read-only export). */
  readonly multiConn: boolean;
}

export interface OpenNbdDiskOptions {
  /** NBD URI: nbd://, nbds://, nbd+unix://, nbds+unix:// (?socket=, ?tls-certificates=DIR). */
  readonly uri: string;
  /** The repository's block size, e.g. 2 MiB. */
  readonly blockSizeBytes: number;
  readonly mode:
    { readonly kind: 'full' } | { readonly kind: 'delta'; readonly dirtyBitmap: string };
  /** Default 1; capped to 1 unless the export allows several (multi-conn rule). */
  readonly connections?: number;
  readonly tls?: NbdTlsOptions;
  /** Read-ahead bound, default 64 MiB. */
  readonly maxInFlightBytes?: number;
  readonly signal?: AbortSignal;
}

export interface NbdDisk extends DiskSource {
  readonly transport: NbdTransportInfo;
}

export const DEFAULT_NBD_DISK_IN_FLIGHT_BYTES = 64 * MiB;

class NbdDiskSource implements NbdDisk {
  readonly sizeBytes: number;
  readonly blockSizeBytes: number;
  readonly kind: DiskKind;
  readonly blocks: BlockSet;
  readonly transport: NbdTransportInfo;
  readonly #pool: NbdPool;
  readonly #windowBytes: number;
  readonly #buffers: BlockBuffers;
  readonly #signal: AbortSignal | undefined;

  constructor(pool: NbdPool, kind: DiskKind, blocks: BlockSet, options: OpenNbdDiskOptions) {
    this.#pool = pool;
    this.kind = kind;
    this.blocks = blocks;
    this.sizeBytes = pool.info.sizeBytes;
    this.blockSizeBytes = options.blockSizeBytes;
    this.#windowBytes = Math.max(
      options.maxInFlightBytes ?? DEFAULT_NBD_DISK_IN_FLIGHT_BYTES,
      options.blockSizeBytes,
    );
    // Enough free buffers to refill the whole read-ahead window without allocating. Private
    // memory: the client copies reply bytes into blocks, which is slow into shared memory.
    this.#buffers = new BlockBuffers(
      options.blockSizeBytes,
      Math.ceil(this.#windowBytes / options.blockSizeBytes) + 4,
      'private',
    );
    this.#signal = options.signal;
    this.transport = {
      protocol: 'nbd',
      connections: pool.connections,
      tls: pool.info.tls,
      uri: pool.uri,
      exportSizeBytes: pool.info.sizeBytes,
      multiConn: pool.multiConn,
    };
  }

  async *readBlocks(options: ReadBlocksOptions = {}): AsyncIterable<Block> {
    const signals = [options.signal, this.#signal].filter((s) => s !== undefined);
    const queue: { index: number; lengthBytes: number; data: Promise<Buffer> }[] = [];
    let queuedBytes = 0;
    const indexes = this.blocks[Symbol.iterator]();
    let next = indexes.next();
    try {
      for (;;) {
        // Fill the read-ahead window (at least one block).
        while (next.done !== true) {
          const index = next.value;
          const lengthBytes = blockLengthBytes(index, this.sizeBytes, this.blockSizeBytes);
          if (queue.length > 0 && queuedBytes + lengthBytes > this.#windowBytes) break;
          const data = this.#pool.read(
            index * this.blockSizeBytes,
            lengthBytes,
            this.#buffers.take(lengthBytes),
          );
          data.catch(() => undefined); // awaited in order below
          queue.push({ index, lengthBytes, data });
          queuedBytes += lengthBytes;
          next = indexes.next();
        }
        const head = queue.shift();
        if (head === undefined) return;
        for (const signal of signals) {
          if (signal.aborted)
            throw new CoreError('CANCELLED', 'NBD read cancelled', { cause: signal.reason });
        }
        const data = await head.data;
        queuedBytes -= head.lengthBytes;
        yield this.#buffers.block(head.index, data);
      }
    } finally {
      for (const pending of queue) pending.data.catch(() => undefined);
    }
  }

  close(): Promise<void> {
    return this.#pool.close();
  }
}

export async function openNbdDisk(options: OpenNbdDiskOptions): Promise<NbdDisk> {
  if (!Number.isInteger(options.blockSizeBytes) || options.blockSizeBytes <= 0)
    throw new CoreError('INVALID_ARGUMENT', `block size ${options.blockSizeBytes} is not positive`);
  const context =
    options.mode.kind === 'full'
      ? NBD_CONTEXT_BASE_ALLOCATION
      : `${NBD_CONTEXT_DIRTY_BITMAP_PREFIX}${options.mode.dirtyBitmap}`;
  const poolOptions = {
    uri: options.uri,
    access: 'read' as const,
    ...(options.connections === undefined ? {} : { connections: options.connections }),
    ...(options.tls === undefined ? {} : { tls: options.tls }),
    maxInFlightBytes: options.maxInFlightBytes ?? DEFAULT_NBD_DISK_IN_FLIGHT_BYTES,
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  };
  let pool: NbdPool;
  let mapped = true;
  try {
    pool = await openNbdPool({ ...poolOptions, metaContexts: [context] });
  } catch (error) {
    // A full read works without block status (every block is read); a delta cannot.
    const noBlockStatus =
      error instanceof NbdError &&
      (error.code === 'NBD_META_CONTEXT_UNAVAILABLE' || error.code === 'NBD_NOT_SUPPORTED');
    if (options.mode.kind !== 'full' || !noBlockStatus) throw error;
    pool = await openNbdPool(poolOptions);
    mapped = false;
  }
  try {
    const { sizeBytes, blockSizes } = pool.info;
    if (options.blockSizeBytes % blockSizes.minimumBytes !== 0) {
      throw new CoreError(
        'INVALID_ARGUMENT',
        `block size ${options.blockSizeBytes} is not a multiple of the export's minimum block ${blockSizes.minimumBytes}`,
      );
    }
    const blockCount = blockCountFor(sizeBytes, options.blockSizeBytes);
    let blocks: BlockSet;
    if (!mapped) {
      blocks = BlockSet.all(blockCount);
    } else {
      blocks = new BlockSet(blockCount);
      const wanted = options.mode.kind === 'full' ? NBD_STATE_ZERO : NBD_STATE_DIRTY;
      const extents = iterateNbdExtents(pool, context, {
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      });
      for await (const extent of extents) {
        const selected =
          options.mode.kind === 'full'
            ? (extent.flags & wanted) === 0
            : (extent.flags & wanted) !== 0;
        if (selected)
          blocks.addByteRange(extent.offsetBytes, extent.lengthBytes, options.blockSizeBytes);
      }
    }
    return new NbdDiskSource(pool, options.mode.kind, blocks, options);
  } catch (error) {
    await pool.close();
    throw error;
  }
}
