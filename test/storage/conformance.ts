/**
 * The ObjectStore conformance suite: one set of behaviours every store must have, run against
 * each implementation by test/storage/*.test.ts. A factory gives a fresh, empty store per test.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { StorageError, type ObjectStore } from '../../src/storage/index.ts';

export interface StoreUnderTest {
  readonly store: ObjectStore;
  readonly cleanup: () => Promise<void>;
}

export interface ConformanceOptions {
  /** Keys written for the pagination test (> 1000 crosses an S3 listing page). */
  readonly paginationKeys?: number;
  /** Size of the large-object test (> the S3 multipart threshold). */
  readonly largeObjectBytes?: number;
  /**
   * False only for servers known to break S3's listing order (s3rver walks its folders, so
   * "a/b" comes before "a-c"): the listing is then compared as a set.
   */
  readonly lexicographicList?: boolean;
  /** Distinct keys written at once in the concurrency test. */
  readonly concurrentPuts?: number;
}

export function isStorageError(code: string): (error: unknown) => boolean {
  return (error: unknown) => {
    assert.ok(error instanceof StorageError, `expected a StorageError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  };
}

async function collect(store: ObjectStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const info of store.list(prefix)) keys.push(info.key);
  return keys;
}

/** Runs `count` tasks with at most `width` at once. */
export async function inParallel(
  count: number,
  width: number,
  task: (index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(width, count) }, async () => {
    while (next < count) {
      const index = next;
      next += 1;
      await task(index);
    }
  });
  await Promise.all(workers);
}

export function describeObjectStoreConformance(
  name: string,
  factory: () => Promise<StoreUnderTest>,
  options: ConformanceOptions = {},
): void {
  const paginationKeys = options.paginationKeys ?? 30;
  const largeObjectBytes = options.largeObjectBytes ?? 3 * 1024 * 1024 + 17;
  const concurrentPuts = options.concurrentPuts ?? 24;
  const ordered = options.lexicographicList ?? true;
  const inOrder = (keys: string[]): string[] => (ordered ? keys : [...keys].sort());

  const withStore = (fn: (store: ObjectStore) => Promise<void>) => async (): Promise<void> => {
    const { store, cleanup } = await factory();
    try {
      await fn(store);
    } finally {
      await store.close();
      await cleanup();
    }
  };

  describe(`ObjectStore conformance: ${name}`, () => {
    test(
      'put, get, stat and overwrite',
      withStore(async (store) => {
        const body = randomBytes(1000);
        const before = Date.now();
        await store.put('vm/disk/a', body);
        assert.deepEqual(await store.get('vm/disk/a'), body);
        const info = await store.stat('vm/disk/a');
        assert.ok(info !== undefined);
        assert.equal(info.key, 'vm/disk/a');
        assert.equal(info.sizeBytes, 1000);
        assert.ok(Math.abs(info.modifiedMs - before) < 120_000, 'modification time is now-ish');
        const replacement = Buffer.from('replaced');
        await store.put('vm/disk/a', replacement);
        assert.deepEqual(await store.get('vm/disk/a'), replacement);
        assert.equal((await store.stat('vm/disk/a'))?.sizeBytes, replacement.length);
        await store.put('empty', Buffer.alloc(0));
        assert.equal((await store.get('empty')).length, 0);
        assert.equal((await store.stat('empty'))?.sizeBytes, 0);
      }),
    );

    test(
      'deferred puts (durable: false) are visible at once and stay after sync()',
      withStore(async (store) => {
        const bodies = Array.from({ length: 12 }, (_, i) => randomBytes(100 + i));
        await Promise.all(
          bodies.map((body, i) => store.put(`deferred/${i % 3}/b${i}`, body, { durable: false })),
        );
        assert.deepEqual(await store.get('deferred/1/b4'), bodies[4]);
        await store.put('deferred/0/b0', Buffer.from('durable now'));
        await store.delete('deferred/2/b5', { durable: false });
        assert.equal(await store.stat('deferred/2/b5'), undefined, 'a deferred delete is visible');
        await store.sync();
        await store.sync(); // nothing pending: still fine
        assert.deepEqual(await store.get('deferred/0/b0'), Buffer.from('durable now'));
        assert.deepEqual(await store.get('deferred/1/b7'), bodies[7]);
        assert.equal(await store.stat('deferred/2/b5'), undefined);
        const listed: string[] = [];
        for await (const info of store.list('deferred/')) listed.push(info.key);
        assert.equal(listed.length, 11);
      }),
    );

    test(
      'absent objects: get fails NOT_FOUND, stat is undefined, delete is fine',
      withStore(async (store) => {
        await assert.rejects(store.get('nope/x'), isStorageError('STORAGE_NOT_FOUND'));
        await assert.rejects(
          store.get('nope/x', { offsetBytes: 0, lengthBytes: 1 }),
          isStorageError('STORAGE_NOT_FOUND'),
        );
        assert.equal(await store.stat('nope/x'), undefined);
        await store.delete('nope/x');
        await store.put('dir/obj', Buffer.from('x'));
        // A prefix of existing keys is not an object.
        assert.equal(await store.stat('dir'), undefined);
        await assert.rejects(store.get('dir'), isStorageError('STORAGE_NOT_FOUND'));
        await store.delete('dir');
        assert.deepEqual(await store.get('dir/obj'), Buffer.from('x'));
      }),
    );

    test(
      'ranged gets, and ranges outside the object',
      withStore(async (store) => {
        const body = randomBytes(4096);
        await store.put('r', body);
        const cases: [number, number | undefined][] = [
          [0, 1],
          [100, 200],
          [4095, 1],
          [1000, undefined],
          [0, 4096],
          [4096, undefined],
          [10, 0],
          [4096, 0],
        ];
        for (const [offsetBytes, lengthBytes] of cases) {
          const range = lengthBytes === undefined ? { offsetBytes } : { offsetBytes, lengthBytes };
          const end = lengthBytes === undefined ? 4096 : offsetBytes + lengthBytes;
          assert.deepEqual(
            await store.get('r', range),
            body.subarray(offsetBytes, end),
            `range ${offsetBytes}+${lengthBytes ?? 'end'}`,
          );
        }
        for (const range of [
          { offsetBytes: 4000, lengthBytes: 97 },
          { offsetBytes: 4097 },
          { offsetBytes: 5000, lengthBytes: 1 },
          { offsetBytes: -1, lengthBytes: 10 },
        ]) {
          await assert.rejects(store.get('r', range), isStorageError('STORAGE_INVALID_RANGE'));
        }
      }),
    );

    test(
      'put-if-absent creates once, then fails ALREADY_EXISTS without changing the object',
      withStore(async (store) => {
        await store.put('lease', Buffer.from('first'), { ifAbsent: true });
        await assert.rejects(
          store.put('lease', Buffer.from('second'), { ifAbsent: true }),
          isStorageError('STORAGE_ALREADY_EXISTS'),
        );
        assert.deepEqual(await store.get('lease'), Buffer.from('first'));
        await store.delete('lease');
        await store.put('lease', Buffer.from('third'), { ifAbsent: true });
        assert.deepEqual(await store.get('lease'), Buffer.from('third'));
        if (store.properties.conditionalPut) {
          // Atomic: of racing writers exactly one wins.
          const results = await Promise.allSettled(
            Array.from({ length: 8 }, (_, i) =>
              store.put('race', Buffer.from(`writer-${i}`), { ifAbsent: true }),
            ),
          );
          const winners = results.filter((r) => r.status === 'fulfilled');
          assert.equal(winners.length, 1, 'exactly one racing put-if-absent wins');
          for (const r of results)
            if (r.status === 'rejected')
              assert.ok(isStorageError('STORAGE_ALREADY_EXISTS')(r.reason));
          const winner = results.findIndex((r) => r.status === 'fulfilled');
          assert.deepEqual(await store.get('race'), Buffer.from(`writer-${winner}`));
        }
      }),
    );

    test(
      'delete removes the object from get, stat and list',
      withStore(async (store) => {
        await store.put('d/1', Buffer.from('1'));
        await store.put('d/2', Buffer.from('2'));
        await store.delete('d/1');
        await assert.rejects(store.get('d/1'), isStorageError('STORAGE_NOT_FOUND'));
        assert.equal(await store.stat('d/1'), undefined);
        assert.deepEqual(await collect(store, 'd/'), ['d/2']);
        await store.delete('d/2');
        assert.deepEqual(await collect(store, ''), []);
        await store.delete('d/2');
        // the prefix is usable again after everything under it went away
        await store.put('d/3', Buffer.from('3'));
        assert.deepEqual(await collect(store, ''), ['d/3']);
      }),
    );

    test(
      'list: lexicographic key order, prefixes, sizes',
      withStore(async (store) => {
        const keys = ['b', 'a/b/c', 'a-c', 'a.b', 'ab', 'a/b0', 'a/a', 'A', 'a0/x', 'z/y/x/w'];
        await Promise.all(keys.map((key, i) => store.put(key, Buffer.alloc(i, 7))));
        const sorted = [...keys].sort();
        assert.deepEqual(inOrder(await collect(store, '')), sorted);
        assert.deepEqual(inOrder(await collect(store, 'a/')), ['a/a', 'a/b/c', 'a/b0']);
        assert.deepEqual(inOrder(await collect(store, 'a/b')), ['a/b/c', 'a/b0']);
        assert.deepEqual(
          inOrder(await collect(store, 'a')),
          sorted.filter((k) => k.startsWith('a')),
        );
        assert.deepEqual(inOrder(await collect(store, 'q')), []);
        assert.deepEqual(inOrder(await collect(store, 'z/y/')), ['z/y/x/w']);
        for await (const info of store.list('')) {
          assert.equal(info.sizeBytes, keys.indexOf(info.key), `size of ${info.key}`);
        }
      }),
    );

    test(
      `list pages through ${paginationKeys} keys`,
      withStore(async (store) => {
        const key = (i: number): string => `p/${String(i).padStart(5, '0')}`;
        await inParallel(paginationKeys, 32, (i) => store.put(key(i), Buffer.from([i & 0xff])));
        await store.put('pz', Buffer.from('outside the prefix'));
        const listed = await collect(store, 'p/');
        assert.equal(listed.length, paginationKeys);
        assert.deepEqual(
          listed,
          Array.from({ length: paginationKeys }, (_, i) => key(i)),
        );
      }),
    );

    test(
      'invalid keys and prefixes are rejected with INVALID_KEY',
      withStore(async (store) => {
        const bad = ['', '/a', 'a/', 'a//b', '../x', 'a/../b', 'a/./b', 'a b', 'a\u0000', 'é', '.'];
        for (const key of bad) {
          const invalid = isStorageError('STORAGE_INVALID_KEY');
          await assert.rejects(store.put(key, Buffer.from('x')), invalid, JSON.stringify(key));
          await assert.rejects(store.get(key), invalid, JSON.stringify(key));
          await assert.rejects(store.stat(key), invalid, JSON.stringify(key));
          await assert.rejects(store.delete(key), invalid, JSON.stringify(key));
        }
        for (const prefix of ['/a', '../', 'a//', 'a b']) {
          await assert.rejects(
            collect(store, prefix),
            isStorageError('STORAGE_INVALID_KEY'),
            prefix,
          );
        }
        assert.deepEqual(await collect(store, ''), []);
      }),
    );

    test(
      `large object (${largeObjectBytes} bytes) round-trips, ranges across parts`,
      withStore(async (store) => {
        const body = randomBytes(largeObjectBytes);
        await store.put('big/object', body);
        assert.equal((await store.stat('big/object'))?.sizeBytes, largeObjectBytes);
        assert.ok((await store.get('big/object')).equals(body), 'whole object equal');
        const mid = Math.floor(largeObjectBytes / 2);
        const boundary = 5 * 1024 * 1024;
        for (const offsetBytes of [0, mid - 100, Math.min(boundary - 10, largeObjectBytes - 20)]) {
          const slice = await store.get('big/object', { offsetBytes, lengthBytes: 20 });
          assert.ok(
            slice.equals(body.subarray(offsetBytes, offsetBytes + 20)),
            `at ${offsetBytes}`,
          );
        }
        const tail = await store.get('big/object', { offsetBytes: largeObjectBytes - 7 });
        assert.ok(tail.equals(body.subarray(largeObjectBytes - 7)));
      }),
    );

    test(
      `${concurrentPuts} concurrent puts, and racing overwrites of one key stay whole`,
      withStore(async (store) => {
        const bodies = Array.from({ length: concurrentPuts }, () => randomBytes(4096 + 13));
        await Promise.all(bodies.map((body, i) => store.put(`c/${i}`, body)));
        for (const [i, body] of bodies.entries()) assert.deepEqual(await store.get(`c/${i}`), body);
        await Promise.all(bodies.slice(0, 6).map((body) => store.put('same', body)));
        const final = await store.get('same');
        assert.ok(
          bodies.slice(0, 6).some((body) => body.equals(final)),
          'the object is one whole body',
        );
        const listed = await collect(store, '');
        assert.equal(listed.length, concurrentPuts + 1, 'no temporary or partial objects listed');
      }),
    );

    test(
      'an aborted signal stops a put before anything is written',
      withStore(async (store) => {
        const controller = new AbortController();
        controller.abort();
        await assert.rejects(store.put('aborted', Buffer.from('x'), { signal: controller.signal }));
        assert.equal(await store.stat('aborted'), undefined);
      }),
    );

    test(
      'properties name the store without secrets',
      withStore(async (store) => {
        assert.ok(store.properties.displayName.length > 0);
        assert.ok(store.properties.maxConcurrency >= 1);
        assert.doesNotMatch(store.properties.displayName, /secret|testing|S3RVER@/i);
      }),
    );
  });
}
