/**
 * A restore point's disk as a DiskSource (kind 'full'): the fold of its chain, read with a bounded
 * read-ahead window, every block's hash checked; plus random access to one block.
 */
import {
  BlockBuffers,
  readAhead,
  zeroBlock,
  type Block,
  type BlockSet,
  type DiskSource,
  type ReadBlocksOptions,
} from '../disk/index.ts';
import type { FoldedDisk } from './folded-disk.ts';
import { findDisk, type Repository } from './repository.ts';

export interface OpenPointDiskOptions {
  /**
   * Blocks fetched (and decoded) ahead of the consumer (default: the store's concurrency, at most
   * 8; more buys little on 2 cores and costs two buffers per block, docs/design.md §4.11).
   */
  readonly readAhead?: number;
}

export class PointDisk implements DiskSource {
  readonly kind = 'full' as const;
  readonly sizeBytes: number;
  readonly blockSizeBytes: number;
  readonly blocks: BlockSet;
  readonly folded: FoldedDisk;
  readonly #repository: Repository;
  readonly #vmId: string;
  readonly #chainId: string;
  readonly #readAhead: number;
  readonly #buffers: BlockBuffers;

  constructor(
    repository: Repository,
    vmId: string,
    chainId: string,
    folded: FoldedDisk,
    readAhead: number,
  ) {
    this.#repository = repository;
    this.#vmId = vmId;
    this.#chainId = chainId;
    this.folded = folded;
    this.sizeBytes = folded.sizeBytes;
    this.blockSizeBytes = folded.blockSizeBytes;
    this.blocks = folded.present;
    this.#readAhead = Math.max(1, readAhead);
    this.#buffers = new BlockBuffers(folded.blockSizeBytes);
  }

  /** Random access: block `blockIndex` (zeros for a hole), hash checked. */
  readBlock(blockIndex: number): Promise<Buffer> {
    return this.#read(blockIndex, undefined);
  }

  async #read(blockIndex: number, buffers: BlockBuffers | undefined): Promise<Buffer> {
    const lengthBytes = this.folded.lengthOf(blockIndex);
    const hash = this.folded.hashOf(blockIndex);
    if (hash === undefined) return zeroBlock(lengthBytes);
    const pool = this.#repository.blockPoolFor(this.sizeBytes);
    return this.#repository.readBlockObject(
      this.#vmId,
      this.#chainId,
      Buffer.from(hash),
      lengthBytes,
      pool,
      pool === undefined ? undefined : buffers?.take(lengthBytes),
    );
  }

  /** Blocks in order; each one's `release()` lets the next reads reuse its buffer. */
  readBlocks(options: ReadBlocksOptions = {}): AsyncIterable<Block> {
    return readAhead(
      this.blocks,
      this.#readAhead,
      (index) => this.#read(index, this.#buffers),
      options.signal,
      this.#buffers,
    );
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

export async function openPointDisk(
  repository: Repository,
  vmId: string,
  pointId: string,
  diskId: string,
  options: OpenPointDiskOptions = {},
): Promise<PointDisk> {
  const manifest = await repository.readPoint(vmId, pointId);
  const disk = findDisk(manifest, diskId);
  const folded = await repository.foldDisk(vmId, disk);
  const readAhead = options.readAhead ?? Math.min(8, repository.store.properties.maxConcurrency);
  return new PointDisk(repository, vmId, disk.chainId, folded, readAhead);
}
