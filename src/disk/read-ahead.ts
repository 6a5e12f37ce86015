/**
 * Ordered read-ahead: yields `{index, data}` for each index in order, with up to `depth` reads
 * started ahead of the consumer (random-access sources: files, repository blocks). Reads still in
 * flight when the consumer stops are awaited, so no rejection goes unobserved. With `buffers`,
 * each block's `release()` gives its buffer back there (for sources that take buffers from it).
 */
import { throwIfAborted } from '../core/index.ts';
import type { BlockBuffers } from './block-buffers.ts';
import type { Block } from './disk.ts';

export async function* readAhead(
  indexes: Iterable<number>,
  depth: number,
  read: (index: number) => Promise<Buffer>,
  signal?: AbortSignal,
  buffers?: BlockBuffers,
): AsyncGenerator<Block> {
  const pending: { index: number; data: Promise<Buffer> }[] = [];
  const iterator = indexes[Symbol.iterator]();
  const fill = (): void => {
    while (pending.length < Math.max(1, depth)) {
      const next = iterator.next();
      if (next.done === true) return;
      const data = read(next.value);
      data.catch(() => undefined); // observed when awaited below
      pending.push({ index: next.value, data });
    }
  };
  try {
    fill();
    for (;;) {
      const head = pending.shift();
      if (head === undefined) return;
      throwIfAborted(signal);
      const data = await head.data;
      fill();
      yield buffers === undefined ? { index: head.index, data } : buffers.block(head.index, data);
    }
  } finally {
    await Promise.allSettled(pending.map((entry) => entry.data));
  }
}
