/**
 * An ObjectStore on an S3-compatible bucket (AWS S3, Ceph RGW, MinIO, Swift s3api...), keys under
 * an optional prefix.
 *
 * - put: one PutObject up to `partSizeBytes`, else a lib-storage multipart upload whose part size
 *   is chosen from the known length (max(partSizeBytes, ceil(length / 10 000)) rounded up to a
 *   MiB, so any object up to 5 TiB fits in S3's 10 000 parts). S3 makes an object visible only
 *   when its PutObject or CompleteMultipartUpload succeeds: readers never see a partial object.
 *   A crash mid-upload leaves an incomplete multipart upload (invisible, but stored):
 *   `sweepIncompleteUploads` aborts old ones (or use a bucket lifecycle rule).
 * - put-if-absent: PutObject with `If-None-Match: *` when the server honours it
 *   (`properties.conditionalPut`, probed by openS3Store in s3-open.ts: a second conditional put of the same key
 *   must fail with 412). Otherwise a HEAD then PUT, which is not atomic: two writers racing on the
 *   same key can both succeed. The repository must not rely on it for mutual exclusion when
 *   `conditionalPut` is false (docs/design.md §3). Always a single PutObject (≤ 5 GiB).
 * - get: ranged GETs are checked against Content-Range, since S3 truncates a range that runs past
 *   the end instead of failing; a zero-length range and a range starting at the end are answered
 *   from a HEAD (HTTP ranges cannot express them).
 * - list: ListObjectsV2, 1000 keys per page, in the server's (byte) order; keys no ObjectStore
 *   could have written (not valid keys) are skipped.
 */
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  AbortMultipartUploadCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { MiB, ceilDiv, throwIfAborted } from '../core/index.ts';
import { StorageError } from './errors.ts';
import { checkObjectKey, checkObjectPrefix } from './object-key.ts';
import type {
  ByteRange,
  ObjectInfo,
  ObjectStore,
  PutOptions,
  StoreProperties,
  GetOptions,
} from './object-store.ts';
import { createS3Client, endpointHost, withSignal, type S3ConnectionConfig } from './s3-client.ts';
import { mapS3Error } from './s3-errors.ts';
import { readS3Range } from './s3-range.ts';

export interface S3StoreConfig extends S3ConnectionConfig {
  readonly bucket: string;
  /** Key prefix inside the bucket ("" or ending in '/'; a missing '/' is added). */
  readonly prefix?: string | undefined;
  /** Objects above this go multipart, in parts at least this big (default 16 MiB, min 5 MiB). */
  readonly partSizeBytes?: number | undefined;
  /** Parts uploaded at once per multipart upload (default 4). */
  readonly queueSize?: number | undefined;
  readonly maxConcurrency?: number | undefined;
  /** Keys per ListObjectsV2 page (default and maximum 1000; small values exercise paging). */
  readonly listPageKeys?: number | undefined;
  /** Skip the probe and declare whether If-None-Match: * is honoured. */
  readonly conditionalPut?: boolean | undefined;
}

const MAX_PARTS = 10_000;
const MIN_PART_BYTES = 5 * MiB;

/** The part size for an object of `lengthBytes`: enough that it fits in 10 000 parts. */
export function choosePartSizeBytes(lengthBytes: number, minimumBytes: number): number {
  const needed = Math.max(minimumBytes, MIN_PART_BYTES, ceilDiv(lengthBytes, MAX_PARTS));
  return ceilDiv(needed, MiB) * MiB;
}

export function normalizePrefix(prefix: string | undefined): string {
  if (prefix === undefined || prefix === '' || prefix === '/') return '';
  const trimmed = prefix.replace(/^\/+/, '').replace(/\/+$/, '');
  try {
    checkObjectKey(trimmed);
  } catch (error) {
    throw new StorageError('STORAGE_CONFIG', `S3 store: invalid prefix ${JSON.stringify(prefix)}`, {
      cause: error,
      details: { field: 'prefix' },
    });
  }
  return `${trimmed}/`;
}

