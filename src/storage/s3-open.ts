/**
 * Opening an S3 store: probing whether the server honours conditional puts (`If-None-Match: *`),
 * which decides `properties.conditionalPut` (findings and fallback in docs/design.md §3.4).
 */
import { randomBytes } from 'node:crypto';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { StorageError } from './errors.ts';
import { mapS3Error } from './s3-errors.ts';
import { S3ObjectStore, type S3StoreConfig } from './s3-store.ts';

/**
 * Whether the server honours `If-None-Match: *` on PutObject: a first conditional put of a fresh
 * key must succeed and a second must fail with 412. Servers that reject the header (Swift s3api:
 * 501 NotImplemented) or ignore it (the second put succeeds) do not. The probe object is deleted.
 */
export async function probeConditionalPut(store: S3ObjectStore): Promise<boolean> {
  const key = `.vmdelta-probe-${randomBytes(8).toString('hex')}`;
  const put = (): Promise<unknown> =>
    store.client.send(
      new PutObjectCommand({
        Bucket: store.bucket,
        Key: store.prefix + key,
        Body: Buffer.from('probe'),
        IfNoneMatch: '*',
      }),
    );
  try {
    try {
      await put();
    } catch (error) {
      const mapped = mapS3Error('probe', key, error);
      if (
        !(mapped instanceof StorageError) ||
        mapped.retryable ||
        mapped.code === 'STORAGE_AUTH' ||
        mapped.code === 'STORAGE_CONFIG'
      )
        throw mapped;
      return false; // NotImplemented, InvalidRequest...: the header is not supported
    }
    try {
      await put();
      return false; // the header was ignored
    } catch (error) {
      const mapped = mapS3Error('probe', key, error);
      if (mapped instanceof StorageError && mapped.code === 'STORAGE_ALREADY_EXISTS') return true;
      throw mapped;
    }
  } finally {
    await store.delete(key).catch(() => undefined);
  }
}

/** Opens an S3 store, probing conditional-put support unless the config states it. */
export async function openS3Store(config: S3StoreConfig): Promise<S3ObjectStore> {
  if (config.conditionalPut !== undefined)
    return new S3ObjectStore({ ...config, conditionalPut: config.conditionalPut });
  const probing = new S3ObjectStore({ ...config, conditionalPut: false });
  let supported: boolean;
  try {
    supported = await probeConditionalPut(probing);
  } catch (error) {
    await probing.close();
    throw error;
  }
  return new S3ObjectStore({ ...config, conditionalPut: supported }, probing.client);
}
