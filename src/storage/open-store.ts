/**
 * Opening a store from configuration: a zod-validated config (local folder, S3, memory) plus the
 * wrappers every real store gets (retry outermost, then bandwidth limit, then concurrency limit),
 * and `testStore`, a connectivity check that writes, reads back, stats and deletes a probe object
 * and reports the failing step with a typed error (STORAGE_AUTH, STORAGE_CONFIG, STORAGE_IO...).
 * The S3 implementation (and the AWS SDK) is loaded only when an S3 store is opened.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { isVmdeltaError, type Clock } from '../core/index.ts';
import { StorageError, type StorageErrorCode } from './errors.ts';
import { LimitedStore } from './limited-store.ts';
import { LocalObjectStore } from './local-store.ts';
import { MemoryObjectStore } from './memory-store.ts';
import type { ObjectStore } from './object-store.ts';
import { RetryingStore } from './retrying-store.ts';
import { ThrottledStore } from './throttled-store.ts';

const wrapperFields = {
  /** Requests in flight at once (default: the store's own maxConcurrency). */
  maxConcurrency: z.int().min(1).max(1024).optional(),
  /** Bandwidth limit on object bodies, bytes per second (default: none). */
  bandwidthBytesPerSecond: z.int().min(1).optional(),
  /** Attempts per operation on retryable errors (default 5; 1 = no retry). */
  maxAttempts: z.int().min(1).max(100).optional(),
};

export const storeConfigSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('local'), path: z.string().min(1), ...wrapperFields }),
  z.strictObject({
    type: z.literal('s3'),
    endpoint: z.url({ protocol: /^https?$/ }),
    region: z.string().min(1),
    bucket: z.string().min(3).max(63),
    prefix: z.string().optional(),
    forcePathStyle: z.boolean().optional(),
    accessKeyId: z.string().min(1).optional(),
    secretAccessKey: z.string().min(1).optional(),
    /** Skip the If-None-Match probe and declare support. */
    conditionalPut: z.boolean().optional(),
    partSizeBytes: z
      .int()
      .min(5 * 1024 * 1024)
      .optional(),
    ...wrapperFields,
  }),
  z.strictObject({ type: z.literal('memory'), name: z.string().optional(), ...wrapperFields }),
]);

export type StoreConfig = z.infer<typeof storeConfigSchema>;

/** Validates a store config; STORAGE_CONFIG names every bad field (never echoes values). */
export function parseStoreConfig(input: unknown): StoreConfig {
  const result = storeConfigSchema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map(
    (issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`,
  );
  throw new StorageError('STORAGE_CONFIG', `invalid store config: ${problems.join('; ')}`, {
    details: { fields: result.error.issues.map((issue) => issue.path.join('.')) },
  });
}

export interface OpenStoreOptions {
  readonly clock?: Clock;
}

async function openBase(config: StoreConfig): Promise<ObjectStore> {
  switch (config.type) {
    case 'local':
      return new LocalObjectStore(config.path);
    case 'memory':
      return new MemoryObjectStore(config.name === undefined ? {} : { name: config.name });
    case 's3': {
      const { openS3Store } = await import('./s3-open.ts');
      return openS3Store(config);
    }
  }
}

/** Opens the configured store with its wrappers. `input` is validated first. */
export async function openStore(
  input: unknown,
  options: OpenStoreOptions = {},
): Promise<ObjectStore> {
  const config = parseStoreConfig(input);
  let store = await openBase(config);
  store = new LimitedStore(store, config.maxConcurrency ?? store.properties.maxConcurrency);
  if (config.bandwidthBytesPerSecond !== undefined)
    store = new ThrottledStore(store, {
      bytesPerSecond: config.bandwidthBytesPerSecond,
      ...(options.clock === undefined ? {} : { clock: options.clock }),
    });
  return new RetryingStore(store, {
    maxAttempts: config.maxAttempts ?? 5,
    ...(options.clock === undefined ? {} : { clock: options.clock }),
  });
}

export interface StoreTestResult {
  readonly displayName: string;
  readonly conditionalPut: boolean;
  readonly roundTripMs: number;
}

/**
 * Writes, reads back, stats, lists and deletes a small probe object. Any failure is a
 * StorageError whose code is the underlying one (STORAGE_AUTH for refused credentials,
 * STORAGE_CONFIG for a missing bucket, STORAGE_IO for an unreachable server...) and whose message
 * names the store and the step.
 */
export async function testStore(store: ObjectStore): Promise<StoreTestResult> {
  const started = Date.now();
  const key = `.vmdelta-test-${randomBytes(8).toString('hex')}`;
  const body = randomBytes(64);
  let step = 'write';
  try {
    await store.put(key, body);
    step = 'read';
    const read = await store.get(key);
    if (!read.equals(body))
      throw new StorageError('STORAGE_IO', 'the object read back differs from the one written');
    step = 'stat';
    if ((await store.stat(key))?.sizeBytes !== body.length)
      throw new StorageError('STORAGE_IO', 'stat does not report the written size');
    step = 'list';
    let listed = false;
    for await (const info of store.list(key)) listed ||= info.key === key;
    if (!listed) throw new StorageError('STORAGE_IO', 'the written object is not listed');
    step = 'delete';
    await store.delete(key);
  } catch (error) {
    if (step !== 'write' && step !== 'delete') await store.delete(key).catch(() => undefined);
    const code: StorageErrorCode = error instanceof StorageError ? error.code : 'STORAGE_IO';
    const reason = error instanceof Error ? error.message : String(error);
    throw new StorageError(
      code,
      `store ${store.properties.displayName} failed the connectivity test (${step}): ${reason}`,
      {
        cause: error,
        retryable: isVmdeltaError(error) && error.retryable,
        details: { step, store: store.properties.displayName },
      },
    );
  }
  return {
    displayName: store.properties.displayName,
    conditionalPut: store.properties.conditionalPut,
    roundTripMs: Date.now() - started,
  };
}
