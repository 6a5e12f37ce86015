/**
 * Ranged GET on S3 with the ObjectStore's range semantics. HTTP ranges differ in three ways that
 * matter: a range running past the end is truncated instead of refused (so Content-Range is
 * checked), a zero-length range cannot be expressed, and a range starting exactly at the end is
 * refused with 416 although it is a valid empty read (both are answered from a HEAD).
 */
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { StorageError } from './errors.ts';
import { withSignal } from './s3-client.ts';
import type { ByteRange, ObjectInfo } from './object-store.ts';
import { rangeError, resolveRange } from './byte-range.ts';
import { s3ErrorName, s3HttpStatus } from './s3-errors.ts';

export interface S3RangeRequest {
  readonly client: S3Client;
  readonly bucket: string;
  /** The key in the bucket (with the store's prefix). */
  readonly objectKey: string;
  /** The key as the caller named it (for messages). */
  readonly key: string;
  readonly range: ByteRange | undefined;
  readonly signal: AbortSignal | undefined;
  readonly stat: () => Promise<ObjectInfo | undefined>;
}

/** Parses "bytes START-END/TOTAL". */
export function parseContentRange(
  header: string | undefined,
): { startBytes: number; endBytes: number; totalBytes: number } | undefined {
  const match = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(header ?? '');
  if (match === null) return undefined;
  return {
    startBytes: Number(match[1]),
    endBytes: Number(match[2]) + 1,
    totalBytes: Number(match[3]),
  };
}

async function viaHead(request: S3RangeRequest, range: ByteRange): Promise<Buffer> {
  const info = await request.stat();
  if (info === undefined)
    throw new StorageError('STORAGE_NOT_FOUND', `${request.key} not found`, {
      details: { key: request.key },
    });
  const { startBytes, endBytes } = resolveRange(request.key, range, info.sizeBytes);
  if (endBytes !== startBytes) throw rangeError(request.key, range, info.sizeBytes);
  return Buffer.alloc(0);
}

export async function readS3Range(request: S3RangeRequest): Promise<Buffer> {
  const { range, key } = request;
  if (range !== undefined) {
    // Validate the numbers before asking the server.
    resolveRange(key, range, Number.MAX_SAFE_INTEGER);
    if (range.lengthBytes === 0) return viaHead(request, range);
  }
  const header =
    range === undefined
      ? undefined
      : range.lengthBytes === undefined
        ? `bytes=${range.offsetBytes}-`
        : `bytes=${range.offsetBytes}-${range.offsetBytes + range.lengthBytes - 1}`;
  let response;
  try {
    response = await request.client.send(
      new GetObjectCommand({
        Bucket: request.bucket,
        Key: request.objectKey,
        ...(header === undefined ? {} : { Range: header }),
      }),
      withSignal(request.signal),
    );
  } catch (error) {
    if (
      range !== undefined &&
      (s3HttpStatus(error) === 416 || s3ErrorName(error) === 'InvalidRange')
    )
      return viaHead(request, range);
    throw error;
  }
  const bytes = (await response.Body?.transformToByteArray()) ?? new Uint8Array(0);
  const body = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (range === undefined) return body;
  const span = parseContentRange(response.ContentRange);
  if (span === undefined) {
    // A server that ignores Range answers 200 with the whole object: slice it ourselves.
    const { startBytes, endBytes } = resolveRange(key, range, body.length);
    return body.subarray(startBytes, endBytes);
  }
  const wantedEnd =
    range.lengthBytes === undefined ? span.totalBytes : range.offsetBytes + range.lengthBytes;
  if (span.startBytes !== range.offsetBytes || wantedEnd > span.totalBytes)
    throw rangeError(key, range, span.totalBytes);
  if (span.endBytes > wantedEnd && body.length === span.endBytes - span.startBytes)
    // More than asked (s3rver answers "bytes=0-0" with the whole object): keep what was asked.
    return body.subarray(0, wantedEnd - range.offsetBytes);
  if (span.endBytes !== wantedEnd || body.length !== wantedEnd - range.offsetBytes)
    throw new StorageError(
      'STORAGE_IO',
      `get ${key}: the server returned bytes ${span.startBytes}-${span.endBytes} for ${range.offsetBytes}+${range.lengthBytes ?? 'end'}`,
      { retryable: true, details: { key } },
    );
  return body;
}
