/**
 * Stall detection for one NBD connection: when requests are in flight and no byte arrived for
 * `timeoutMs`, `onStall` runs once. The timer ticks at a quarter of the timeout (10 ms..1 s) and
 * never keeps the process alive.
 */
export class StallWatch {
  readonly timeoutMs: number;
  readonly #timer: NodeJS.Timeout;
  /** Reads since the last tick, and when the connection last made progress. */
  #progress = 0;
  #stalledSinceMs = Date.now();

  constructor(timeoutMs: number, busy: () => boolean, onStall: () => void) {
    this.timeoutMs = timeoutMs;
    const periodMs = Math.max(10, Math.min(1000, Math.floor(timeoutMs / 4)));
    this.#timer = setInterval(() => {
      const nowMs = Date.now();
      if (!busy() || this.#progress > 0) {
        this.#progress = 0;
        this.#stalledSinceMs = nowMs;
        return;
      }
      if (nowMs - this.#stalledSinceMs > timeoutMs) onStall();
    }, periodMs);
    this.#timer.unref();
  }

  /** Bytes arrived. */
  progressed(): void {
    this.#progress += 1;
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
