// The wrappers keep the ObjectStore interface and add one behaviour each: retry (retryable errors
// only, backoff, give-up, abort, list resume, ambiguous put-if-absent), concurrency limit and
// bandwidth limit. Each is also run through the conformance suite to prove it stays a store.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CoreError, ManualClock } from '../../src/core/index.ts';
import {
  FaultInjectingStore,
  LimitedStore,
  MemoryObjectStore,
  RetryingStore,
  StorageError,
  ThrottledStore,
  type ObjectInfo,
  type ObjectStore,
} from '../../src/storage/index.ts';
import { describeObjectStoreConformance, isStorageError } from './conformance.ts';

const retryable = (): StorageError => new StorageError('STORAGE_IO', 'flaky', { retryable: true });

/** Fails the first `failures` calls of `operation` with `error()`, counting every call. */
function flaky(
  inner: ObjectStore,
  operation: 'put' | 'get' | 'stat' | 'delete' | 'list',
  failures: number,
  error: () => Error = retryable,
): FaultInjectingStore & { calls: () => number } {
  let calls = 0;
  const store = new FaultInjectingStore(inner, {
    failWhen: (op) => {
      if (op !== operation) return undefined;
      calls += 1;
      return calls <= failures ? error() : undefined;
    },
  });
  return Object.assign(store, { calls: () => calls });
}

/** An ObjectStore forwarding to `inner` except for the given methods. */
function delegate(inner: ObjectStore, overrides: Partial<ObjectStore>): ObjectStore {
  return {
    properties: inner.properties,
    put: (k, b, o) => inner.put(k, b, o),
    get: (k, r, o) => inner.get(k, r, o),
    stat: (k) => inner.stat(k),
    list: (p, o) => inner.list(p, o),
    delete: (k) => inner.delete(k),
    sync: () => inner.sync(),
    close: () => inner.close(),
    ...overrides,
  };
}

describeObjectStoreConformance('retry(limit(throttle(memory)))', async () => ({
  store: new RetryingStore(
    new LimitedStore(new ThrottledStore(new MemoryObjectStore(), { bytesPerSecond: 1024 ** 3 }), 4),
  ),
  cleanup: async () => undefined,
}));

