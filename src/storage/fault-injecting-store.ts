/**
 * A wrapper that injects faults into any ObjectStore, for crash and error tests: fail chosen
 * operations, add latency, or "crash" after N mutating operations (every later operation fails,
 * as if the process died; nothing half-written becomes visible, like a real atomic put).
 * Puts made with `durable: false` and not yet covered by a successful `sync()` are what a machine
 * crash may lose: `heal()` applies the plan's `undurable` fate to each of them (kept, lost, or
 * truncated; a deferred delete undone) before the store works again, as the remote would look after a reboot.
 */
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

export type StoreOperation = 'put' | 'get' | 'stat' | 'list' | 'delete' | 'sync';

/** What a crash does to a put made with `durable: false` and not synced since. */
export type UndurableFate = 'keep' | 'lose' | 'truncate';

export interface FaultPlan {
  /** After this many successful put/delete calls, every operation fails with a crash error. */
  readonly crashAfterMutations?: number;
  /**
   * Where the crash strikes the mutation that triggers it: 'before' (default) = the mutation is
   * not performed; 'after' = it is performed on the inner store, then the crash is reported, as
   * when a process dies after its write reached the remote but before it learned the outcome.
   */
  readonly crashPoint?: 'before' | 'after';
  /** Called before each operation; return an error to fail that operation. */
  readonly failWhen?: (operation: StoreOperation, key: string) => Error | undefined;
  /** Added before each operation. */
  readonly latencyMs?: number;
  /** Fate of each undurable, unsynced put when `heal()` follows a crash (default 'keep'). */
  readonly undurable?: (key: string) => UndurableFate;
}

export class SimulatedCrash extends StorageError {
  constructor(operation: StoreOperation, key: string) {
    super('STORAGE_IO', `simulated crash before ${operation} ${key}`, {
      details: { simulatedCrash: true },
    });
  }
}

export class FaultInjectingStore implements ObjectStore {
  readonly inner: ObjectStore;
  readonly properties: StoreProperties;
  #plan: FaultPlan;
  #mutations = 0;
  #crashed = false;
  /** Keys put with durable: false since the last successful sync (and not overwritten durably). */
  readonly #unsynced = new Set<string>();
  /** Bodies of objects deleted with durable: false since the last sync: a crash may undo those. */
  readonly #undeleted = new Map<string, Buffer>();

  constructor(inner: ObjectStore, plan: FaultPlan = {}) {
    this.inner = inner;
    this.#plan = plan;
    this.properties = {
      ...inner.properties,
      displayName: `faulty(${inner.properties.displayName})`,
    };
  }

  get crashed(): boolean {
    return this.#crashed;
  }

  get mutationCount(): number {
    return this.#mutations;
  }

  get unsyncedKeys(): readonly string[] {
    return [...this.#unsynced];
  }

  /**
   * After a crash: applies the current plan's `undurable` fate to every unsynced deferred put
   * (lost = deleted, truncated = replaced by its first half) and deferred delete (anything but
   * 'keep' = the object is back), then sets `plan`. Returns the keys damaged or restored.
   */
  async heal(plan: FaultPlan = {}): Promise<string[]> {
    const damaged: string[] = [];
    if (this.#crashed) {
      const fate = this.#plan.undurable ?? (() => 'keep' as const);
      for (const key of this.#unsynced) {
        const what = fate(key);
        if (what === 'keep') continue;
        damaged.push(key);
        if (what === 'lose') {
          await this.inner.delete(key);
        } else {
          const body = await this.inner.get(key);
          await this.inner.put(key, body.subarray(0, Math.floor(body.length / 2)));
        }
      }
      // Any fate but 'keep' undoes a deferred delete: the object reappears whole.
      for (const [key, body] of this.#undeleted) {
        if (fate(key) === 'keep') continue;
        damaged.push(key);
        await this.inner.put(key, body);
      }
    }
    this.#unsynced.clear();
    this.#undeleted.clear();
    this.setPlan(plan);
    return damaged;
  }

  /** Changes the plan (e.g. after a crash to let recovery run; `heal` also simulates data loss). */
  setPlan(plan: FaultPlan): void {
    this.#plan = plan;
    this.#crashed = false;
    this.#mutations = 0;
  }

  async #before(operation: StoreOperation, key: string): Promise<'crash-after' | undefined> {
    const { latencyMs, crashAfterMutations, failWhen } = this.#plan;
    if (latencyMs !== undefined && latencyMs > 0)
      await new Promise((r) => setTimeout(r, latencyMs));
    if (this.#crashed) throw new SimulatedCrash(operation, key);
    const mutating = operation === 'put' || operation === 'delete';
    // (sync is not a mutation: it changes durability, not content)
    if (mutating && crashAfterMutations !== undefined && this.#mutations >= crashAfterMutations) {
      this.#crashed = true;
      if (this.#plan.crashPoint === 'after') return 'crash-after';
      throw new SimulatedCrash(operation, key);
    }
    const error = failWhen?.(operation, key);
    if (error !== undefined) throw error;
    if (mutating) this.#mutations += 1;
    return undefined;
  }

  async put(key: string, body: Buffer, options?: PutOptions): Promise<void> {
    const crash = await this.#before('put', key);
    // Like a real store, replacing an existing object is durable (see PutOptions.durable).
    const deferred = options?.durable === false && (await this.inner.stat(key)) === undefined;
    await this.inner.put(key, body, options);
    if (deferred) this.#unsynced.add(key);
    else this.#unsynced.delete(key);
    this.#undeleted.delete(key);
    if (crash !== undefined) throw new SimulatedCrash('put', key);
  }

  async get(key: string, range?: ByteRange, options?: GetOptions): Promise<Buffer> {
    await this.#before('get', key);
    return this.inner.get(key, range, options);
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    await this.#before('stat', key);
    return this.inner.stat(key);
  }

  async *list(prefix: string, options?: { signal?: AbortSignal }): AsyncIterable<ObjectInfo> {
    await this.#before('list', prefix);
    for await (const info of this.inner.list(prefix, options)) {
      if (this.#crashed) throw new SimulatedCrash('list', prefix);
      yield info;
    }
  }

  async delete(key: string, options?: DeleteOptions): Promise<void> {
    const crash = await this.#before('delete', key);
    // A deferred delete of a durable object may be undone by a crash: keep its body to restore.
    const body =
      options?.durable === false && !this.#unsynced.has(key) && !this.#undeleted.has(key)
        ? await this.inner.get(key).catch(() => undefined)
        : undefined;
    await this.inner.delete(key, options);
    if (body !== undefined) this.#undeleted.set(key, body);
    else if (options?.durable !== false) this.#undeleted.delete(key);
    this.#unsynced.delete(key);
    if (crash !== undefined) throw new SimulatedCrash('delete', key);
  }

  async sync(): Promise<void> {
    await this.#before('sync', '');
    const covered = [...this.#unsynced];
    const deleted = [...this.#undeleted.keys()];
    await this.inner.sync();
    // A crash reported while the inner sync ran does not undo it: it completed.
    for (const key of covered) this.#unsynced.delete(key);
    for (const key of deleted) this.#undeleted.delete(key);
  }

  async close(): Promise<void> {
    await this.inner.close();
  }
}
