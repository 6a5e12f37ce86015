/**
 * A run queue with a global concurrency limit and per-resource limits (a remote, a hypervisor
 * host): a run starts when a global slot and a slot of every resource it uses are free. Waiting
 * runs start in arrival order among those whose resources are free.
 */

export interface QueuedRun {
  readonly id: string;
  /** Resource keys, e.g. "remote:nas", "host:xcp1". */
  readonly resources: readonly string[];
  readonly start: () => Promise<void>;
}

export class RunQueue {
  readonly #globalLimit: number;
  readonly #resourceLimit: (resource: string) => number;
  readonly #waiting: QueuedRun[] = [];
  readonly #active = new Map<string, QueuedRun>();
  readonly #inUse = new Map<string, number>();
  readonly #idle: (() => void)[] = [];

  constructor(options: { globalLimit: number; resourceLimit?: (resource: string) => number }) {
    this.#globalLimit = Math.max(1, options.globalLimit);
    this.#resourceLimit = options.resourceLimit ?? (() => Number.POSITIVE_INFINITY);
  }

  get activeIds(): string[] {
    return [...this.#active.keys()];
  }

  get waitingIds(): string[] {
    return this.#waiting.map((run) => run.id);
  }

  enqueue(run: QueuedRun): void {
    this.#waiting.push(run);
    this.#pump();
  }

  /** Resolves when nothing is active or waiting. */
  async idle(): Promise<void> {
    if (this.#active.size === 0 && this.#waiting.length === 0) return;
    await new Promise<void>((resolve) => this.#idle.push(resolve));
  }

  #fits(run: QueuedRun): boolean {
    return run.resources.every((r) => (this.#inUse.get(r) ?? 0) < this.#resourceLimit(r));
  }

  #pump(): void {
    for (let i = 0; i < this.#waiting.length && this.#active.size < this.#globalLimit;) {
      const run = this.#waiting[i];
      if (run === undefined || !this.#fits(run)) {
        i += 1;
        continue;
      }
      this.#waiting.splice(i, 1);
      this.#active.set(run.id, run);
      for (const r of run.resources) this.#inUse.set(r, (this.#inUse.get(r) ?? 0) + 1);
      void run
        .start()
        .catch(() => undefined)
        .finally(() => {
          this.#active.delete(run.id);
          for (const r of run.resources) this.#inUse.set(r, (this.#inUse.get(r) ?? 1) - 1);
          this.#pump();
        });
    }
    if (this.#active.size === 0 && this.#waiting.length === 0) {
      for (const resolve of this.#idle.splice(0)) resolve();
    }
  }
}
