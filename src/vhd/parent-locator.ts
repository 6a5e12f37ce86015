/**
 * Spec "Parent Locator Entries" (8 × 24 bytes in the dynamic header) and the locator data they
 * point to: W2ru/W2ku = UTF-16LE Windows paths, MacX = UTF-8 file URL or path. Spec says data
 * space is in sectors; some writers put bytes there: like blktap we read a value < 512 as
 * sectors and a multiple of 512 as bytes.
 */
import { FieldTable } from '../binary/index.ts';
import { PARENT_LOCATOR_ENTRY_BYTES, PlatformCode, VHD_SECTOR_BYTES } from './constants.ts';

export const parentLocatorTable = new FieldTable('parentLocator', PARENT_LOCATOR_ENTRY_BYTES, [
  { name: 'platformCode', offsetBytes: 0, sizeBytes: 4, type: 'u32' },
  { name: 'dataSpace', offsetBytes: 4, sizeBytes: 4, type: 'u32' },
  { name: 'dataLength', offsetBytes: 8, sizeBytes: 4, type: 'u32' },
  { name: 'reserved', offsetBytes: 12, sizeBytes: 4, type: 'u32' },
  { name: 'dataOffset', offsetBytes: 16, sizeBytes: 8, type: 'u64' },
] as const);

export interface ParentLocatorEntry {
  readonly platformCode: number;
  /** As stored (sectors per spec, bytes for some writers); see locatorSpaceBytes. */
  readonly dataSpace: number;
  readonly dataLengthBytes: number;
  readonly reserved: number;
  readonly dataOffsetBytes: bigint;
}

export const EMPTY_LOCATOR: ParentLocatorEntry = {
  platformCode: PlatformCode.none,
  dataSpace: 0,
  dataLengthBytes: 0,
  reserved: 0,
  dataOffsetBytes: 0n,
};

export function decodeParentLocator(bytes: Buffer, baseOffsetBytes = 0): ParentLocatorEntry {
  const t = parentLocatorTable;
  return {
    platformCode: t.readUint(bytes, 'platformCode', baseOffsetBytes),
    dataSpace: t.readUint(bytes, 'dataSpace', baseOffsetBytes),
    dataLengthBytes: t.readUint(bytes, 'dataLength', baseOffsetBytes),
    reserved: t.readUint(bytes, 'reserved', baseOffsetBytes),
    dataOffsetBytes: t.readBigUint(bytes, 'dataOffset', baseOffsetBytes),
  };
}

export function encodeParentLocator(
  entry: ParentLocatorEntry,
  target: Buffer,
  baseOffsetBytes: number,
): void {
  const t = parentLocatorTable;
  t.writeUint(target, 'platformCode', entry.platformCode, baseOffsetBytes);
  t.writeUint(target, 'dataSpace', entry.dataSpace, baseOffsetBytes);
  t.writeUint(target, 'dataLength', entry.dataLengthBytes, baseOffsetBytes);
  t.writeUint(target, 'reserved', entry.reserved, baseOffsetBytes);
  t.writeUint(target, 'dataOffset', entry.dataOffsetBytes, baseOffsetBytes);
}

/** Bytes reserved for a locator's data (blktap's heuristic; 0 = unusable). */
export function locatorSpaceBytes(entry: ParentLocatorEntry): number {
  if (entry.dataSpace < VHD_SECTOR_BYTES) return entry.dataSpace * VHD_SECTOR_BYTES;
  return entry.dataSpace % VHD_SECTOR_BYTES === 0 ? entry.dataSpace : 0;
}

export function platformCodeName(code: number): string {
  for (const [name, value] of Object.entries(PlatformCode)) if (value === code) return name;
  return `0x${code.toString(16).padStart(8, '0')}`;
}

/** Locator data for a path, in the encoding of its platform code. */
export function encodeLocatorPath(platformCode: number, path: string): Buffer {
  if (platformCode === PlatformCode.W2ru || platformCode === PlatformCode.W2ku)
    return Buffer.from(path, 'utf16le');
  return Buffer.from(path, 'utf8');
}

/**
 * The path a locator's data names, as a POSIX path: UTF-16LE for W2ru/W2ku with backslashes
 * turned into slashes, UTF-8 for MacX with any "file://" prefix removed. Undefined for other codes.
 */
export function decodeLocatorPath(platformCode: number, data: Buffer): string | undefined {
  if (platformCode === PlatformCode.W2ru || platformCode === PlatformCode.W2ku) {
    const even = data.subarray(0, data.length - (data.length % 2));
    return stripNul(even.toString('utf16le')).replaceAll('\\', '/');
  }
  if (platformCode === PlatformCode.MacX) {
    const text = stripNul(data.toString('utf8'));
    return text.startsWith('file://') ? text.slice('file://'.length) : text;
  }
  return undefined;
}

function stripNul(text: string): string {
  const end = text.indexOf('\0');
  return end === -1 ? text : text.slice(0, end);
}
