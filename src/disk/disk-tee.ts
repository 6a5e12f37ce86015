/**
 * Fans one DiskSource out to several consumers that read it at the same time (one disk read,
 * written to several remotes). The slowest consumer sets the pace: the source is read at most
 * `windowBlocks` blocks ahead of it. A consumer that stops early (error, break) is detached and no
 * longer holds the others back; an error of the source reaches every consumer. The views share
 * block buffers: consumers must treat them as read-only. A block goes back to the source
 * (`release()`) only once every consumer released it; one that never does keeps it from reuse.
 */
import { CoreError } from '../core/index.ts';
import type { Block, DiskSource, ReadBlocksOptions } from './disk.ts';

interface Shared {
  readonly block: Block;
  /** Consumers yet to release the block. */
  remaining: number;
}

interface Consumer {
  cursor: number;
  active: boolean;
}

export class DiskTee {
  readonly views: readonly DiskSource[];
  readonly #source: DiskSource;
  readonly #windowBlocks: number;
  readonly #consumers: Consumer[] = [];
  readonly #buffer: Shared[] = [];
  #bufferStart = 0;
  #iterator: AsyncIterator<Block> | undefined;
  #fetching: Promise<void> | undefined;
  #done = false;
  #error: Error | undefined;
  #waiters: (() => void)[] = [];

  constructor(
    source: DiskSource,
    consumerCount: number,
    options: { windowBlocks?: number; signal?: AbortSignal } = {},
  ) {
    if (consumerCount < 1)
      throw new CoreError('INVALID_ARGUMENT', 'a tee needs at least one consumer');
    this.#source = source;
    this.#windowBlocks = Math.max(1, options.windowBlocks ?? 4);
    const signal = options.signal;
    const views: DiskSource[] = [];
    for (let i = 0; i < consumerCount; i += 1) {
      const consumer: Consumer = { cursor: 0, active: true };
      this.#consumers.push(consumer);
      views.push({
        sizeBytes: source.sizeBytes,
        blockSizeBytes: source.blockSizeBytes,
        kind: source.kind,
        blocks: source.blocks,
        readBlocks: (_options?: ReadBlocksOptions) => this.#read(consumer, signal),
        close: () => {
          this.#detach(consumer);
          return Promise.resolve();
        },
      });
    }
    this.views = views;
  }

  /** Closes the underlying source (after every view is done). */
  async close(): Promise<void> {
    for (const consumer of this.#consumers) consumer.active = false;
    await this.#iterator?.return?.();
    await this.#source.close();
  }

  async *#read(consumer: Consumer, signal: AbortSignal | undefined): AsyncGenerator<Block> {
    try {
      for (;;) {
        const block = await this.#next(consumer, signal);
        if (block === undefined) return;
        yield block;
      }
    } finally {
      this.#detach(consumer);
    }
  }

  #detach(consumer: Consumer): void {
    if (!consumer.active) return;
    consumer.active = false;
    this.#trim();
    this.#notify();
  }

  #minCursor(): number {
    let min = Number.POSITIVE_INFINITY;
    for (const c of this.#consumers) if (c.active && c.cursor < min) min = c.cursor;
    return min;
  }

  #trim(): void {
    const min = Math.min(this.#minCursor(), this.#bufferStart + this.#buffer.length);
    if (min > this.#bufferStart) {
      this.#buffer.splice(0, min - this.#bufferStart);
      this.#bufferStart = min;
    }
  }

  #notify(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  async #next(consumer: Consumer, signal: AbortSignal | undefined): Promise<Block | undefined> {
    for (;;) {
      if (signal?.aborted === true)
        throw new CoreError('CANCELLED', 'read cancelled', { cause: signal.reason });
      const position = consumer.cursor - this.#bufferStart;
      const shared = this.#buffer[position];
      if (shared !== undefined) {
        consumer.cursor += 1;
        this.#trim();
        this.#notify();
        return this.#viewOf(shared);
      }
      if (this.#error !== undefined) throw this.#error;
      if (this.#done) return undefined;
      if (consumer.cursor - this.#minCursor() >= this.#windowBlocks) {
        await new Promise<void>((resolve) => this.#waiters.push(resolve));
        continue;
      }
      this.#fetching ??= this.#fetch();
      await this.#fetching;
    }
  }

  #viewOf(shared: Shared): Block {
    const { block } = shared;
    const release = block.release;
    if (release === undefined) return block;
    let released = false;
    return {
      index: block.index,
      data: block.data,
      release: () => {
        if (released) return;
        released = true;
        shared.remaining -= 1;
        if (shared.remaining === 0) release();
      },
    };
  }

  async #fetch(): Promise<void> {
    try {
      this.#iterator ??= this.#source.readBlocks()[Symbol.asyncIterator]();
      const result = await this.#iterator.next();
      if (result.done === true) this.#done = true;
      else this.#buffer.push({ block: result.value, remaining: this.#consumers.length });
    } catch (error) {
      this.#error = error instanceof Error ? error : new Error(String(error));
    } finally {
      this.#fetching = undefined;
      this.#notify();
    }
  }
}
