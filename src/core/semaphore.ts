/** A counting semaphore with FIFO waiters; `weight` lets callers reserve bytes as well as slots. */
import { CoreError } from './errors.ts';

export class Semaphore {
  #available: number;
  readonly capacity: number;
  readonly #waiters: { weight: number; resolve: () => void }[] = [];

  constructor(capacity: number) {
    if (!(capacity > 0))
      throw new CoreError('INVALID_ARGUMENT', `semaphore capacity ${capacity} must be > 0`);
    this.capacity = capacity;
    this.#available = capacity;
  }

  get available(): number {
    return this.#available;
  }

  /** Waits for `weight` units (clamped to the capacity, so a large request cannot deadlock). */
  async acquire(weight = 1): Promise<() => void> {
    const units = Math.min(weight, this.capacity);
    if (this.#waiters.length === 0 && this.#available >= units) {
      this.#available -= units;
    } else {
      await new Promise<void>((resolve) => this.#waiters.push({ weight: units, resolve }));
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#available += units;
      this.#drain();
    };
  }

  async use<T>(fn: () => Promise<T>, weight = 1): Promise<T> {
    const release = await this.acquire(weight);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  #drain(): void {
    for (;;) {
      const next = this.#waiters[0];
      if (next === undefined || next.weight > this.#available) return;
      this.#waiters.shift();
      this.#available -= next.weight;
      next.resolve();
    }
  }
}
