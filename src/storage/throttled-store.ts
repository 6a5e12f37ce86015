/**
 * Limits the bandwidth of an ObjectStore's bodies (put bodies and get results) to `bytesPerSecond`,
 * shared by every request through this wrapper. Each body reserves the next slot of a timeline
 * (bytes / rate long); a put waits until its slot ends before sending, a get returns its bytes
 * when its slot ends. A burst allowance lets the timeline lag behind the clock by at most
 * `burstBytes` worth of time, so an idle store does not save up unlimited credit.
 */
import { systemClock, type Clock } from '../core/index.ts';
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

export interface ThrottleOptions {
  readonly bytesPerSecond: number;
  /** Bytes that may pass at once after an idle period (default: 100 ms worth). */
  readonly burstBytes?: number;
  readonly clock?: Clock;
}

export class ThrottledStore implements ObjectStore {
  readonly inner: ObjectStore;
  readonly properties: StoreProperties;
  readonly bytesPerSecond: number;
  readonly #burstMs: number;
  readonly #clock: Clock;
  #timelineMs = Number.NEGATIVE_INFINITY;

  constructor(inner: ObjectStore, options: ThrottleOptions) {
    if (!(options.bytesPerSecond > 0))
      throw new StorageError('STORAGE_CONFIG', 'bandwidth limit must be > 0 bytes/s', {
        details: { field: 'bytesPerSecond' },
      });
    this.inner = inner;
    this.properties = inner.properties;
    this.bytesPerSecond = options.bytesPerSecond;
    this.#burstMs =
      ((options.burstBytes ?? options.bytesPerSecond / 10) * 1000) / this.bytesPerSecond;
    this.#clock = options.clock ?? systemClock;
  }

  /** Reserves `bytes` on the timeline and waits until the reservation ends. */
  async #pass(bytes: number, signal: AbortSignal | undefined): Promise<void> {
    if (bytes === 0) return;
    const nowMs = this.#clock.nowMs();
    this.#timelineMs = Math.max(this.#timelineMs, nowMs - this.#burstMs);
    this.#timelineMs += (bytes * 1000) / this.bytesPerSecond;
    await abortableSleep(this.#clock, this.#timelineMs - nowMs, signal);
  }

  async put(key: string, body: Buffer, options?: PutOptions): Promise<void> {
    await this.#pass(body.length, options?.signal);
    await this.inner.put(key, body, options);
  }

  async get(key: string, range?: ByteRange, options?: GetOptions): Promise<Buffer> {
    const data = await this.inner.get(key, range, options);
    await this.#pass(data.length, options?.signal);
    return data;
  }

  stat(key: string): Promise<ObjectInfo | undefined> {
    return this.inner.stat(key);
  }

  list(prefix: string, options?: { signal?: AbortSignal }): AsyncIterable<ObjectInfo> {
    return this.inner.list(prefix, options);
  }

  delete(key: string, options?: DeleteOptions): Promise<void> {
    return this.inner.delete(key, options);
  }

  sync(): Promise<void> {
    return this.inner.sync();
  }

  async close(): Promise<void> {
    await this.inner.close();
  }
}
