/**
 * Leases: one writer per VM at a time (docs/design.md §4.9). A lease is a numbered generation
 * object `leases/<vm>/<generation>.json`; taking or renewing it writes generation g+1 with
 * put-if-absent, so of two writers racing for the same generation exactly one wins, and a stale
 * lease (expired) is recovered by simply writing the next generation. No object is ever
 * overwritten. On stores without atomic put-if-absent the fallback is: put, wait a settle delay,
 * list again and keep the lease only if our generation is still the newest (best effort: run one
 * scheduler per repository there).
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { StorageError } from '../storage/index.ts';
import { DEFAULT_LEASE_DURATION_MS, DEFAULT_LEASE_SETTLE_MS } from './constants.ts';
import { RepositoryError } from './errors.ts';
import { checkId, leaseKey, leasePrefix } from './keys.ts';
import type { Repository } from './repository.ts';

const leaseSchema = z
  .object({
    vmId: z.string(),
    holderId: z.string().max(256),
    token: z.string().regex(/^[0-9a-f]{32}$/),
    acquiredMs: z.number().int().nonnegative(),
    expiresMs: z.number().int().nonnegative(),
  })
  .strict();

type LeaseBody = z.infer<typeof leaseSchema>;

export interface LeaseOptions {
  /** Who takes the lease (host/process/job), for messages. */
  readonly holderId: string;
  readonly durationMs?: number;
  /** Fallback only: delay between put and re-list on stores without conditional put. */
  readonly settleMs?: number;
}

interface Current {
  readonly generation: number;
  readonly body: LeaseBody | undefined;
  readonly modifiedMs: number;
}

async function readCurrent(repository: Repository, vmId: string): Promise<Current | undefined> {
  let newest: { key: string; generation: number; modifiedMs: number } | undefined;
  for await (const info of repository.store.list(leasePrefix(vmId))) {
    const match = /\/(\d{10})\.json$/.exec(info.key);
    if (match?.[1] === undefined) continue;
    const generation = Number(match[1]);
    if (newest === undefined || generation > newest.generation) {
      newest = { key: info.key, generation, modifiedMs: info.modifiedMs };
    }
  }
  if (newest === undefined) return undefined;
  try {
    const parsed = leaseSchema.safeParse(
      JSON.parse((await repository.store.get(newest.key)).toString('utf8')),
    );
    return {
      generation: newest.generation,
      body: parsed.success ? parsed.data : undefined,
      modifiedMs: newest.modifiedMs,
    };
  } catch (error) {
    if (error instanceof StorageError && error.code === 'STORAGE_NOT_FOUND')
      return readCurrent(repository, vmId);
    if (error instanceof SyntaxError)
      return { generation: newest.generation, body: undefined, modifiedMs: newest.modifiedMs };
    throw error;
  }
}

export class Lease {
  readonly #repository: Repository;
  readonly vmId: string;
  readonly holderId: string;
  readonly token: string;
  readonly durationMs: number;
  readonly #settleMs: number;
  #generation: number;
  #expiresMs: number;

  private constructor(repository: Repository, vmId: string, options: LeaseOptions) {
    this.#repository = repository;
    this.vmId = vmId;
    this.holderId = options.holderId;
    this.token = randomBytes(16).toString('hex');
    this.durationMs = options.durationMs ?? DEFAULT_LEASE_DURATION_MS;
    this.#settleMs = options.settleMs ?? DEFAULT_LEASE_SETTLE_MS;
    this.#generation = 0;
    this.#expiresMs = 0;
  }

  get generation(): number {
    return this.#generation;
  }

  get expiresMs(): number {
    return this.#expiresMs;
  }

  static async acquire(
    repository: Repository,
    vmId: string,
    options: LeaseOptions,
  ): Promise<Lease> {
    checkId('vmId', vmId);
    const lease = new Lease(repository, vmId, options);
    await lease.#take(false);
    return lease;
  }

