/** An in-memory DiskSource for tests and engine work: a map of block index to data. */
import { BlockSet } from './block-set.ts';
import {
  blockCountFor,
  blockLengthBytes,
  type Block,
  type DiskKind,
  type DiskSource,
  type ReadBlocksOptions,
} from './disk.ts';
import { CoreError, throwIfAborted } from '../core/index.ts';

export class MemoryDisk implements DiskSource {
  readonly sizeBytes: number;
  readonly blockSizeBytes: number;
  readonly kind: DiskKind;
  readonly blocks: BlockSet;
  readonly #data: ReadonlyMap<number, Buffer>;

  constructor(options: {
    sizeBytes: number;
    blockSizeBytes: number;
    kind?: DiskKind;
    data: ReadonlyMap<number, Buffer>;
  }) {
    this.sizeBytes = options.sizeBytes;
    this.blockSizeBytes = options.blockSizeBytes;
    this.kind = options.kind ?? 'full';
    this.#data = options.data;
    this.blocks = new BlockSet(blockCountFor(this.sizeBytes, this.blockSizeBytes));
    for (const [index, data] of options.data) {
      const expected = blockLengthBytes(index, this.sizeBytes, this.blockSizeBytes);
      if (data.length !== expected) {
        throw new CoreError(
          'INVALID_ARGUMENT',
          `block ${index} is ${data.length} bytes, expected ${expected}`,
        );
      }
      this.blocks.add(index);
    }
  }

  async *readBlocks(options: ReadBlocksOptions = {}): AsyncIterable<Block> {
    for (const index of this.blocks) {
      throwIfAborted(options.signal); // like every source: a cancelled read stops with CANCELLED
      const data = this.#data.get(index);
      if (data !== undefined) yield { index, data: Buffer.from(data) };
    }
    await Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
