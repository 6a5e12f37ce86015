/**
 * Byte-range rules shared by every store: a range must lie inside the object; an empty range at
 * the end of the object is valid.
 */
import { StorageError } from './errors.ts';
import type { ByteRange } from './object-store.ts';

export function rangeError(key: string, range: ByteRange, sizeBytes: number): StorageError {
  return new StorageError(
    'STORAGE_INVALID_RANGE',
    `${key}: range ${range.offsetBytes}+${range.lengthBytes ?? 'end'} outside ${sizeBytes} bytes`,
    { details: { key, offsetBytes: range.offsetBytes, sizeBytes } },
  );
}

/** The [start, end) byte span a range asks for, or an INVALID_RANGE error. */
export function resolveRange(
  key: string,
  range: ByteRange | undefined,
  sizeBytes: number,
): { startBytes: number; endBytes: number } {
  if (range === undefined) return { startBytes: 0, endBytes: sizeBytes };
  const { offsetBytes, lengthBytes } = range;
  const endBytes = lengthBytes === undefined ? sizeBytes : offsetBytes + lengthBytes;
  if (
    !Number.isSafeInteger(offsetBytes) ||
    offsetBytes < 0 ||
    (lengthBytes !== undefined && (!Number.isSafeInteger(lengthBytes) || lengthBytes < 0)) ||
    offsetBytes > sizeBytes ||
    endBytes > sizeBytes
  )
    throw rangeError(key, range, sizeBytes);
  return { startBytes: offsetBytes, endBytes };
}
