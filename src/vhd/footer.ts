/**
 * Spec "Hard Disk Footer Format" (512 bytes), as a field table. `decodeFooterFields` only splits
 * the bytes; `decodeFooter` also validates cookie, checksum, disk type and sizes and throws a
 * VhdError naming the field. `encodeFooter` computes the checksum.
 */
import { FieldTable } from '../binary/index.ts';
import {
  DATA_OFFSET_NONE,
  DiskType,
  FOOTER_BYTES,
  FOOTER_COOKIE,
  type DiskTypeCode,
} from './constants.ts';
import { computeVhdChecksum } from './checksum.ts';
import type { ChsGeometry } from './geometry.ts';
import { VhdError, badField, checkCookieAndChecksum } from './errors.ts';
import { encodeUuid, formatUuid } from './uuid.ts';

export const footerTable = new FieldTable('footer', FOOTER_BYTES, [
  { name: 'cookie', offsetBytes: 0, sizeBytes: 8, type: 'bytes' },
  { name: 'features', offsetBytes: 8, sizeBytes: 4, type: 'u32' },
  { name: 'fileFormatVersion', offsetBytes: 12, sizeBytes: 4, type: 'u32' },
  { name: 'dataOffset', offsetBytes: 16, sizeBytes: 8, type: 'u64' },
  { name: 'timestamp', offsetBytes: 24, sizeBytes: 4, type: 'u32' },
  { name: 'creatorApplication', offsetBytes: 28, sizeBytes: 4, type: 'bytes' },
  { name: 'creatorVersion', offsetBytes: 32, sizeBytes: 4, type: 'u32' },
  { name: 'creatorHostOs', offsetBytes: 36, sizeBytes: 4, type: 'bytes' },
  { name: 'originalSize', offsetBytes: 40, sizeBytes: 8, type: 'u64' },
  { name: 'currentSize', offsetBytes: 48, sizeBytes: 8, type: 'u64' },
  { name: 'cylinders', offsetBytes: 56, sizeBytes: 2, type: 'u16' },
  { name: 'heads', offsetBytes: 58, sizeBytes: 1, type: 'u8' },
  { name: 'sectorsPerTrack', offsetBytes: 59, sizeBytes: 1, type: 'u8' },
  { name: 'diskType', offsetBytes: 60, sizeBytes: 4, type: 'u32' },
  { name: 'checksum', offsetBytes: 64, sizeBytes: 4, type: 'u32' },
  { name: 'uniqueId', offsetBytes: 68, sizeBytes: 16, type: 'bytes' },
  { name: 'savedState', offsetBytes: 84, sizeBytes: 1, type: 'u8' },
  { name: 'hidden', offsetBytes: 85, sizeBytes: 1, type: 'u8' },
  { name: 'reserved', offsetBytes: 86, sizeBytes: 426, type: 'bytes' },
] as const);

export interface VhdFooter {
  readonly cookie: string;
  readonly features: number;
  readonly fileFormatVersion: number;
  /** Absolute offset of the dynamic header; DATA_OFFSET_NONE for a fixed disk. */
  readonly dataOffset: bigint;
  /** Seconds since the VHD epoch. */
  readonly timestamp: number;
  readonly creatorApplication: string;
  readonly creatorVersion: number;
  readonly creatorHostOs: string;
  readonly originalSizeBytes: bigint;
  readonly currentSizeBytes: bigint;
  readonly geometry: ChsGeometry;
  readonly diskType: number;
  readonly checksum: number;
  readonly uniqueId: string;
  readonly savedState: number;
  readonly hidden: number;
  readonly reservedIsZero: boolean;
}

/** A footer as validated by decodeFooter: sizes as numbers, a known disk type. */
export interface ValidVhdFooter extends VhdFooter {
  readonly diskType: DiskTypeCode;
  readonly sizeBytes: number;
}

export function decodeFooterFields(bytes: Buffer): VhdFooter {
  if (bytes.length < FOOTER_BYTES)
    throw new VhdError('VHD_TRUNCATED', `footer: ${bytes.length} of ${FOOTER_BYTES} bytes`, {
      details: { field: 'footer', lengthBytes: bytes.length },
    });
  const t = footerTable;
  return {
    cookie: t.readBytes(bytes, 'cookie').toString('latin1'),
    features: t.readUint(bytes, 'features'),
    fileFormatVersion: t.readUint(bytes, 'fileFormatVersion'),
    dataOffset: t.readBigUint(bytes, 'dataOffset'),
    timestamp: t.readUint(bytes, 'timestamp'),
    creatorApplication: t.readBytes(bytes, 'creatorApplication').toString('latin1'),
    creatorVersion: t.readUint(bytes, 'creatorVersion'),
    creatorHostOs: t.readBytes(bytes, 'creatorHostOs').toString('latin1'),
    originalSizeBytes: t.readBigUint(bytes, 'originalSize'),
    currentSizeBytes: t.readBigUint(bytes, 'currentSize'),
    geometry: {
      cylinders: t.readUint(bytes, 'cylinders'),
      heads: t.readUint(bytes, 'heads'),
      sectorsPerTrack: t.readUint(bytes, 'sectorsPerTrack'),
    },
    diskType: t.readUint(bytes, 'diskType'),
    checksum: t.readUint(bytes, 'checksum'),
    uniqueId: formatUuid(t.readBytes(bytes, 'uniqueId')),
    savedState: t.readUint(bytes, 'savedState'),
    hidden: t.readUint(bytes, 'hidden'),
    reservedIsZero: t.readBytes(bytes, 'reserved').every((byte) => byte === 0),
  };
}

