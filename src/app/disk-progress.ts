/** Progress of a DiskSource being read through (restore, export): blocks and bytes of its totals. */
import { PROGRESS_EVERY_MS, type ProgressListener } from '../core/index.ts';
import { blockLengthBytes, type DiskSource } from '../disk/index.ts';
import { countDisk } from '../jobs/index.ts';

/** Bytes of the blocks a source yields (the last block of a disk may be short). */
export function sourceBytes(source: DiskSource): number {
  const lastIndex = source.blocks.blockCount - 1;
  let totalBytes = source.blocks.count * source.blockSizeBytes;
  if (lastIndex >= 0 && source.blocks.has(lastIndex)) {
    totalBytes -=
      source.blockSizeBytes - blockLengthBytes(lastIndex, source.sizeBytes, source.blockSizeBytes);
  }
  return totalBytes;
}

/**
 * `source` reporting as its blocks are read: phase `phase`, item `item`, at most ten reports a
 * second, the first at 0 now and the last when the read ends. Without a listener, `source` itself.
 */
export function reportingDisk(
  source: DiskSource,
  onProgress: ProgressListener | undefined,
  phase: string,
  item: string,
): DiskSource {
  if (onProgress === undefined) return source;
  const counters = { bytesRead: 0, blocksRead: 0 };
  const totalBytes = sourceBytes(source);
  const totalObjects = source.blocks.count;
  const report = (): void =>
    onProgress({
      phase,
      item,
      doneBytes: counters.bytesRead,
      totalBytes,
      doneObjects: counters.blocksRead,
      totalObjects,
    });
  report();
  return countDisk(source, counters, report, PROGRESS_EVERY_MS);
}
