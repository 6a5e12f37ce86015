/**
 * Maps AWS SDK errors to typed storage errors. The storage layer decides what is retryable:
 * server errors (5xx), throttling and network failures are; missing objects, refused credentials
 * and malformed requests are not. Messages name the operation and key, never credentials.
 */
import { CoreError } from '../core/index.ts';
import { StorageError } from './errors.ts';

interface SdkErrorShape {
  readonly name?: unknown;
  readonly code?: unknown;
  readonly message?: unknown;
  readonly $metadata?: { readonly httpStatusCode?: number };
}

const authNames = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'AccessDenied',
  'InvalidToken',
  'ExpiredToken',
  'TokenRefreshRequired',
  'AuthorizationHeaderMalformed',
  'InvalidSecurity',
  'CredentialsProviderError',
]);

const throttleNames = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'RequestThrottled',
  'TooManyRequestsException',
  'RequestTimeout',
  'RequestTimeoutException',
  'InternalError',
  'ServiceUnavailable',
  'TimeoutError',
]);

const networkCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ENOTFOUND',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
]);

function shapeOf(error: unknown): SdkErrorShape {
  return typeof error === 'object' && error !== null ? error : {};
}

export function s3ErrorName(error: unknown): string {
  const name = shapeOf(error).name;
  return typeof name === 'string' ? name : 'Error';
}

export function s3HttpStatus(error: unknown): number | undefined {
  return shapeOf(error).$metadata?.httpStatusCode;
}

/** The errno-like code of a network failure, looking through `cause` chains and aggregates. */
function networkCode(error: unknown, depth = 0): string | undefined {
  if (depth > 4 || typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && networkCodes.has(code)) return code;
  const nested = (error as { errors?: unknown }).errors;
  if (Array.isArray(nested))
    for (const inner of nested) {
      const found = networkCode(inner, depth + 1);
      if (found !== undefined) return found;
    }
  return networkCode((error as { cause?: unknown }).cause, depth + 1);
}

/** Typed error for a failed S3 call on `key` (already a StorageError or CoreError: unchanged). */
export function mapS3Error(
  operation: string,
  key: string,
  error: unknown,
  signal?: AbortSignal,
): Error {
  if (error instanceof StorageError || error instanceof CoreError) return error;
  const name = s3ErrorName(error);
  if (signal?.aborted === true || name === 'AbortError')
    return new CoreError('CANCELLED', `${operation} ${key} cancelled`, { cause: error });
  const status = s3HttpStatus(error);
  const details = { key, operation, s3Error: name, httpStatus: status };
  const where = `${operation} ${key}`;
  if (name === 'NoSuchKey' || (status === 404 && name !== 'NoSuchBucket'))
    return new StorageError('STORAGE_NOT_FOUND', `${key} not found`, { cause: error, details });
  if (name === 'NoSuchBucket')
    return new StorageError('STORAGE_CONFIG', `${where}: the bucket does not exist`, {
      cause: error,
      details,
    });
  if (authNames.has(name) || status === 403 || status === 401)
    return new StorageError(
      'STORAGE_AUTH',
      `${where}: the server refused the credentials (${name}); check the access key and secret`,
      { cause: error, details },
    );
  if (name === 'PreconditionFailed' || status === 412 || name === 'ConditionalRequestConflict')
    return new StorageError('STORAGE_ALREADY_EXISTS', `${key} already exists`, {
      cause: error,
      details,
    });
  if (name === 'InvalidRange' || status === 416)
    return new StorageError('STORAGE_INVALID_RANGE', `${where}: range outside the object`, {
      cause: error,
      details,
    });
  const network = networkCode(error);
  const retryable =
    network !== undefined ||
    throttleNames.has(name) ||
    status === 429 ||
    (status !== undefined && status >= 500 && status !== 501);
  const message = typeof shapeOf(error).message === 'string' ? String(shapeOf(error).message) : '';
  return new StorageError(
    'STORAGE_IO',
    `${where} failed: ${network ?? name}${status === undefined ? '' : ` (HTTP ${status})`}${message === '' ? '' : `: ${message.slice(0, 200)}`}`,
    { cause: error, retryable, details: { ...details, network } },
  );
}
