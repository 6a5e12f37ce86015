/**
 * The ObjectStore seam: what a remote offers, no more than the weakest backend (architecture page,
 * "the repository is an object store with write-once objects"). Whole-object put (optionally only
 * if absent), ranged get, stat, list by prefix, delete. No rename, no append, no in-place change.
 *
 * Keys are '/'-separated relative paths of printable ASCII without '..' segments, leading '/',
 * or empty segments; implementations reject anything else with STORAGE_INVALID_KEY.
 */

export interface ObjectInfo {
  readonly key: string;
  readonly sizeBytes: number;
  /** Last modification time, ms since the Unix epoch. */
  readonly modifiedMs: number;
}

export interface ByteRange {
  readonly offsetBytes: number;
  /** Omitted = to the end of the object. */
  readonly lengthBytes?: number;
}

export interface PutOptions {
  /** Fail with STORAGE_ALREADY_EXISTS if the key exists (atomically where `conditionalPut`). */
  readonly ifAbsent?: boolean;
  /**
   * Default true: the object is durable when put resolves. False: the object is visible at once
   * but may be lost or truncated by a crash of the machine until the next `sync()` resolves
   * (stores whose puts are always durable, like S3 and memory, ignore it). Replacing an existing
   * object is always durable: a deferred put never puts an object's previous content at risk.
   */
  readonly durable?: boolean;
  readonly signal?: AbortSignal;
}

export interface DeleteOptions {
  /**
   * Default true. False: a crash of the machine before the next `sync()` may undo the delete
   * (the object reappears whole); for cleanups whose leftovers garbage collection removes.
   */
  readonly durable?: boolean;
}

export interface StoreProperties {
  /** Human name for logs: "local:/backups", "s3:bucket/prefix". Never contains secrets. */
  readonly displayName: string;
  /** Requests worth running at once against this backend. */
  readonly maxConcurrency: number;
  /** True when put-if-absent is atomic on the server (leases rely on it, else a documented fallback). */
  readonly conditionalPut: boolean;
}

export interface ObjectStore {
  readonly properties: StoreProperties;
  /**
   * Writes the whole object atomically: readers see the old object, or none, or the whole new one.
   * The store keeps no reference to `body` once the call resolved (callers may reuse it then).
   */
  put(key: string, body: Buffer, options?: PutOptions): Promise<void>;
  /** Reads the object or a range of it; STORAGE_NOT_FOUND if absent. */
  get(key: string, range?: ByteRange, options?: GetOptions): Promise<Buffer>;
  /** Size and time of the object, or undefined if absent. */
  stat(key: string): Promise<ObjectInfo | undefined>;
  /** Every object whose key starts with `prefix`, in lexicographic key order, paginated inside. */
  list(prefix: string, options?: { signal?: AbortSignal }): AsyncIterable<ObjectInfo>;
  /** Deletes the object; deleting an absent key is not an error. */
  delete(key: string, options?: DeleteOptions): Promise<void>;
  /**
   * The sync barrier: when it resolves, every put or delete made with `durable: false` that
   * resolved before the call is durable. A no-op on stores whose puts are always durable.
   */
  sync(): Promise<void>;
  close(): Promise<void>;
}
export interface GetOptions {
  readonly signal?: AbortSignal;
  /**
   * Memory for the object's bytes, when the store can read into it (the local store does): called
   * with the length, it must return a buffer of exactly that length. The result may still be
   * another buffer. Lets a caller reuse buffers instead of allocating one per object.
   */
  readonly allocate?: (lengthBytes: number) => Buffer;
}
