/**
 * Building the S3Client for the S3 store: endpoint, region, path-style, credentials (from the
 * config, else AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN; never the SDK's
 * default chain, whose instance-metadata lookups hang outside a cloud), timeouts, and the
 * Content-MD5 middleware that DeleteObjects needs on Swift (reference s3.md §2.4).
 *
 * The SDK's own retries are off (maxAttempts 1): retrying is the RetryingStore wrapper's job, so
 * one policy decides, with the storage layer's notion of retryable. Request checksums are computed
 * only when an operation requires them: every block's content is hashed by the repository.
 */
import { createHash } from 'node:crypto';
import { S3Client } from '@aws-sdk/client-s3';
import { StorageError } from './errors.ts';

export interface S3ConnectionConfig {
  /** http(s)://host:port of an S3-compatible server; omitted = AWS for the region. */
  readonly endpoint?: string | undefined;
  readonly region: string;
  readonly forcePathStyle?: boolean | undefined;
  readonly accessKeyId?: string | undefined;
  readonly secretAccessKey?: string | undefined;
  readonly sessionToken?: string | undefined;
  /** TCP connect timeout (default 10 s). */
  readonly connectTimeoutMs?: number | undefined;
  /** Socket inactivity timeout of a request (default 120 s). */
  readonly requestTimeoutMs?: number | undefined;
}

export interface S3Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

export function resolveS3Credentials(
  config: S3ConnectionConfig,
  env: NodeJS.ProcessEnv = process.env,
): S3Credentials {
  const accessKeyId = config.accessKeyId ?? env['AWS_ACCESS_KEY_ID'];
  const secretAccessKey = config.secretAccessKey ?? env['AWS_SECRET_ACCESS_KEY'];
  const sessionToken =
    config.sessionToken ??
    (config.accessKeyId === undefined ? env['AWS_SESSION_TOKEN'] : undefined);
  if (accessKeyId === undefined || accessKeyId === '')
    throw new StorageError(
      'STORAGE_CONFIG',
      'S3 store: no access key (set accessKeyId in the config or AWS_ACCESS_KEY_ID)',
      { details: { field: 'accessKeyId' } },
    );
  if (secretAccessKey === undefined || secretAccessKey === '')
    throw new StorageError(
      'STORAGE_CONFIG',
      'S3 store: no secret key (set secretAccessKey in the config or AWS_SECRET_ACCESS_KEY)',
      { details: { field: 'secretAccessKey' } },
    );
  return sessionToken === undefined || sessionToken === ''
    ? { accessKeyId, secretAccessKey }
    : { accessKeyId, secretAccessKey, sessionToken };
}

/** "host:port" of an endpoint URL, without any user-info, path or query (for display names). */
export function endpointHost(endpoint: string | undefined, region: string): string {
  if (endpoint === undefined) return `s3.${region}.amazonaws.com`;
  try {
    return new URL(endpoint).host;
  } catch {
    throw new StorageError('STORAGE_CONFIG', 'S3 store: the endpoint is not a URL', {
      details: { field: 'endpoint' },
    });
  }
}

export function createS3Client(config: S3ConnectionConfig): S3Client {
  const credentials = resolveS3Credentials(config);
  endpointHost(config.endpoint, config.region); // validates the URL
  const client = new S3Client({
    region: config.region,
    ...(config.endpoint === undefined ? {} : { endpoint: config.endpoint }),
    forcePathStyle: config.forcePathStyle ?? config.endpoint !== undefined,
    credentials,
    maxAttempts: 1,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: {
      connectionTimeout: config.connectTimeoutMs ?? 10_000,
      requestTimeout: config.requestTimeoutMs ?? 120_000,
    },
  });
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const request = (args as { request?: { body?: unknown; headers?: Record<string, string> } })
        .request;
      if (
        context.commandName === 'DeleteObjectsCommand' &&
        request?.headers !== undefined &&
        typeof request.body === 'string'
      ) {
        request.headers['content-md5'] = createHash('md5').update(request.body).digest('base64');
      }
      return next(args);
    },
    { step: 'build', name: 'vmdeltaContentMd5ForDeleteObjects', priority: 'low' },
  );
  return client;
}

/** The SDK's per-request options for an optional abort signal. */
export function withSignal(signal: AbortSignal | undefined): { abortSignal?: AbortSignal } {
  return signal === undefined ? {} : { abortSignal: signal };
}
