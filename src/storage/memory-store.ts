/** An in-memory ObjectStore: fast tests, the model in property tests, the base of fault tests. */
import { throwIfAborted } from '../core/index.ts';
import { resolveRange } from './byte-range.ts';
import { StorageError } from './errors.ts';
import { checkObjectKey, checkObjectPrefix } from './object-key.ts';
import type {
  ByteRange,
  ObjectInfo,
  ObjectStore,
  PutOptions,
  StoreProperties,
} from './object-store.ts';

export function sliceRange(key: string, data: Buffer, range: ByteRange | undefined): Buffer {
  const { startBytes, endBytes } = resolveRange(key, range, data.length);
  return data.subarray(startBytes, endBytes);
}

export class MemoryObjectStore implements ObjectStore {
  readonly properties: StoreProperties;
  readonly #objects = new Map<string, { data: Buffer; modifiedMs: number }>();
  readonly #nowMs: () => number;

  constructor(options: { nowMs?: () => number; name?: string } = {}) {
    this.#nowMs = options.nowMs ?? Date.now;
    this.properties = {
      displayName: `memory:${options.name ?? 'default'}`,
      maxConcurrency: 16,
      conditionalPut: true,
    };
  }

  async put(key: string, body: Buffer, options: PutOptions = {}): Promise<void> {
    checkObjectKey(key);
    throwIfAborted(options.signal);
    if (options.ifAbsent === true && this.#objects.has(key)) {
      throw new StorageError('STORAGE_ALREADY_EXISTS', `${key} already exists`);
    }
    this.#objects.set(key, { data: Buffer.from(body), modifiedMs: this.#nowMs() });
  }

  async get(key: string, range?: ByteRange): Promise<Buffer> {
    checkObjectKey(key);
    const object = this.#objects.get(key);
    if (object === undefined) throw new StorageError('STORAGE_NOT_FOUND', `${key} not found`);
    return Buffer.from(sliceRange(key, object.data, range));
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    checkObjectKey(key);
    const object = this.#objects.get(key);
    return object === undefined
      ? undefined
      : { key, sizeBytes: object.data.length, modifiedMs: object.modifiedMs };
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    checkObjectPrefix(prefix);
    const keys = [...this.#objects.keys()].filter((key) => key.startsWith(prefix)).sort();
    for (const key of keys) {
      const object = this.#objects.get(key);
      if (object !== undefined) {
        yield { key, sizeBytes: object.data.length, modifiedMs: object.modifiedMs };
      }
    }
  }

  async delete(key: string): Promise<void> {
    checkObjectKey(key);
    this.#objects.delete(key);
  }

  /** Puts are never deferred here. */
  sync(): Promise<void> {
    return Promise.resolve();
  }

  async close(): Promise<void> {
    // nothing to release
  }

  /** Test helper: replace an object's bytes (to simulate corruption on the remote). */
  corrupt(key: string, mutate: (data: Buffer) => Buffer): void {
    const object = this.#objects.get(key);
    if (object !== undefined)
      this.#objects.set(key, { ...object, data: mutate(Buffer.from(object.data)) });
  }
}
