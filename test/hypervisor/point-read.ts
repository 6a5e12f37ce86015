/** Reading what a backup point yields, and the expected changed blocks of a set of writes. */
import type { PointDisk } from '../../src/hypervisor/index.ts';

export interface ReadResult {
  readonly kind: 'full' | 'delta';
  readonly blocks: number[];
  readonly data: Map<number, Buffer>;
  readonly reason?: string;
}

export async function readPointDisk(disk: PointDisk): Promise<ReadResult> {
  const opened = await disk.openSource();
  const data = new Map<number, Buffer>();
  try {
    for await (const block of opened.source.readBlocks()) data.set(block.index, block.data);
  } finally {
    await opened.source.close();
  }
  return {
    kind: opened.source.kind,
    blocks: opened.source.blocks.toArray(),
    data,
    ...(opened.fullReason === undefined ? {} : { reason: opened.fullReason.code }),
  };
}

/** Block indexes (at blockSizeBytes) touched by writes rounded out to the granularity. */
export function expectedBlocks(
  writes: readonly (readonly [number, number])[],
  granularityBytes: number,
  blockSizeBytes: number,
): number[] {
  const set = new Set<number>();
  for (const [offset, length] of writes) {
    const start = Math.floor(offset / granularityBytes) * granularityBytes;
    const end = Math.ceil((offset + length) / granularityBytes) * granularityBytes;
    for (let b = Math.floor(start / blockSizeBytes); b < Math.ceil(end / blockSizeBytes); b += 1)
      set.add(b);
  }
  return [...set].sort((a, b) => a - b);
}

/** Applies what a point yields onto `base` (zeros for a key) and returns the image. */
export function applyRead(base: Buffer, read: ReadResult, blockSizeBytes: number): Buffer {
  const image = read.kind === 'full' ? Buffer.alloc(base.length) : Buffer.from(base);
  for (const [index, data] of read.data) data.copy(image, index * blockSizeBytes);
  return image;
}
