/**
 * A DiskSource wrapper that limits the read rate (Xen Orchestra's `maxExportRate`): a token
 * bucket over bytes, refilled continuously, with a burst of one second. Time comes from a Clock.
 */
import { systemClock, type Clock } from '../core/index.ts';
import type { Block, DiskSource, ReadBlocksOptions } from './disk.ts';

export class RateLimiter {
  readonly #bytesPerSecond: number;
  readonly #clock: Clock;
  #tokens: number;
  #lastMs: number;

  constructor(bytesPerSecond: number, clock: Clock = systemClock) {
    this.#bytesPerSecond = bytesPerSecond;
    this.#clock = clock;
    this.#tokens = bytesPerSecond;
    this.#lastMs = clock.nowMs();
  }

  /** Waits until `bytes` may pass. Shared by every disk of a run: the limit is per run. */
  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    const nowMs = this.#clock.nowMs();
    this.#tokens = Math.min(
      this.#bytesPerSecond,
      this.#tokens + ((nowMs - this.#lastMs) * this.#bytesPerSecond) / 1000,
    );
    this.#lastMs = nowMs;
    this.#tokens -= bytes;
    if (this.#tokens < 0) {
      await this.#clock.sleep((-this.#tokens * 1000) / this.#bytesPerSecond, signal);
    }
  }
}

export function throttleDisk(source: DiskSource, limiter: RateLimiter): DiskSource {
  return {
    sizeBytes: source.sizeBytes,
    blockSizeBytes: source.blockSizeBytes,
    kind: source.kind,
    blocks: source.blocks,
    async *readBlocks(options?: ReadBlocksOptions): AsyncIterable<Block> {
      for await (const block of source.readBlocks(options)) {
        await limiter.take(block.data.length, options?.signal);
        yield block;
      }
    },
    close: () => source.close(),
  };
}
