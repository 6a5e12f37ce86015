/**
 * Retries an ObjectStore's operations on retryable errors only (`VmdeltaError.retryable`, set by
 * the store that knows: network failures, 5xx, throttling), with exponential backoff and full
 * jitter: attempt n waits random(0, min(maxDelayMs, baseDelayMs * 2^(n-1))). Gives up after
 * `maxAttempts` and throws the last error. An abort signal stops both the waiting and the retries.
 *
 * - list: a failure in the middle of a listing resumes after the last key yielded (listings are
 *   in key order), so callers never see a key twice.
 * - put-if-absent: when an earlier attempt failed ambiguously (the request may have reached the
 *   server) and a retry finds the key present, the object is read back; if it holds exactly our
 *   body, our earlier attempt won and the put succeeds.
 */
import { isVmdeltaError, systemClock, type Clock } from '../core/index.ts';
import { abortableSleep } from './abortable-sleep.ts';
import { StorageError } from './errors.ts';
import type {
  ByteRange,
  DeleteOptions,
  ObjectInfo,
  ObjectStore,
  PutOptions,
  StoreProperties,
  GetOptions,
} from './object-store.ts';

export interface RetryPolicy {
  /** Total attempts including the first (default 5). */
  readonly maxAttempts?: number;
  readonly baseDelayMs?: number;
  readonly maxDelayMs?: number;
  readonly clock?: Clock;
  /** Uniform [0, 1) source for jitter (default Math.random). */
  readonly random?: () => number;
  /** Called before each wait (logging, tests). */
  readonly onRetry?: (event: {
    operation: string;
    key: string;
    attempt: number;
    delayMs: number;
    error: unknown;
  }) => void;
}

export function isRetryable(error: unknown): boolean {
  return isVmdeltaError(error) && error.retryable;
}

export class RetryingStore implements ObjectStore {
  readonly inner: ObjectStore;
  readonly properties: StoreProperties;
  readonly #maxAttempts: number;
  readonly #baseDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #onRetry: RetryPolicy['onRetry'];

  constructor(inner: ObjectStore, policy: RetryPolicy = {}) {
    this.inner = inner;
    this.properties = inner.properties;
    this.#maxAttempts = Math.max(1, policy.maxAttempts ?? 5);
    this.#baseDelayMs = policy.baseDelayMs ?? 200;
    this.#maxDelayMs = policy.maxDelayMs ?? 20_000;
    this.#clock = policy.clock ?? systemClock;
    this.#random = policy.random ?? Math.random;
    this.#onRetry = policy.onRetry;
  }

  /** The wait before attempt `attempt + 1` (attempt counts from 1). */
  delayMs(attempt: number): number {
    const ceiling = Math.min(this.#maxDelayMs, this.#baseDelayMs * 2 ** (attempt - 1));
    return Math.floor(this.#random() * ceiling);
  }

  async #run<T>(
    operation: string,
    key: string,
    signal: AbortSignal | undefined,
    fn: (attempt: number) => Promise<T>,
  ): Promise<T> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await fn(attempt);
      } catch (error) {
        if (!isRetryable(error) || attempt >= this.#maxAttempts || signal?.aborted === true)
          throw error;
        const delayMs = this.delayMs(attempt);
        this.#onRetry?.({ operation, key, attempt, delayMs, error });
        await abortableSleep(this.#clock, delayMs, signal);
      }
    }
  }

  async put(key: string, body: Buffer, options: PutOptions = {}): Promise<void> {
    let ambiguous = false;
    await this.#run('put', key, options.signal, async () => {
      try {
        await this.inner.put(key, body, options);
      } catch (error) {
        if (
          options.ifAbsent === true &&
          ambiguous &&
          error instanceof StorageError &&
          error.code === 'STORAGE_ALREADY_EXISTS'
        ) {
          const present = await this.inner.get(key, undefined, options);
          if (present.equals(body)) return;
        }
        if (isRetryable(error)) ambiguous = true;
        throw error;
      }
    });
  }

  async get(key: string, range?: ByteRange, options?: GetOptions): Promise<Buffer> {
    return this.#run('get', key, options?.signal, () => this.inner.get(key, range, options));
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    return this.#run('stat', key, undefined, () => this.inner.stat(key));
  }

  async *list(prefix: string, options?: { signal?: AbortSignal }): AsyncIterable<ObjectInfo> {
    let lastKey: string | undefined;
    for (let attempt = 1; ; attempt += 1) {
      try {
        for await (const info of this.inner.list(prefix, options)) {
          if (lastKey !== undefined && info.key <= lastKey) continue;
          lastKey = info.key;
          yield info;
        }
        return;
      } catch (error) {
        if (
          !isRetryable(error) ||
          attempt >= this.#maxAttempts ||
          options?.signal?.aborted === true
        )
          throw error;
        const delayMs = this.delayMs(attempt);
        this.#onRetry?.({ operation: 'list', key: prefix, attempt, delayMs, error });
        await abortableSleep(this.#clock, delayMs, options?.signal);
      }
    }
  }

  async delete(key: string, options?: DeleteOptions): Promise<void> {
    await this.#run('delete', key, undefined, () => this.inner.delete(key, options));
  }

  async sync(): Promise<void> {
    await this.#run('sync', '', undefined, () => this.inner.sync());
  }

  async close(): Promise<void> {
    await this.inner.close();
  }
}
