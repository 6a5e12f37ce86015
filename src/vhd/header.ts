/**
 * Spec "Dynamic Disk Header Format" (1024 bytes), as a field table. `decodeHeaderFields` only
 * splits the bytes; `decodeHeader` validates cookie, checksum, block size and table size against
 * the footer and throws a VhdError naming the field.
 */
import { FieldTable } from '../binary/index.ts';
import {
  DATA_OFFSET_NONE,
  HEADER_BYTES,
  HEADER_COOKIE,
  MAX_BLOCK_BYTES,
  MAX_TABLE_ENTRIES,
  MIN_BLOCK_BYTES,
  PARENT_LOCATOR_COUNT,
  PARENT_LOCATOR_ENTRY_BYTES,
  PARENT_NAME_BYTES,
} from './constants.ts';
import { computeVhdChecksum } from './checksum.ts';
import { VhdError, badField, checkCookieAndChecksum } from './errors.ts';
import {
  EMPTY_LOCATOR,
  decodeParentLocator,
  encodeParentLocator,
  type ParentLocatorEntry,
} from './parent-locator.ts';
import { NIL_UUID, encodeUuid, formatUuid } from './uuid.ts';
import { isPowerOfTwo } from '../core/index.ts';

function locatorFieldName(index: number): `parentLocator${number}` {
  return `parentLocator${index}`;
}

const locatorFields = Array.from({ length: PARENT_LOCATOR_COUNT }, (_, index) => ({
  name: locatorFieldName(index),
  offsetBytes: 576 + index * PARENT_LOCATOR_ENTRY_BYTES,
  sizeBytes: PARENT_LOCATOR_ENTRY_BYTES,
  type: 'bytes' as const,
}));

export const headerTable = new FieldTable<
  | 'cookie'
  | 'dataOffset'
  | 'tableOffset'
  | 'headerVersion'
  | 'maxTableEntries'
  | 'blockSize'
  | 'checksum'
  | 'parentUuid'
  | 'parentTimestamp'
  | 'reserved1'
  | 'parentUnicodeName'
  | `parentLocator${number}`
  | 'reserved2'
>('header', HEADER_BYTES, [
  { name: 'cookie', offsetBytes: 0, sizeBytes: 8, type: 'bytes' },
  { name: 'dataOffset', offsetBytes: 8, sizeBytes: 8, type: 'u64' },
  { name: 'tableOffset', offsetBytes: 16, sizeBytes: 8, type: 'u64' },
  { name: 'headerVersion', offsetBytes: 24, sizeBytes: 4, type: 'u32' },
  { name: 'maxTableEntries', offsetBytes: 28, sizeBytes: 4, type: 'u32' },
  { name: 'blockSize', offsetBytes: 32, sizeBytes: 4, type: 'u32' },
  { name: 'checksum', offsetBytes: 36, sizeBytes: 4, type: 'u32' },
  { name: 'parentUuid', offsetBytes: 40, sizeBytes: 16, type: 'bytes' },
  { name: 'parentTimestamp', offsetBytes: 56, sizeBytes: 4, type: 'u32' },
  { name: 'reserved1', offsetBytes: 60, sizeBytes: 4, type: 'u32' },
  { name: 'parentUnicodeName', offsetBytes: 64, sizeBytes: PARENT_NAME_BYTES, type: 'bytes' },
  ...locatorFields,
  { name: 'reserved2', offsetBytes: 768, sizeBytes: 256, type: 'bytes' },
]);

export interface VhdHeader {
  readonly cookie: string;
  readonly dataOffset: bigint;
  readonly tableOffsetBytes: bigint;
  readonly headerVersion: number;
  readonly maxTableEntries: number;
  readonly blockSizeBytes: number;
  readonly checksum: number;
  readonly parentUuid: string;
  /** The parent's footer timestamp, seconds since the VHD epoch. */
  readonly parentTimestamp: number;
  readonly parentUnicodeName: string;
  readonly parentLocators: readonly ParentLocatorEntry[];
  readonly reservedIsZero: boolean;
}

export interface ValidVhdHeader extends VhdHeader {
  readonly tableOffsetNumber: number;
}

export function decodeHeaderFields(bytes: Buffer): VhdHeader {
  if (bytes.length < HEADER_BYTES)
    throw new VhdError('VHD_TRUNCATED', `header: ${bytes.length} of ${HEADER_BYTES} bytes`, {
      details: { field: 'header', lengthBytes: bytes.length },
    });
  const t = headerTable;
  const name = t.readBytes(bytes, 'parentUnicodeName');
  const parentLocators: ParentLocatorEntry[] = [];
  for (let index = 0; index < PARENT_LOCATOR_COUNT; index += 1)
    parentLocators.push(decodeParentLocator(bytes, t.field(`parentLocator${index}`).offsetBytes));
  return {
    cookie: t.readBytes(bytes, 'cookie').toString('latin1'),
    dataOffset: t.readBigUint(bytes, 'dataOffset'),
    tableOffsetBytes: t.readBigUint(bytes, 'tableOffset'),
    headerVersion: t.readUint(bytes, 'headerVersion'),
    maxTableEntries: t.readUint(bytes, 'maxTableEntries'),
    blockSizeBytes: t.readUint(bytes, 'blockSize'),
    checksum: t.readUint(bytes, 'checksum'),
    parentUuid: formatUuid(t.readBytes(bytes, 'parentUuid')),
    parentTimestamp: t.readUint(bytes, 'parentTimestamp'),
    parentUnicodeName: decodeUtf16be(name),
    parentLocators,
    reservedIsZero:
      t.readUint(bytes, 'reserved1') === 0 && t.readBytes(bytes, 'reserved2').every((b) => b === 0),
  };
}

