/**
 * Caps the requests in flight against an ObjectStore (core Semaphore, FIFO). A listing holds a
 * slot only while it fetches its next entry, so a slow consumer of a long listing does not starve
 * other requests.
 */
import { Semaphore } from '../core/index.ts';
import type {
  ByteRange,
  DeleteOptions,
  ObjectInfo,
  ObjectStore,
  PutOptions,
  StoreProperties,
  GetOptions,
} from './object-store.ts';

export class LimitedStore implements ObjectStore {
  readonly inner: ObjectStore;
  readonly properties: StoreProperties;
  readonly #semaphore: Semaphore;

  constructor(inner: ObjectStore, maxInFlight = inner.properties.maxConcurrency) {
    this.inner = inner;
    this.#semaphore = new Semaphore(maxInFlight);
    this.properties = {
      ...inner.properties,
      maxConcurrency: Math.min(maxInFlight, inner.properties.maxConcurrency),
    };
  }

  get inFlight(): number {
    return this.#semaphore.capacity - this.#semaphore.available;
  }

  put(key: string, body: Buffer, options?: PutOptions): Promise<void> {
    return this.#semaphore.use(() => this.inner.put(key, body, options));
  }

  get(key: string, range?: ByteRange, options?: GetOptions): Promise<Buffer> {
    return this.#semaphore.use(() => this.inner.get(key, range, options));
  }

  stat(key: string): Promise<ObjectInfo | undefined> {
    return this.#semaphore.use(() => this.inner.stat(key));
  }

  async *list(prefix: string, options?: { signal?: AbortSignal }): AsyncIterable<ObjectInfo> {
    const iterator = this.inner.list(prefix, options)[Symbol.asyncIterator]();
    try {
      for (;;) {
        const next = await this.#semaphore.use(() => iterator.next());
        if (next.done === true) return;
        yield next.value;
      }
    } finally {
      await iterator.return?.();
    }
  }

  delete(key: string, options?: DeleteOptions): Promise<void> {
    return this.#semaphore.use(() => this.inner.delete(key, options));
  }

  /** Not counted against the limit: it waits for puts that already hold or held slots. */
  sync(): Promise<void> {
    return this.inner.sync();
  }

  async close(): Promise<void> {
    await this.inner.close();
  }
}