export function footerChecksum(bytes: Buffer): number {
  const field = footerTable.field('checksum');
  return computeVhdChecksum(bytes.subarray(0, FOOTER_BYTES), field.offsetBytes);
}

/** Decodes and validates a footer (cookie, checksum, disk type, data offset, size). */
export function decodeFooter(bytes: Buffer): ValidVhdFooter {
  const footer = decodeFooterFields(bytes);
  checkCookieAndChecksum(
    'footer',
    { stored: footer.cookie, expected: FOOTER_COOKIE },
    { stored: footer.checksum, computed: footerChecksum(bytes) },
  );
  const diskType = footer.diskType;
  if (
    diskType !== DiskType.fixed &&
    diskType !== DiskType.dynamic &&
    diskType !== DiskType.differencing
  )
    throw badField('footer.diskType', diskType, 'not 2 (fixed), 3 (dynamic) or 4 (differencing)');
  if (footer.currentSizeBytes > BigInt(Number.MAX_SAFE_INTEGER))
    throw badField('footer.currentSize', footer.currentSizeBytes, 'absurd virtual size');
  const sizeBytes = Number(footer.currentSizeBytes);
  if (diskType === DiskType.fixed) {
    if (footer.dataOffset !== DATA_OFFSET_NONE)
      throw badField('footer.dataOffset', footer.dataOffset, 'a fixed disk has no header');
  } else if (footer.dataOffset === DATA_OFFSET_NONE || footer.dataOffset % 512n !== 0n)
    throw badField('footer.dataOffset', footer.dataOffset, 'not a sector-aligned header offset');
  return { ...footer, diskType, sizeBytes };
}

export interface FooterInit {
  readonly features: number;
  readonly dataOffset: bigint;
  readonly timestamp: number;
  readonly creatorApplication: string;
  readonly creatorVersion: number;
  readonly creatorHostOs: string;
  readonly originalSizeBytes: number;
  readonly currentSizeBytes: number;
  readonly geometry: ChsGeometry;
  readonly diskType: DiskTypeCode;
  readonly uniqueId: string;
  readonly fileFormatVersion: number;
}

export function encodeFooter(init: FooterInit): Buffer {
  const t = footerTable;
  const bytes = Buffer.alloc(FOOTER_BYTES);
  t.writeBytes(bytes, 'cookie', Buffer.from(FOOTER_COOKIE, 'latin1'));
  t.writeUint(bytes, 'features', init.features);
  t.writeUint(bytes, 'fileFormatVersion', init.fileFormatVersion);
  t.writeUint(bytes, 'dataOffset', init.dataOffset);
  t.writeUint(bytes, 'timestamp', init.timestamp);
  t.writeBytes(
    bytes,
    'creatorApplication',
    fourChars(init.creatorApplication, 'creatorApplication'),
  );
  t.writeUint(bytes, 'creatorVersion', init.creatorVersion);
  t.writeBytes(bytes, 'creatorHostOs', fourChars(init.creatorHostOs, 'creatorHostOs'));
  t.writeUint(bytes, 'originalSize', init.originalSizeBytes);
  t.writeUint(bytes, 'currentSize', init.currentSizeBytes);
  t.writeUint(bytes, 'cylinders', init.geometry.cylinders);
  t.writeUint(bytes, 'heads', init.geometry.heads);
  t.writeUint(bytes, 'sectorsPerTrack', init.geometry.sectorsPerTrack);
  t.writeUint(bytes, 'diskType', init.diskType);
  t.writeBytes(bytes, 'uniqueId', encodeUuid(init.uniqueId, 'footer.uniqueId'));
  t.writeUint(bytes, 'checksum', footerChecksum(bytes));
  return bytes;
}

function fourChars(text: string, field: string): Buffer {
  const bytes = Buffer.from(text, 'latin1');
  if (bytes.length !== 4) throw badField(`footer.${field}`, text, 'must be 4 characters');
  return bytes;
}
