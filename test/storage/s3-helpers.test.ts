// The pure parts of the S3 store: credentials from config or environment, part sizes, prefixes,
// Content-Range parsing, and the error mapping table (what is retryable, what is an auth error).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CoreError, MiB } from '../../src/core/index.ts';
import { StorageError } from '../../src/storage/index.ts';
import { endpointHost, resolveS3Credentials } from '../../src/storage/s3-client.ts';
import { mapS3Error } from '../../src/storage/s3-errors.ts';
import { parseContentRange } from '../../src/storage/s3-range.ts';
import { choosePartSizeBytes, normalizePrefix } from '../../src/storage/s3-store.ts';
import { isStorageError } from './conformance.ts';

test('credentials come from the config first, then AWS_* variables, else STORAGE_CONFIG', () => {
  const env = {
    AWS_ACCESS_KEY_ID: 'env-id',
    AWS_SECRET_ACCESS_KEY: 'env-secret',
    AWS_SESSION_TOKEN: 'env-token',
  };
  assert.deepEqual(resolveS3Credentials({ region: 'r' }, env), {
    accessKeyId: 'env-id',
    secretAccessKey: 'env-secret',
    sessionToken: 'env-token',
  });
  assert.deepEqual(
    resolveS3Credentials(
      { region: 'r', accessKeyId: 'cfg-id', secretAccessKey: 'cfg-secret' },
      env,
    ),
    { accessKeyId: 'cfg-id', secretAccessKey: 'cfg-secret' },
    'a session token from the environment never pairs with keys from the config',
  );
  assert.throws(() => resolveS3Credentials({ region: 'r' }, {}), isStorageError('STORAGE_CONFIG'));
  assert.throws(
    () => resolveS3Credentials({ region: 'r', accessKeyId: 'id' }, {}),
    (error: unknown) =>
      error instanceof StorageError && error.details['field'] === 'secretAccessKey',
  );
});

test('display hosts drop user-info; bad endpoints are STORAGE_CONFIG', () => {
  assert.equal(endpointHost('http://user:pass@127.0.0.1:9000/x?y', 'r'), '127.0.0.1:9000');
  assert.equal(endpointHost(undefined, 'eu-west-1'), 's3.eu-west-1.amazonaws.com');
  assert.throws(() => endpointHost('nope', 'r'), isStorageError('STORAGE_CONFIG'));
});

test('part sizes keep any object within 10 000 parts, at least 5 MiB, whole MiB', () => {
  assert.equal(choosePartSizeBytes(12 * MiB, 5 * MiB), 5 * MiB);
  assert.equal(choosePartSizeBytes(12 * MiB, 16 * MiB), 16 * MiB);
  assert.equal(choosePartSizeBytes(1 * MiB, 1), 5 * MiB);
  for (const lengthBytes of [200 * 1024 * MiB, 1024 * 1024 * MiB, 5 * 1024 * 1024 * MiB]) {
    const part = choosePartSizeBytes(lengthBytes, 16 * MiB);
    assert.ok(Math.ceil(lengthBytes / part) <= 10_000, `${lengthBytes}`);
    assert.equal(part % MiB, 0);
  }
});

test('prefixes are normalised to "" or "x/y/", invalid ones are STORAGE_CONFIG', () => {
  assert.equal(normalizePrefix(undefined), '');
  assert.equal(normalizePrefix('/'), '');
  assert.equal(normalizePrefix('backups'), 'backups/');
  assert.equal(normalizePrefix('/a/b/'), 'a/b/');
  assert.throws(() => normalizePrefix('a/../b'), isStorageError('STORAGE_CONFIG'));
});

test('Content-Range parsing', () => {
  assert.deepEqual(parseContentRange('bytes 10-19/100'), {
    startBytes: 10,
    endBytes: 20,
    totalBytes: 100,
  });
  assert.equal(parseContentRange('bytes */100'), undefined);
  assert.equal(parseContentRange(undefined), undefined);
});

test('S3 errors map to typed errors; only transient ones are retryable', () => {
  const sdk = (name: string, status?: number, extra: object = {}) =>
    Object.assign(new Error(`${name} message`), {
      name,
      ...(status === undefined ? {} : { $metadata: { httpStatusCode: status } }),
      ...extra,
    });
  const cases: [Error, string, boolean][] = [
    [sdk('NoSuchKey', 404), 'STORAGE_NOT_FOUND', false],
    [sdk('NotFound', 404), 'STORAGE_NOT_FOUND', false],
    [sdk('NoSuchBucket', 404), 'STORAGE_CONFIG', false],
    [sdk('InvalidAccessKeyId', 403), 'STORAGE_AUTH', false],
    [sdk('SignatureDoesNotMatch', 403), 'STORAGE_AUTH', false],
    [sdk('Forbidden', 403), 'STORAGE_AUTH', false],
    [sdk('PreconditionFailed', 412), 'STORAGE_ALREADY_EXISTS', false],
    [sdk('InvalidRange', 416), 'STORAGE_INVALID_RANGE', false],
    [sdk('InternalError', 500), 'STORAGE_IO', true],
    [sdk('ServiceUnavailable', 503), 'STORAGE_IO', true],
    [sdk('SlowDown', 503), 'STORAGE_IO', true],
    [sdk('TooManyRequests', 429), 'STORAGE_IO', true],
    [sdk('NotImplemented', 501), 'STORAGE_IO', false],
    [sdk('InvalidArgument', 400), 'STORAGE_IO', false],
    [sdk('TimeoutError'), 'STORAGE_IO', true],
    [sdk('Error', undefined, { code: 'ECONNRESET' }), 'STORAGE_IO', true],
    [sdk('Error', undefined, { cause: { code: 'ECONNREFUSED' } }), 'STORAGE_IO', true],
    [sdk('AggregateError', undefined, { errors: [{ code: 'ECONNREFUSED' }] }), 'STORAGE_IO', true],
  ];
  for (const [error, code, retryable] of cases) {
    const mapped = mapS3Error('get', 'k', error);
    assert.ok(mapped instanceof StorageError, error.name);
    assert.equal(mapped.code, code, error.name);
    assert.equal(mapped.retryable, retryable, error.name);
  }
  const controller = new AbortController();
  controller.abort();
  const cancelled = mapS3Error('get', 'k', sdk('AbortError'), controller.signal);
  assert.ok(cancelled instanceof CoreError && cancelled.code === 'CANCELLED');
});
