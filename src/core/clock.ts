/** Time as a seam: production uses the system clock, tests a manual one. */

export interface Clock {
  /** Milliseconds since the Unix epoch. */
  nowMs(): number;
  /** Resolves after `delayMs`, or rejects when `signal` aborts. */
  sleep(delayMs: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  nowMs: () => Date.now(),
  sleep: (delayMs, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted === true) {
        reject(signal.reason as Error);
        return;
      }
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(signal?.reason as Error);
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, delayMs);
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
};

/** A clock that only moves when told to; sleepers wake when their time is reached. */
export class ManualClock implements Clock {
  #nowMs: number;
  readonly #sleepers: { wakeMs: number; resolve: () => void }[] = [];

  constructor(startMs = 0) {
    this.#nowMs = startMs;
  }

  nowMs(): number {
    return this.#nowMs;
  }

  sleep(delayMs: number): Promise<void> {
    return new Promise((resolve) => {
      this.#sleepers.push({ wakeMs: this.#nowMs + delayMs, resolve });
    });
  }

  advance(deltaMs: number): void {
    this.#nowMs += deltaMs;
    for (let i = this.#sleepers.length - 1; i >= 0; i -= 1) {
      const sleeper = this.#sleepers[i];
      if (sleeper !== undefined && sleeper.wakeMs <= this.#nowMs) {
        this.#sleepers.splice(i, 1);
        sleeper.resolve();
      }
    }
  }
}
