/**
 * Stream exports as DiskSources at the repository's block size: a VHD stream's 2 MiB blocks
 * regrouped (split into smaller blocks; merged into bigger ones for full sources only, a delta
 * cannot be merged without the base), and a raw export read sequentially (every block listed).
 */
import {
  BlockSet,
  blockCountFor,
  blockLengthBytes,
  type Block,
  type DiskKind,
  type DiskSource,
  type ReadBlocksOptions,
} from '../../disk/index.ts';
import { throwIfAborted } from '../../core/index.ts';
import { XapiError } from './errors.ts';

/** Whether a source of `fromBytes` blocks and kind `kind` can be regrouped to `toBytes` blocks. */
export function canRegroup(kind: DiskKind, fromBytes: number, toBytes: number): boolean {
  if (fromBytes === toBytes) return true;
  if (toBytes < fromBytes) return fromBytes % toBytes === 0;
  return kind === 'full' && toBytes % fromBytes === 0;
}

/** Blocks of `toBytes` touched by the blocks of `fromBytes` listed in `from`. */
export function regroupBlockSet(
  from: Iterable<number>,
  sizeBytes: number,
  fromBytes: number,
  toBytes: number,
): BlockSet {
  const set = new BlockSet(blockCountFor(sizeBytes, toBytes));
  for (const index of from) set.addByteRange(index * fromBytes, fromBytes, toBytes);
  return set;
}

export function regroupDisk(source: DiskSource, blockSizeBytes: number): DiskSource {
  const fromBytes = source.blockSizeBytes;
  if (fromBytes === blockSizeBytes) return source;
  if (!canRegroup(source.kind, fromBytes, blockSizeBytes)) {
    throw new XapiError(
      'XAPI_UNSUPPORTED',
      `a ${source.kind} stream of ${fromBytes}-byte blocks cannot give ${blockSizeBytes}-byte blocks`,
      { details: { field: 'blockSizeBytes', fromBytes, blockSizeBytes } },
    );
  }
  const { sizeBytes } = source;
  const blocks = regroupBlockSet(source.blocks, sizeBytes, fromBytes, blockSizeBytes);
  const split = blockSizeBytes < fromBytes;
  return {
    sizeBytes,
    blockSizeBytes,
    kind: source.kind,
    blocks,
    readBlocks: async function* (options: ReadBlocksOptions = {}): AsyncIterable<Block> {
      let pending: { index: number; data: Buffer } | undefined;
      for await (const block of source.readBlocks(options)) {
        const startBytes = block.index * fromBytes;
        if (split) {
          for (let offset = 0; offset < block.data.length; offset += blockSizeBytes) {
            const index = (startBytes + offset) / blockSizeBytes;
            const lengthBytes = blockLengthBytes(index, sizeBytes, blockSizeBytes);
            yield { index, data: block.data.subarray(offset, offset + lengthBytes) };
          }
          continue;
        }
        const index = Math.floor(startBytes / blockSizeBytes);
        if (pending !== undefined && pending.index !== index) {
          yield pending;
          pending = undefined;
        }
        pending ??= {
          index,
          data: Buffer.alloc(blockLengthBytes(index, sizeBytes, blockSizeBytes)),
        };
        block.data.copy(pending.data, startBytes - index * blockSizeBytes);
      }
      if (pending !== undefined) yield pending;
    },
    close: () => source.close(),
  };
}

/** A raw export (every byte of the disk, in order) as a full source of `blockSizeBytes` blocks. */
export function rawStreamDisk(
  input: AsyncIterable<Buffer>,
  sizeBytes: number,
  blockSizeBytes: number,
  close: () => Promise<void>,
): DiskSource {
  const count = blockCountFor(sizeBytes, blockSizeBytes);
  return {
    sizeBytes,
    blockSizeBytes,
    kind: 'full',
    blocks: BlockSet.all(count),
    readBlocks: async function* (options: ReadBlocksOptions = {}): AsyncIterable<Block> {
      let index = 0;
      let current = Buffer.alloc(blockLengthBytes(0, sizeBytes, blockSizeBytes));
      let filled = 0;
      for await (const chunk of input) {
        throwIfAborted(options.signal);
        let offset = 0;
        while (offset < chunk.length && index < count) {
          const copied = chunk.copy(current, filled, offset);
          offset += copied;
          filled += copied;
          if (filled === current.length) {
            yield { index, data: current };
            index += 1;
            filled = 0;
            if (index < count)
              current = Buffer.alloc(blockLengthBytes(index, sizeBytes, blockSizeBytes));
          }
        }
      }
      if (index < count) {
        throw new XapiError(
          'XAPI_STREAM_TRUNCATED',
          `the raw export ended at block ${index} of ${count}`,
          { retryable: true, details: { blockIndex: index } },
        );
      }
    },
    close,
  };
}
