// The S3 store against OpenStack Swift + s3api (the real-S3 tier): the conformance suite with
// multipart uploads and > 1000 keys, plus what only S3 has: the conditional-put probe, typed
// errors for wrong credentials and an unreachable server, DeleteObjects (Content-MD5),
// incomplete multipart uploads, prefixes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { openStore, StorageError, testStore } from '../../src/storage/index.ts';
import { openS3Store, probeConditionalPut } from '../../src/storage/s3-open.ts';
import { S3ObjectStore, type S3StoreConfig } from '../../src/storage/s3-store.ts';
import { freePort, isAlive, startSwift, type SwiftServer } from '../harness/index.ts';
import { describeObjectStoreConformance, isStorageError } from './conformance.ts';

const BUCKET = 'vmdelta-test';
let swift: SwiftServer | undefined;
let runs = 0;

function config(overrides: Partial<S3StoreConfig> = {}): S3StoreConfig {
  if (swift === undefined) throw new Error('Swift is not running');
  return {
    endpoint: swift.endpoint,
    region: swift.region,
    bucket: BUCKET,
    forcePathStyle: true,
    accessKeyId: swift.accessKeyId,
    secretAccessKey: swift.secretAccessKey,
    partSizeBytes: 5 * 1024 * 1024,
    conditionalPut: false,
    ...overrides,
  };
}

before(async () => {
  swift = await startSwift();
  const store = new S3ObjectStore({ ...config(), conditionalPut: false });
  await store.client.send(new CreateBucketCommand({ Bucket: BUCKET }));
  await store.close();
});

after(async () => {
  await swift?.stop();
  for (const pid of swift?.pids ?? [])
    assert.equal(isAlive(pid), false, `Swift pid ${pid} stopped`);
});

describeObjectStoreConformance(
  'S3 on OpenStack Swift',
  async () => {
    runs += 1;
    const store = new S3ObjectStore({
      ...config({ prefix: `conformance-${runs}` }),
      conditionalPut: false,
    });
    return {
      store,
      // Each test has its own prefix and the server is discarded after the file: nothing to
      // clean (deleteMany has its own test below).
      cleanup: async () => undefined,
    };
  },
  { paginationKeys: 1100, largeObjectBytes: 12 * 1024 * 1024 + 3 },
);

