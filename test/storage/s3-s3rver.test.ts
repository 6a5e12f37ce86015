// The S3 store against s3rver, the quick S3 tier: the conformance suite (small pagination; the
// > 1000-key and strict multipart checks run on Swift) and the conditional-put probe finding.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { openS3Store } from '../../src/storage/s3-open.ts';
import { S3ObjectStore, type S3StoreConfig } from '../../src/storage/s3-store.ts';
import { startS3rver, type S3rverServer } from '../harness/index.ts';
import { describeObjectStoreConformance } from './conformance.ts';

let s3rver: S3rverServer | undefined;
let runs = 0;

function config(overrides: Partial<S3StoreConfig> = {}): S3StoreConfig {
  if (s3rver === undefined) throw new Error('s3rver is not running');
  return {
    endpoint: s3rver.endpoint,
    region: s3rver.region,
    bucket: s3rver.bucket,
    accessKeyId: s3rver.accessKeyId,
    secretAccessKey: s3rver.secretAccessKey,
    partSizeBytes: 5 * 1024 * 1024,
    ...overrides,
  };
}

before(async () => {
  s3rver = await startS3rver();
});

after(async () => {
  await s3rver?.stop();
});

describeObjectStoreConformance(
  'S3 on s3rver',
  async () => {
    runs += 1;
    const store = new S3ObjectStore({
      ...config({ prefix: `run-${runs}`, listPageKeys: 7 }),
      conditionalPut: false,
    });
    return {
      store,
      cleanup: async () => {
        const keys: string[] = [];
        const cleaner = new S3ObjectStore({
          ...config({ prefix: store.prefix }),
          conditionalPut: false,
        });
        for await (const info of cleaner.list('')) keys.push(info.key);
        // One by one: s3rver fails DeleteObjects of many keys sharing a folder (HTTP 500).
        for (const key of keys) await cleaner.delete(key);
        await cleaner.close();
      },
    };
  },
  { paginationKeys: 40, largeObjectBytes: 11 * 1024 * 1024, lexicographicList: false },
);

test('s3rver ignores If-None-Match: * (the probe says false)', async () => {
  const store = await openS3Store(config({ prefix: 'probe' }));
  try {
    assert.equal(store.properties.conditionalPut, false);
    const left = [];
    for await (const info of store.list('')) left.push(info.key);
    assert.deepEqual(left, []);
  } finally {
    await store.close();
  }
});