export function headerChecksum(bytes: Buffer): number {
  return computeVhdChecksum(
    bytes.subarray(0, HEADER_BYTES),
    headerTable.field('checksum').offsetBytes,
  );
}

/** Decodes and validates a header against the footer's virtual size. */
export function decodeHeader(bytes: Buffer, sizeBytes: number): ValidVhdHeader {
  const header = decodeHeaderFields(bytes);
  checkCookieAndChecksum(
    'header',
    { stored: header.cookie, expected: HEADER_COOKIE },
    { stored: header.checksum, computed: headerChecksum(bytes) },
  );
  const blockSizeBytes = header.blockSizeBytes;
  if (
    !isPowerOfTwo(blockSizeBytes) ||
    blockSizeBytes < MIN_BLOCK_BYTES ||
    blockSizeBytes > MAX_BLOCK_BYTES
  )
    throw badField(
      'header.blockSize',
      blockSizeBytes,
      `not a power of two in [${MIN_BLOCK_BYTES}, ${MAX_BLOCK_BYTES}]`,
    );
  if (header.maxTableEntries > MAX_TABLE_ENTRIES)
    throw badField('header.maxTableEntries', header.maxTableEntries, `above ${MAX_TABLE_ENTRIES}`);
  if (header.maxTableEntries * blockSizeBytes < sizeBytes)
    throw badField(
      'header.maxTableEntries',
      header.maxTableEntries,
      `${header.maxTableEntries} blocks of ${blockSizeBytes} bytes do not cover ${sizeBytes} bytes`,
    );
  if (
    header.tableOffsetBytes % 512n !== 0n ||
    header.tableOffsetBytes > BigInt(Number.MAX_SAFE_INTEGER)
  )
    throw badField('header.tableOffset', header.tableOffsetBytes, 'not a sector-aligned offset');
  return { ...header, tableOffsetNumber: Number(header.tableOffsetBytes) };
}

export interface HeaderInit {
  readonly tableOffsetBytes: number;
  readonly maxTableEntries: number;
  readonly blockSizeBytes: number;
  readonly parentUuid?: string;
  readonly parentTimestamp?: number;
  readonly parentUnicodeName?: string;
  readonly parentLocators?: readonly ParentLocatorEntry[];
  readonly headerVersion: number;
}

export function encodeHeader(init: HeaderInit): Buffer {
  const t = headerTable;
  const bytes = Buffer.alloc(HEADER_BYTES);
  t.writeBytes(bytes, 'cookie', Buffer.from(HEADER_COOKIE, 'latin1'));
  t.writeUint(bytes, 'dataOffset', DATA_OFFSET_NONE);
  t.writeUint(bytes, 'tableOffset', init.tableOffsetBytes);
  t.writeUint(bytes, 'headerVersion', init.headerVersion);
  t.writeUint(bytes, 'maxTableEntries', init.maxTableEntries);
  t.writeUint(bytes, 'blockSize', init.blockSizeBytes);
  t.writeBytes(bytes, 'parentUuid', encodeUuid(init.parentUuid ?? NIL_UUID, 'header.parentUuid'));
  t.writeUint(bytes, 'parentTimestamp', init.parentTimestamp ?? 0);
  const name = encodeUtf16be(init.parentUnicodeName ?? '');
  if (name.length > PARENT_NAME_BYTES)
    throw badField(
      'header.parentUnicodeName',
      init.parentUnicodeName,
      'longer than 256 UTF-16 units',
    );
  t.writeBytes(bytes, 'parentUnicodeName', name);
  const locators = init.parentLocators ?? [];
  if (locators.length > PARENT_LOCATOR_COUNT)
    throw badField('header.parentLocators', locators.length, 'at most 8 entries');
  for (let index = 0; index < PARENT_LOCATOR_COUNT; index += 1)
    encodeParentLocator(
      locators[index] ?? EMPTY_LOCATOR,
      bytes,
      t.field(`parentLocator${index}`).offsetBytes,
    );
  t.writeUint(bytes, 'checksum', headerChecksum(bytes));
  return bytes;
}

export function encodeUtf16be(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf16le');
  return bytes.swap16();
}

export function decodeUtf16be(bytes: Buffer): string {
  const even = Buffer.from(bytes.subarray(0, bytes.length - (bytes.length % 2)));
  const text = even.swap16().toString('utf16le');
  const end = text.indexOf('\0');
  return end === -1 ? text : text.slice(0, end);
}
