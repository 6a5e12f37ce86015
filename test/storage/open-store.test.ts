// Store configuration: validation errors name the field; openStore wraps the store; testStore
// passes on a working store and reports the failing step with the underlying typed error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  FaultInjectingStore,
  MemoryObjectStore,
  openStore,
  parseStoreConfig,
  StorageError,
  testStore,
} from '../../src/storage/index.ts';
import { makeTempDir } from '../harness/index.ts';
import { isStorageError } from './conformance.ts';

test('invalid configs are STORAGE_CONFIG naming the field, never echoing secrets', () => {
  const cases: [unknown, RegExp][] = [
    [{ type: 'ftp', path: '/x' }, /type/],
    [{ type: 'local' }, /path/],
    [{ type: 'local', path: '/x', extra: 1 }, /extra/],
    [{ type: 's3', endpoint: 'not a url', region: 'r', bucket: 'bucket' }, /endpoint/],
    [{ type: 's3', endpoint: 'http://h:1', region: 'r' }, /bucket/],
    [
      {
        type: 's3',
        endpoint: 'http://h:1',
        region: 'r',
        bucket: 'bucket',
        secretAccessKey: 42,
        accessKeyId: 'k',
      },
      /secretAccessKey/,
    ],
    [{ type: 'memory', maxConcurrency: 0 }, /maxConcurrency/],
    ['local', /root|type/],
  ];
  for (const [input, field] of cases) {
    assert.throws(
      () => parseStoreConfig(input),
      (error: unknown) => {
        assert.ok(error instanceof StorageError);
        assert.equal(error.code, 'STORAGE_CONFIG');
        assert.match(error.message, field);
        return true;
      },
      JSON.stringify(input),
    );
  }
  assert.throws(
    () =>
      parseStoreConfig({
        type: 's3',
        endpoint: 'ftp://h',
        region: 'r',
        bucket: 'bucket',
        secretAccessKey: 'hunter2-secret',
      }),
    (error: unknown) => error instanceof StorageError && !error.message.includes('hunter2'),
  );
});

test('openStore opens a local folder with wrappers, and testStore passes on it', async () => {
  const tmp = await makeTempDir();
  try {
    const store = await openStore({ type: 'local', path: join(tmp.path, 'r'), maxConcurrency: 3 });
    assert.equal(store.properties.maxConcurrency, 3);
    assert.match(store.properties.displayName, /^local:/);
    const result = await testStore(store);
    assert.equal(result.conditionalPut, true);
    const left = [];
    for await (const info of store.list('')) left.push(info.key);
    assert.deepEqual(left, [], 'the probe object is removed');
    await store.close();
  } finally {
    await tmp.remove();
  }
});

test('testStore reports the failing step with the underlying code', async () => {
  const memory = await openStore({ type: 'memory', bandwidthBytesPerSecond: 1 << 30 });
  assert.equal((await testStore(memory)).displayName, 'memory:default');
  const denied = new FaultInjectingStore(new MemoryObjectStore(), {
    failWhen: (operation) =>
      operation === 'get' ? new StorageError('STORAGE_AUTH', 'access denied') : undefined,
  });
  await assert.rejects(testStore(denied), (error: unknown) => {
    assert.ok(isStorageError('STORAGE_AUTH')(error));
    assert.ok(error instanceof StorageError);
    assert.equal(error.details['step'], 'read');
    assert.match(error.message, /faulty\(memory:default\).*\(read\)/);
    return true;
  });
  const keys = [];
  for await (const info of denied.inner.list('')) keys.push(info.key);
  assert.deepEqual(keys, [], 'the probe object is cleaned up after a failed read');
});
