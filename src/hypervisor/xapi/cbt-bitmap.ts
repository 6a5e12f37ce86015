/**
 * The changed-block bitmap of VDI.list_changed_blocks (xapi.md §7): base64 of a byte string, one
 * bit per 64 KiB block, block 0 first, most significant bit first within each byte (block k is
 * byte k >> 3, mask 0x80 >> (k & 7)). Bits past the virtual size are ignored. The bit order is
 * read from sm/blktap sources and must still be checked on a real host (docs/xapi.md).
 * Pure: text in, values out; memory is bounded by the bitmap itself.
 */
import { BlockSet } from '../../disk/index.ts';
import { CBT_BLOCK_BYTES } from './constants.ts';
import { XapiError } from './errors.ts';

export interface CbtBitmap {
  /** The decoded bitmap bytes (at least `cbtBlockCount` bits). */
  readonly bits: Uint8Array;
  readonly virtualSizeBytes: number;
  /** Number of 64 KiB CBT blocks covering the disk. */
  readonly cbtBlockCount: number;
}

export interface ByteRange {
  readonly offsetBytes: number;
  readonly lengthBytes: number;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Validates and decodes a list_changed_blocks answer for a disk of `virtualSizeBytes`. */
export function decodeCbtBitmap(text: string, virtualSizeBytes: number): CbtBitmap {
  if (!Number.isSafeInteger(virtualSizeBytes) || virtualSizeBytes < 0) {
    throw new XapiError('XAPI_CBT_BITMAP_INVALID', `virtual size ${virtualSizeBytes} is invalid`);
  }
  const compact = text.replace(/[\t\n\r ]/g, '');
  if (compact.length % 4 !== 0 || !BASE64.test(compact)) {
    throw new XapiError('XAPI_CBT_BITMAP_INVALID', 'the changed-block bitmap is not base64', {
      details: { lengthChars: text.length },
    });
  }
  const bits = Buffer.from(compact, 'base64');
  const cbtBlockCount = Math.ceil(virtualSizeBytes / CBT_BLOCK_BYTES);
  const neededBytes = Math.ceil(cbtBlockCount / 8);
  if (bits.length < neededBytes) {
    throw new XapiError(
      'XAPI_CBT_BITMAP_INVALID',
      `the changed-block bitmap has ${bits.length} bytes, a disk of ${virtualSizeBytes} bytes needs ${neededBytes}`,
      { details: { bitmapBytes: bits.length, neededBytes, virtualSizeBytes } },
    );
  }
  return { bits, virtualSizeBytes, cbtBlockCount };
}

function bitSet(bits: Uint8Array, index: number): boolean {
  return ((bits[index >>> 3] ?? 0) & (0x80 >>> (index & 7))) !== 0;
}

/** Number of changed 64 KiB blocks within the disk. */
export function countChangedCbtBlocks(bitmap: CbtBitmap): number {
  let count = 0;
  for (let index = 0; index < bitmap.cbtBlockCount; index += 1) {
    if (bitSet(bitmap.bits, index)) count += 1;
  }
  return count;
}

/** Changed byte ranges, ascending, adjacent blocks merged, the last one clamped to the disk. */
export function* iterateChangedRanges(bitmap: CbtBitmap): Generator<ByteRange> {
  const { bits, cbtBlockCount, virtualSizeBytes } = bitmap;
  let index = 0;
  while (index < cbtBlockCount) {
    if ((bits[index >>> 3] ?? 0) === 0 && (index & 7) === 0) {
      index += 8;
      continue;
    }
    if (!bitSet(bits, index)) {
      index += 1;
      continue;
    }
    const first = index;
    while (index < cbtBlockCount && bitSet(bits, index)) index += 1;
    const offsetBytes = first * CBT_BLOCK_BYTES;
    const endBytes = Math.min(index * CBT_BLOCK_BYTES, virtualSizeBytes);
    yield { offsetBytes, lengthBytes: endBytes - offsetBytes };
  }
}

/**
 * The blocks of size `blockSizeBytes` (e.g. 2 MiB VHD blocks, or 64 KiB) touched by a changed
 * range: the regrouping XO does by testing 32-bit words, done bit by bit here.
 */
export function changedBlockSet(bitmap: CbtBitmap, blockSizeBytes: number): BlockSet {
  if (!Number.isSafeInteger(blockSizeBytes) || blockSizeBytes <= 0) {
    throw new XapiError('XAPI_CBT_BITMAP_INVALID', `block size ${blockSizeBytes} is invalid`);
  }
  const set = new BlockSet(Math.ceil(bitmap.virtualSizeBytes / blockSizeBytes));
  for (const range of iterateChangedRanges(bitmap)) {
    set.addByteRange(range.offsetBytes, range.lengthBytes, blockSizeBytes);
  }
  return set;
}