describe('S3 store on Swift: what only S3 has', () => {
  test('Swift s3api does not support If-None-Match: * (probe says false; openS3Store records it)', async () => {
    const store = await openS3Store(config({ prefix: 'probe', conditionalPut: undefined }));
    try {
      assert.equal(store.properties.conditionalPut, false);
      assert.equal(await probeConditionalPut(store), false);
      const left = [];
      for await (const info of store.list('')) left.push(info.key);
      assert.deepEqual(left, [], 'the probe object is deleted');
      // The fallback (HEAD then PUT) still refuses an existing key.
      await store.put('lease', Buffer.from('a'), { ifAbsent: true });
      await assert.rejects(
        store.put('lease', Buffer.from('b'), { ifAbsent: true }),
        isStorageError('STORAGE_ALREADY_EXISTS'),
      );
      await store.delete('lease');
    } finally {
      await store.close();
    }
  });

  test('a multipart object gets a multipart ETag (12 MiB in 5 MiB parts)', async () => {
    const store = new S3ObjectStore({ ...config({ prefix: 'etag' }), conditionalPut: false });
    try {
      const body = Buffer.alloc(12 * 1024 * 1024, 0x5a);
      await store.put('big', body);
      const { HeadObjectCommand } = await import('@aws-sdk/client-s3');
      const head = await store.client.send(
        new HeadObjectCommand({ Bucket: BUCKET, Key: 'etag/big' }),
      );
      assert.match(head.ETag ?? '', /-3"$/, 'three parts');
      await store.delete('big');
    } finally {
      await store.close();
    }
  });

  test('wrong credentials give a typed, non-retryable STORAGE_AUTH without the secret', async () => {
    for (const wrong of [
      { accessKeyId: 'test:nobody', secretAccessKey: 'whatever-secret-1' },
      { secretAccessKey: 'not-the-secret-2' },
    ]) {
      const store = new S3ObjectStore({ ...config(wrong), conditionalPut: false });
      try {
        for (const call of [
          () => store.put('x', Buffer.from('x')),
          () => store.get('x'),
          () => store.stat('x'),
          async () => {
            for await (const _ of store.list('')) break;
          },
        ]) {
          await assert.rejects(call(), (error: unknown) => {
            assert.ok(error instanceof StorageError);
            assert.equal(error.code, 'STORAGE_AUTH', error.message);
            assert.equal(error.retryable, false);
            assert.doesNotMatch(error.message, /secret-1|secret-2/);
            return true;
          });
        }
        assert.doesNotMatch(store.properties.displayName, /secret|nobody/);
      } finally {
        await store.close();
      }
    }
  });

  test('an unreachable server gives a retryable STORAGE_IO', async () => {
    const port = await freePort();
    const store = new S3ObjectStore({
      ...config({ endpoint: `http://127.0.0.1:${port}`, connectTimeoutMs: 2000 }),
      conditionalPut: false,
    });
    try {
      for (const call of [() => store.put('x', Buffer.from('x')), () => store.get('x')]) {
        await assert.rejects(call(), (error: unknown) => {
          assert.ok(error instanceof StorageError);
          assert.equal(error.code, 'STORAGE_IO', error.message);
          assert.equal(error.retryable, true, error.message);
          assert.match(error.message, /ECONNREFUSED/);
          return true;
        });
      }
      await assert.rejects(
        openS3Store(config({ endpoint: `http://127.0.0.1:${port}`, conditionalPut: undefined })),
        isStorageError('STORAGE_IO'),
      );
    } finally {
      await store.close();
    }
  });

  test('a missing bucket is a configuration error', async () => {
    const store = new S3ObjectStore({
      ...config({ bucket: 'no-such-bucket' }),
      conditionalPut: false,
    });
    try {
      await assert.rejects(store.put('x', Buffer.from('x')), isStorageError('STORAGE_CONFIG'));
    } finally {
      await store.close();
    }
  });

  test('deleteMany (DeleteObjects with Content-MD5) deletes present and absent keys', async () => {
    const store = new S3ObjectStore({ ...config({ prefix: 'batch' }), conditionalPut: false });
    try {
      const keys = Array.from({ length: 40 }, (_, i) => `k/${i}`);
      await Promise.all(keys.map((key) => store.put(key, Buffer.from(key))));
      await store.deleteMany([...keys, 'never/written']);
      const left = [];
      for await (const info of store.list('')) left.push(info.key);
      assert.deepEqual(left, []);
    } finally {
      await store.close();
    }
  });

  test('prefixes isolate stores; foreign keys that are not valid keys are skipped', async () => {
    const a = new S3ObjectStore({ ...config({ prefix: 'iso/a' }), conditionalPut: false });
    const b = new S3ObjectStore({ ...config({ prefix: 'iso/a2/' }), conditionalPut: false });
    try {
      await a.put('x', Buffer.from('a'));
      await b.put('x', Buffer.from('b'));
      await a.client.send(
        new PutObjectCommand({ Bucket: BUCKET, Key: 'iso/a/bad//key', Body: 'z' }),
      );
      const listed = [];
      for await (const info of a.list('')) listed.push(info.key);
      assert.deepEqual(listed, ['x']);
      assert.deepEqual(await b.get('x'), Buffer.from('b'));
      assert.equal(
        a.properties.displayName,
        `s3:${new URL(config().endpoint ?? '').host}/${BUCKET}/iso/a/`,
      );
      await a.deleteMany(['x']);
      await b.delete('x');
      await a.client.send(
        new (await import('@aws-sdk/client-s3')).DeleteObjectCommand({
          Bucket: BUCKET,
          Key: 'iso/a/bad//key',
        }),
      );
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('sweepIncompleteUploads aborts multipart uploads a crash left behind', async () => {
    const store = new S3ObjectStore({ ...config({ prefix: 'sweep' }), conditionalPut: false });
    try {
      await store.client.send(
        new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: 'sweep/half' }),
      );
      assert.equal(await store.sweepIncompleteUploads(60_000), 0, 'a recent upload may be running');
      assert.equal(await store.sweepIncompleteUploads(0, Date.now() + 1000), 1);
      assert.equal(await store.sweepIncompleteUploads(0, Date.now() + 1000), 0);
    } finally {
      await store.close();
    }
  });

  test('openStore + testStore: a working S3 config passes, a wrong secret fails testStore with STORAGE_AUTH', async () => {
    const good = { type: 's3', ...config({ prefix: 'tested' }), conditionalPut: undefined };
    delete good.partSizeBytes;
    const store = await openStore(good);
    try {
      const result = await testStore(store);
      assert.equal(result.conditionalPut, false);
      assert.match(result.displayName, /^s3:127\.0\.0\.1:\d+\/vmdelta-test\/tested\/$/);
    } finally {
      await store.close();
    }
    // Swift answers the If-None-Match probe with 501 before checking the signature, so opening
    // succeeds; testStore is what finds out.
    const wrong = await openStore({ ...good, secretAccessKey: 'wrong-secret-3' });
    try {
      await assert.rejects(testStore(wrong), (error: unknown) => {
        assert.ok(isStorageError('STORAGE_AUTH')(error));
        assert.match((error as Error).message, /connectivity test \(write\)/);
        assert.doesNotMatch((error as Error).message, /wrong-secret-3/);
        return true;
      });
    } finally {
      await wrong.close();
    }
  });
});
