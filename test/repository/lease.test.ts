import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock, systemClock } from '../../src/core/index.ts';
import {
  MemoryObjectStore,
  StorageError,
  type ObjectStore,
  type PutOptions,
} from '../../src/storage/index.ts';
import { Lease, Repository, RepositoryError, withLease } from '../../src/repository/index.ts';
import { storeFactories } from './helpers.ts';

function isCode(code: string) {
  return (error: unknown): boolean => error instanceof RepositoryError && error.code === code;
}

for (const factory of storeFactories) {
  test(`${factory.name}: one holder at a time; expiry, renewal, stale recovery, release`, async () => {
    const clock = new ManualClock(1_000_000);
    const { store, cleanup } = await factory.create({ nowMs: () => clock.nowMs() });
    try {
      const repo = await Repository.init(store, { clock });
      const a = await Lease.acquire(repo, 'vm', { holderId: 'a', durationMs: 1000 });
      await assert.rejects(
        Lease.acquire(repo, 'vm', { holderId: 'b', durationMs: 1000 }),
        (error: unknown) =>
          isCode('REPO_LEASE_HELD')(error) && (error as RepositoryError).retryable,
      );
      const other = await Lease.acquire(repo, 'vm2', { holderId: 'b', durationMs: 1000 });
      clock.advance(800);
      await a.renew();
      clock.advance(800);
      await a.check();
      await assert.rejects(
        Lease.acquire(repo, 'vm', { holderId: 'b', durationMs: 1000 }),
        isCode('REPO_LEASE_HELD'),
      );
      clock.advance(300); // a's lease expired: b recovers it
      await assert.rejects(a.check(), isCode('REPO_LEASE_LOST'));
      const b = await Lease.acquire(repo, 'vm', { holderId: 'b', durationMs: 1000 });
      await assert.rejects(a.renew(), isCode('REPO_LEASE_LOST'));
      await b.release();
      const c = await Lease.acquire(repo, 'vm', { holderId: 'c', durationMs: 1000 });
      assert.ok(c.generation > 0);
      const keys: string[] = [];
      for await (const info of store.list('leases/vm/')) keys.push(info.key);
      assert.equal(keys.length, 1, 'old generations are removed');
      await other.release();
    } finally {
      await cleanup();
    }
  });

  test(`${factory.name}: of concurrent acquirers exactly one wins`, async () => {
    const { store, cleanup } = await factory.create();
    try {
      const repo = await Repository.init(store);
      const results = await Promise.allSettled(
        Array.from({ length: 8 }, (_, i) => Lease.acquire(repo, 'vm', { holderId: `h${i}` })),
      );
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
      for (const r of results)
        if (r.status === 'rejected') assert.ok(isCode('REPO_LEASE_HELD')(r.reason));
    } finally {
      await cleanup();
    }
  });
}

/** A store whose put-if-absent is a non-atomic check-then-put (like S3 without If-None-Match). */
class NonAtomicStore extends MemoryObjectStore {
  override readonly properties = {
    displayName: 'memory:non-atomic',
    maxConcurrency: 4,
    conditionalPut: false,
  };
  override async put(key: string, body: Buffer, options: PutOptions = {}): Promise<void> {
    if (options.ifAbsent === true && (await this.stat(key)) !== undefined) {
      throw new StorageError('STORAGE_ALREADY_EXISTS', key);
    }
    await new Promise((resolve) => setTimeout(resolve, Math.random() * 5));
    await super.put(key, body);
  }
}

test('fallback without conditional put: settle, re-list, at most one winner', async () => {
  const store: ObjectStore = new NonAtomicStore();
  const repo = await Repository.init(store, { clock: systemClock });
  for (let round = 0; round < 5; round += 1) {
    const results = await Promise.allSettled(
      Array.from({ length: 4 }, (_, i) =>
        Lease.acquire(repo, `vm${round}`, { holderId: `h${i}`, settleMs: 30 }),
      ),
    );
    assert.ok(results.filter((r) => r.status === 'fulfilled').length <= 1);
  }
});

test('withLease renews while the work runs and releases after', async () => {
  const store = new MemoryObjectStore();
  const repo = await Repository.init(store);
  const result = await withLease(repo, 'vm', { holderId: 'job', durationMs: 90 }, async (lease) => {
    await new Promise((resolve) => setTimeout(resolve, 250));
    await lease.check();
    await assert.rejects(
      Lease.acquire(repo, 'vm', { holderId: 'other' }),
      isCode('REPO_LEASE_HELD'),
    );
    return 42;
  });
  assert.equal(result, 42);
  const next = await Lease.acquire(repo, 'vm', { holderId: 'other' });
  await next.release();
});