export class S3ObjectStore implements ObjectStore {
  readonly properties: StoreProperties;
  readonly client: S3Client;
  readonly bucket: string;
  readonly prefix: string;
  readonly #partSizeBytes: number;
  readonly #queueSize: number;
  readonly #listPageKeys: number;

  constructor(config: S3StoreConfig & { conditionalPut: boolean }, client?: S3Client) {
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(config.bucket))
      throw new StorageError('STORAGE_CONFIG', `S3 store: invalid bucket name`, {
        details: { field: 'bucket' },
      });
    this.client = client ?? createS3Client(config);
    this.bucket = config.bucket;
    this.prefix = normalizePrefix(config.prefix);
    this.#partSizeBytes = Math.max(MIN_PART_BYTES, config.partSizeBytes ?? 16 * MiB);
    this.#queueSize = config.queueSize ?? 4;
    this.#listPageKeys = Math.min(1000, Math.max(1, config.listPageKeys ?? 1000));
    this.properties = {
      displayName: `s3:${endpointHost(config.endpoint, config.region)}/${config.bucket}/${this.prefix}`,
      maxConcurrency: config.maxConcurrency ?? 16,
      conditionalPut: config.conditionalPut,
    };
  }

  async put(key: string, body: Buffer, options: PutOptions = {}): Promise<void> {
    checkObjectKey(key);
    const signal = options.signal;
    throwIfAborted(signal);
    const params = { Bucket: this.bucket, Key: this.prefix + key, Body: body };
    try {
      if (options.ifAbsent === true) {
        if (!this.properties.conditionalPut && (await this.stat(key)) !== undefined)
          throw new StorageError('STORAGE_ALREADY_EXISTS', `${key} already exists`, {
            details: { key },
          });
        await this.client.send(
          new PutObjectCommand({
            ...params,
            ContentLength: body.length,
            ...(this.properties.conditionalPut ? { IfNoneMatch: '*' } : {}),
          }),
          withSignal(signal),
        );
      } else if (body.length <= this.#partSizeBytes) {
        await this.client.send(
          new PutObjectCommand({ ...params, ContentLength: body.length }),
          withSignal(signal),
        );
      } else {
        await this.#putMultipart(params, signal);
      }
    } catch (error) {
      throw mapS3Error('put', key, error, signal);
    }
  }

  async #putMultipart(
    params: { Bucket: string; Key: string; Body: Buffer },
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const abortController = new AbortController();
    const onAbort = (): void => abortController.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const upload = new Upload({
        client: this.client,
        params,
        partSize: choosePartSizeBytes(params.Body.length, this.#partSizeBytes),
        queueSize: this.#queueSize,
        leavePartsOnError: false,
        abortController,
      });
      await upload.done();
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  async get(key: string, range?: ByteRange, options?: GetOptions): Promise<Buffer> {
    checkObjectKey(key);
    const signal = options?.signal;
    throwIfAborted(signal);
    try {
      return await readS3Range({
        client: this.client,
        bucket: this.bucket,
        objectKey: this.prefix + key,
        key,
        range,
        signal,
        stat: () => this.stat(key),
      });
    } catch (error) {
      throw mapS3Error('get', key, error, signal);
    }
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    checkObjectKey(key);
    try {
      const head = await this.client.send(
        new HeadObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }),
      );
      return {
        key,
        sizeBytes: head.ContentLength ?? 0,
        modifiedMs: head.LastModified?.getTime() ?? 0,
      };
    } catch (error) {
      const mapped = mapS3Error('stat', key, error);
      if (mapped instanceof StorageError && mapped.code === 'STORAGE_NOT_FOUND') return undefined;
      throw mapped;
    }
  }

  async *list(prefix: string, options?: { signal?: AbortSignal }): AsyncIterable<ObjectInfo> {
    checkObjectPrefix(prefix);
    const signal = options?.signal;
    let continuationToken: string | undefined;
    do {
      throwIfAborted(signal);
      let page;
      try {
        page = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: this.prefix + prefix,
            MaxKeys: this.#listPageKeys,
            ...(continuationToken === undefined ? {} : { ContinuationToken: continuationToken }),
          }),
          withSignal(signal),
        );
      } catch (error) {
        throw mapS3Error('list', prefix, error, signal);
      }
      for (const object of page.Contents ?? []) {
        const fullKey = object.Key;
        if (fullKey === undefined || !fullKey.startsWith(this.prefix)) continue;
        const key = fullKey.slice(this.prefix.length);
        if (!isValidKey(key)) continue;
        yield {
          key,
          sizeBytes: object.Size ?? 0,
          modifiedMs: object.LastModified?.getTime() ?? 0,
        };
      }
      continuationToken = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } while (continuationToken !== undefined);
  }

  async delete(key: string): Promise<void> {
    checkObjectKey(key);
    try {
      await this.client.send(
        new DeleteObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }),
      );
    } catch (error) {
      const mapped = mapS3Error('delete', key, error);
      if (mapped instanceof StorageError && mapped.code === 'STORAGE_NOT_FOUND') return;
      throw mapped;
    }
  }

  /** Deletes many keys with DeleteObjects (1000 per request); absent keys are fine. */
  async deleteMany(keys: readonly string[]): Promise<void> {
    for (const key of keys) checkObjectKey(key);
    for (let start = 0; start < keys.length; start += 1000) {
      const batch = keys.slice(start, start + 1000);
      let result;
      try {
        result = await this.client.send(
          new DeleteObjectsCommand({
            Bucket: this.bucket,
            Delete: { Objects: batch.map((key) => ({ Key: this.prefix + key })), Quiet: true },
          }),
        );
      } catch (error) {
        throw mapS3Error('delete', `${batch.length} keys from ${batch[0] ?? ''}`, error);
      }
      const failed = (result.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
      if (failed.length > 0) {
        throw new StorageError(
          'STORAGE_IO',
          `delete of ${failed.length} keys failed, first ${failed[0]?.Key ?? '?'}: ${failed[0]?.Code ?? '?'}`,
          { retryable: true, details: { keys: failed.slice(0, 10).map((e) => e.Key) } },
        );
      }
    }
  }

  /** Aborts multipart uploads under the prefix started more than `olderThanMs` ago. */
  async sweepIncompleteUploads(olderThanMs: number, nowMs = Date.now()): Promise<number> {
    let aborted = 0;
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      const page = await this.client
        .send(
          new ListMultipartUploadsCommand({
            Bucket: this.bucket,
            Prefix: this.prefix,
            ...(keyMarker === undefined ? {} : { KeyMarker: keyMarker }),
            ...(uploadIdMarker === undefined ? {} : { UploadIdMarker: uploadIdMarker }),
          }),
        )
        .catch((error: unknown) => {
          throw mapS3Error('list uploads', this.prefix, error);
        });
      for (const upload of page.Uploads ?? []) {
        const started = upload.Initiated?.getTime() ?? nowMs;
        if (nowMs - started < olderThanMs || upload.Key === undefined) continue;
        await this.client
          .send(
            new AbortMultipartUploadCommand({
              Bucket: this.bucket,
              Key: upload.Key,
              UploadId: upload.UploadId,
            }),
          )
          .catch((error: unknown) => {
            throw mapS3Error('abort upload', upload.Key ?? '', error);
          });
        aborted += 1;
      }
      if (page.IsTruncated !== true) return aborted;
      keyMarker = page.NextKeyMarker;
      uploadIdMarker = page.NextUploadIdMarker;
    }
  }

  /** An acknowledged S3 put is durable: nothing to do. */
  sync(): Promise<void> {
    return Promise.resolve();
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}

function isValidKey(key: string): boolean {
  try {
    checkObjectKey(key);
    return true;
  } catch {
    return false;
  }
}
