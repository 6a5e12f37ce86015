/**
 * The repository suites on an S3 store (s3rver, the quick S3 tier started by the harness): the
 * same basics, model, crash, corruption and copy tests as on memory and local stores, with fewer
 * property-test runs. s3rver has no atomic put-if-absent, so the lease suite (which needs it, or a
 * settle delay a manual clock cannot pass) is covered by its non-atomic fallback test instead.
 * Swift runs are added the same way by the lead (a factory on the Swift harness).
 */
import { after, before } from 'node:test';
import { RetryingStore, type ObjectStore } from '../../src/storage/index.ts';
import { S3ObjectStore } from '../../src/storage/s3-store.ts';
import { startS3rver, type S3rverServer } from '../harness/index.ts';
import type { StoreFactory } from './helpers.ts';

let server: S3rverServer | undefined;
let runs = 0;

before(async () => {
  server = await startS3rver('vmdelta-repo');
});

after(async () => {
  await server?.stop();
});

function s3Store(prefix: string): S3ObjectStore {
  if (server === undefined) throw new Error('s3rver is not running');
  return new S3ObjectStore({
    endpoint: server.endpoint,
    region: server.region,
    bucket: server.bucket,
    accessKeyId: server.accessKeyId,
    secretAccessKey: server.secretAccessKey,
    prefix,
    conditionalPut: false,
  });
}

const s3rverFactory: StoreFactory = {
  name: 's3rver',
  runsScale: 0.03,
  create: async () => {
    runs += 1;
    const prefix = `repo-${runs}`;
    // As in production, through the retry wrapper: s3rver answers HTTP 500 to some concurrent
    // deletes in one folder (its own race), which the store maps to a retryable error.
    const s3 = s3Store(prefix);
    const store: ObjectStore = new RetryingStore(s3, { baseDelayMs: 5, maxDelayMs: 50 });
    return {
      store,
      cleanup: async () => {
        const keys: string[] = [];
        for await (const info of store.list('')) keys.push(info.key);
        for (const key of keys) await store.delete(key);
        await s3.close();
      },
    };
  },
};

(
  globalThis as { vmdeltaRepositoryStoreFactories?: readonly StoreFactory[] }
).vmdeltaRepositoryStoreFactories = [s3rverFactory];
await import('./repository-basics.test.ts');
await import('./repository-model.test.ts');
await import('./repository-crash.test.ts');
await import('./repository-corruption.test.ts');
await import('./copy.test.ts');
