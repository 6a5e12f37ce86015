/**
 * Early writeback of deferred puts on a local folder. A deferred put (`durable: false`) returns
 * before its data is on disk; left alone, the kernel starts writing it only when dirty memory
 * crosses its background threshold, and the final `sync()` then waits for all of it at once. This
 * queue fsyncs each deferred file in the background, a few at a time, as soon as it is written, so
 * the disk works while the caller computes and `sync()` finds little left (measured in
 * docs/design.md §4.10: sequential background fsyncs beat 64 parallel fsyncs at the end).
 *
 * It only starts work early: durability is still decided by `sync()`, which waits for the files
 * in flight and fsyncs every recorded file whose background fsync has not succeeded.
 */
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { errnoOf } from './local-paths.ts';

/** Files fsynced at once in the background, and while `sync()` drains the queue. */
export const BACKGROUND_SYNC_PARALLELISM = 2;
export const DRAIN_SYNC_PARALLELISM = 64;

/** fsync of a file by path; a file deleted since (a later delete or replacement) is skipped. */
export async function syncFileByPath(path: string): Promise<void> {
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return;
    throw error;
  }
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export async function forEachParallel<T>(
  items: readonly T[],
  parallelism: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next] as T;
      next += 1;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallelism, items.length) }, worker));
}

export class WritebackQueue {
  /** Queued fsyncs, each started by calling its `start`. */
  readonly #waiting: (() => void)[] = [];
  /** Scheduled and not finished: resolves true when the fsync succeeded. */
  readonly #inFlight = new Map<string, Promise<boolean>>();
  #running = 0;
  #parallelism = BACKGROUND_SYNC_PARALLELISM;

  /** `onSynced` runs (synchronously, on success only) before the file's promise resolves. */
  constructor(private readonly onSynced: (path: string) => void) {}

  /** Queues an fsync of `path` (already renamed into place). */
  schedule(path: string): void {
    if (this.#inFlight.has(path)) return;
    let start!: () => void;
    const started = new Promise<void>((resolve) => (start = resolve));
    const done = started.then(async () => {
      try {
        await syncFileByPath(path);
        this.onSynced(path);
        return true;
      } catch {
        return false; // sync() tries again and reports the error
      } finally {
        this.#inFlight.delete(path);
        this.#running -= 1;
        this.#pump();
      }
    });
    this.#inFlight.set(path, done);
    this.#waiting.push(start);
    this.#pump();
  }

  /** Whether the background fsync of `path` (if any) succeeded; waits for it when in flight. */
  async settle(path: string): Promise<boolean> {
    const done = this.#inFlight.get(path);
    if (done === undefined) return false;
    this.#parallelism = DRAIN_SYNC_PARALLELISM;
    this.#pump();
    const ok = await done;
    if (this.#inFlight.size === 0) this.#parallelism = BACKGROUND_SYNC_PARALLELISM;
    return ok;
  }

  #pump(): void {
    while (this.#running < this.#parallelism) {
      const start = this.#waiting.shift();
      if (start === undefined) return;
      this.#running += 1;
      start();
    }
  }
}