  async #take(renewing: boolean): Promise<void> {
    const { store, clock } = this.#repository;
    const nowMs = clock.nowMs();
    const current = await readCurrent(this.#repository, this.vmId);
    if (
      renewing &&
      (current?.body?.token !== this.token || current.generation !== this.#generation)
    ) {
      throw new RepositoryError('REPO_LEASE_LOST', `lease of ${this.vmId} was taken over`, {
        details: { vmId: this.vmId, holderId: current?.body?.holderId },
      });
    }
    if (!renewing && current !== undefined) {
      const expiresMs = current.body?.expiresMs ?? current.modifiedMs + this.durationMs;
      if (expiresMs > nowMs) {
        throw new RepositoryError(
          'REPO_LEASE_HELD',
          `VM ${this.vmId} is leased by ${current.body?.holderId ?? 'an unreadable lease'} until ${new Date(expiresMs).toISOString()}`,
          {
            retryable: true,
            details: { vmId: this.vmId, holderId: current.body?.holderId, expiresMs },
          },
        );
      }
    }
    const generation = (current?.generation ?? 0) + 1;
    const body: LeaseBody = {
      vmId: this.vmId,
      holderId: this.holderId,
      token: this.token,
      acquiredMs: nowMs,
      expiresMs: nowMs + this.durationMs,
    };
    const key = leaseKey(this.vmId, generation);
    const conditional = store.properties.conditionalPut;
    try {
      await store.put(key, Buffer.from(JSON.stringify(body)), { ifAbsent: true });
    } catch (error) {
      if (error instanceof StorageError && error.code === 'STORAGE_ALREADY_EXISTS') {
        throw new RepositoryError(
          renewing ? 'REPO_LEASE_LOST' : 'REPO_LEASE_HELD',
          `lost the race for ${key}`,
          {
            retryable: !renewing,
            details: { vmId: this.vmId, key },
          },
        );
      }
      throw error;
    }
    if (!conditional) {
      await clock.sleep(this.#settleMs);
      const after = await readCurrent(this.#repository, this.vmId);
      if (after?.generation !== generation || after.body?.token !== this.token) {
        throw new RepositoryError(
          renewing ? 'REPO_LEASE_LOST' : 'REPO_LEASE_HELD',
          `another writer raced for ${key}`,
          {
            retryable: !renewing,
            details: { vmId: this.vmId, key },
          },
        );
      }
    }
    this.#generation = generation;
    this.#expiresMs = body.expiresMs;
    // Older generations are history: remove them (best effort).
    for await (const info of store.list(leasePrefix(this.vmId))) {
      if (info.key < key) await store.delete(info.key);
    }
  }

  /** Extends the lease; REPO_LEASE_LOST if another writer took it over meanwhile. */
  async renew(): Promise<void> {
    await this.#take(true);
  }

  /** Throws REPO_LEASE_LOST unless this lease is still the newest and not expired. */
  async check(): Promise<void> {
    const current = await readCurrent(this.#repository, this.vmId);
    if (current?.body?.token !== this.token || this.#expiresMs <= this.#repository.clock.nowMs()) {
      throw new RepositoryError('REPO_LEASE_LOST', `lease of ${this.vmId} is no longer held`, {
        details: { vmId: this.vmId },
      });
    }
  }

  async release(): Promise<void> {
    const current = await readCurrent(this.#repository, this.vmId);
    if (current?.body?.token === this.token)
      await this.#repository.store.delete(leaseKey(this.vmId, current.generation));
  }
}

/** Runs `fn` under the VM's lease, renewing it every third of its duration, releasing it after. */
export async function withLease<T>(
  repository: Repository,
  vmId: string,
  options: LeaseOptions,
  fn: (lease: Lease) => Promise<T>,
): Promise<T> {
  const lease = await Lease.acquire(repository, vmId, options);
  const stop = new AbortController();
  const state: { failure: Error | undefined } = { failure: undefined };
  const renewLoop = (async () => {
    for (;;) {
      try {
        await repository.clock.sleep(lease.durationMs / 3, stop.signal);
        if (stop.signal.aborted) return;
        await lease.renew();
      } catch (error) {
        if (!stop.signal.aborted) {
          state.failure = error instanceof Error ? error : new Error(String(error));
        }
        return;
      }
    }
  })();
  try {
    const result = await fn(lease);
    if (state.failure !== undefined) throw state.failure;
    return result;
  } finally {
    stop.abort();
    void renewLoop;
    await lease.release();
  }
}
