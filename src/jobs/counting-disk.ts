/** A DiskSource wrapper that counts what passes and reports progress at most every `everyMs`. */
import type { Block, DiskSource, ReadBlocksOptions } from '../disk/index.ts';

export interface ReadCounters {
  bytesRead: number;
  blocksRead: number;
}

export function countDisk(
  source: DiskSource,
  counters: ReadCounters,
  onProgress: () => void,
  everyMs = 250,
): DiskSource {
  return {
    sizeBytes: source.sizeBytes,
    blockSizeBytes: source.blockSizeBytes,
    kind: source.kind,
    blocks: source.blocks,
    async *readBlocks(options?: ReadBlocksOptions): AsyncIterable<Block> {
      let lastMs = 0;
      for await (const block of source.readBlocks(options)) {
        counters.bytesRead += block.data.length;
        counters.blocksRead += 1;
        const nowMs = Date.now();
        if (nowMs - lastMs >= everyMs) {
          lastMs = nowMs;
          onProgress();
        }
        yield block;
      }
      onProgress();
    },
    close: () => source.close(),
  };
}