describe('RetryingStore', () => {
  test('retries retryable errors with exponential backoff on the clock', async () => {
    const clock = new ManualClock();
    const memory = new MemoryObjectStore();
    await memory.put('k', Buffer.from('v'));
    const inner = flaky(memory, 'get', 3);
    const delays: number[] = [];
    const store = new RetryingStore(inner, {
      clock,
      baseDelayMs: 100,
      maxDelayMs: 250,
      random: () => 0.999,
      onRetry: ({ delayMs }) => {
        delays.push(delayMs);
        setImmediate(() => clock.advance(delayMs));
      },
    });
    assert.deepEqual(await store.get('k'), Buffer.from('v'));
    assert.equal(inner.calls(), 4);
    assert.deepEqual(delays, [99, 199, 249], 'doubling, capped at maxDelayMs, jittered below');
    assert.equal(clock.nowMs(), 99 + 199 + 249);
  });

  test('does not retry non-retryable errors', async () => {
    const inner = flaky(
      new MemoryObjectStore(),
      'put',
      5,
      () => new StorageError('STORAGE_AUTH', 'no'),
    );
    const store = new RetryingStore(inner, { baseDelayMs: 1 });
    await assert.rejects(store.put('k', Buffer.from('v')), isStorageError('STORAGE_AUTH'));
    assert.equal(inner.calls(), 1);
    const notFound = new RetryingStore(new MemoryObjectStore(), { baseDelayMs: 1 });
    await assert.rejects(notFound.get('absent'), isStorageError('STORAGE_NOT_FOUND'));
  });

  test('gives up after maxAttempts with the last error', async () => {
    const inner = flaky(new MemoryObjectStore(), 'stat', 100);
    const store = new RetryingStore(inner, { maxAttempts: 4, baseDelayMs: 1 });
    await assert.rejects(store.stat('k'), (error: unknown) => {
      assert.ok(error instanceof StorageError && error.retryable);
      return true;
    });
    assert.equal(inner.calls(), 4);
  });

  test('an abort stops the backoff wait and the retries', async () => {
    const inner = flaky(new MemoryObjectStore(), 'get', 100);
    const store = new RetryingStore(inner, { baseDelayMs: 60_000, random: () => 0.5 });
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(), 30);
    await assert.rejects(
      store.get('k', undefined, { signal: controller.signal }),
      (error: unknown) => error instanceof CoreError && error.code === 'CANCELLED',
    );
    assert.ok(Date.now() - started < 5000, 'did not wait for the backoff');
    assert.equal(inner.calls(), 1);
  });

  test('a listing that fails midway resumes after the last key, without duplicates', async () => {
    const memory = new MemoryObjectStore();
    for (let i = 0; i < 10; i += 1) await memory.put(`k${i}`, Buffer.from([i]));
    let failuresLeft = 2;
    const broken = delegate(memory, {
      async *list(prefix: string): AsyncIterable<ObjectInfo> {
        let yielded = 0;
        for await (const info of memory.list(prefix)) {
          if (yielded === 3 && failuresLeft > 0) {
            failuresLeft -= 1;
            throw retryable();
          }
          yielded += 1;
          yield info;
        }
      },
    });
    const store = new RetryingStore(broken, { baseDelayMs: 1 });
    const keys: string[] = [];
    for await (const info of store.list('')) keys.push(info.key);
    assert.deepEqual(
      keys,
      Array.from({ length: 10 }, (_, i) => `k${i}`),
    );
    assert.equal(failuresLeft, 0);
  });

  test('put-if-absent whose first attempt landed but failed ambiguously succeeds once', async () => {
    const memory = new MemoryObjectStore();
    let first = true;
    const lossy = delegate(memory, {
      put: async (key: string, body: Buffer, options?: { ifAbsent?: boolean }) => {
        await memory.put(key, body, options);
        if (first) {
          first = false;
          throw retryable(); // the response was lost
        }
      },
    });
    const store = new RetryingStore(lossy, { baseDelayMs: 1 });
    await store.put('lease', Buffer.from('mine'), { ifAbsent: true });
    assert.deepEqual(await memory.get('lease'), Buffer.from('mine'));
    // Someone else's object is still a conflict.
    await assert.rejects(
      store.put('lease', Buffer.from('theirs'), { ifAbsent: true }),
      isStorageError('STORAGE_ALREADY_EXISTS'),
    );
  });
});

describe('LimitedStore', () => {
  test('never runs more than N requests at once, and reaches N', async () => {
    let inFlight = 0;
    let peak = 0;
    const memory = new MemoryObjectStore();
    await memory.put('k', Buffer.from('v'));
    const counting = delegate(memory, {
      get: async (key: string) => {
        inFlight += 1;
        peak = Math.max(peak, inFlight);
        await new Promise((r) => setTimeout(r, 3));
        inFlight -= 1;
        return memory.get(key);
      },
    });
    const store = new LimitedStore(counting, 4);
    assert.equal(store.properties.maxConcurrency, 4);
    await Promise.all(Array.from({ length: 60 }, () => store.get('k')));
    assert.equal(peak, 4);
    assert.equal(store.inFlight, 0);
  });
});

describe('ThrottledStore', () => {
  test('put and get bodies pass at the configured rate (never faster; slower only by scheduling)', async () => {
    const store = new ThrottledStore(new MemoryObjectStore(), {
      bytesPerSecond: 1024 * 1024,
      burstBytes: 0,
    });
    const body = Buffer.alloc(128 * 1024, 1);
    let started = Date.now();
    await Promise.all(Array.from({ length: 4 }, (_, i) => store.put(`k${i}`, body)));
    const putMs = Date.now() - started;
    assert.ok(putMs >= 480 && putMs < 1500, `4 x 128 KiB at 1 MiB/s took ${putMs} ms`);
    started = Date.now();
    for (let i = 0; i < 4; i += 1) await store.get(`k${i}`);
    const getMs = Date.now() - started;
    assert.ok(getMs >= 480 && getMs < 1500, `4 x 128 KiB reads took ${getMs} ms`);
    started = Date.now();
    await store.stat('k0');
    for await (const _ of store.list('')) break;
    assert.ok(Date.now() - started < 100, 'metadata requests are not throttled');
  });

  test('a rate of 0 is a configuration error', () => {
    assert.throws(
      () => new ThrottledStore(new MemoryObjectStore(), { bytesPerSecond: 0 }),
      isStorageError('STORAGE_CONFIG'),
    );
  });
});
