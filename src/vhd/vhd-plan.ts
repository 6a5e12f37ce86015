/**
 * Planning a VHD before writing it: which VHD blocks are allocated (from the source's block set,
 * before any data), where each structure goes, and therefore the exact file length (XAPI's
 * import_raw_vdi needs a Content-Length). Layout (vhd.md §1): footer copy, header at 512, BAT at
 * 1536, locator data (differencing), blocks in ascending index order, final footer.
 */
import {
  CREATOR_APPLICATION,
  CREATOR_VERSION,
  DEFAULT_BLOCK_BYTES,
  DiskType,
  FEATURE_RESERVED,
  FILE_FORMAT_VERSION,
  FOOTER_BYTES,
  HEADER_BYTES,
  HEADER_VERSION,
  HOST_OS_WINDOWS,
  MAX_BLOCK_BYTES,
  MAX_FILE_BYTES,
  MAX_WRITE_SIZE_BYTES,
  MIN_BLOCK_BYTES,
  PlatformCode,
  VHD_SECTOR_BYTES,
  BAT_UNUSED,
} from './constants.ts';
import { VhdError } from './errors.ts';
import { batSizeBytes, encodeBat } from './bat.ts';
import { encodeFooter } from './footer.ts';
import { encodeHeader } from './header.ts';
import { computeChsGeometry } from './geometry.ts';
import { encodeLocatorPath, type ParentLocatorEntry } from './parent-locator.ts';
import { sectorBitmapBytes } from './sector-bitmap.ts';
import { toVhdTimestamp } from './timestamp.ts';
import { newUuid } from './uuid.ts';
import { ceilDiv, formatBytes, isPowerOfTwo } from '../core/index.ts';

/** What the writer needs to know about a source before reading it (a DiskSource fits). */
export interface VhdSourceShape {
  readonly sizeBytes: number;
  readonly blockSizeBytes: number;
  /** full: absent blocks are zeros (dynamic VHD); delta: absent blocks unchanged (differencing). */
  readonly kind: 'full' | 'delta';
  readonly blocks: Iterable<number> & { has(index: number): boolean };
}

/** The parent a differencing VHD points to. */
export interface VhdParentRef {
  /** The parent's footer unique id. */
  readonly uuid: string;
  /** The parent's footer timestamp (seconds since the VHD epoch). */
  readonly timestamp: number;
  /** The parent's file name, in the same folder as the child (e.g. "key.vhd"). */
  readonly fileName: string;
}

export interface VhdWriteOptions {
  /** Required for a delta source, refused for a full one. */
  readonly parent?: VhdParentRef;
  /** Footer unique id (default: a random UUID). */
  readonly uuid?: string;
  /** Footer timestamp (default: now). */
  readonly now?: Date;
  /** VHD block size (default 2 MiB). */
  readonly blockSizeBytes?: number;
}

export interface VhdPlan {
  readonly lengthBytes: number;
  readonly uuid: string;
  readonly diskType: number;
  readonly sizeBytes: number;
  readonly blockSizeBytes: number;
  /** Footer copy + header + BAT + locator data: the first bytes of the file. */
  readonly metadata: Buffer;
  readonly footer: Buffer;
  /** Allocated VHD block indexes, ascending (the order blocks are written in). */
  readonly vhdBlocks: Uint32Array;
  readonly timestamp: number;
}

function invalid(message: string, field: string): VhdError {
  return new VhdError('VHD_INVALID_SOURCE', message, { details: { field } });
}

/** VHD blocks touched by source block `sourceIndex`: [first, last]. */
export function vhdBlocksOfSourceBlock(
  sourceIndex: number,
  shape: { sizeBytes: number; blockSizeBytes: number },
  vhdBlockBytes: number,
): [number, number] {
  const start = sourceIndex * shape.blockSizeBytes;
  const end = Math.min(start + shape.blockSizeBytes, shape.sizeBytes);
  return [Math.floor(start / vhdBlockBytes), Math.floor((end - 1) / vhdBlockBytes)];
}

export function planVhd(shape: VhdSourceShape, options: VhdWriteOptions = {}): VhdPlan {
  const sizeBytes = shape.sizeBytes;
  const vhdBlockBytes = options.blockSizeBytes ?? DEFAULT_BLOCK_BYTES;
  const sourceBlockBytes = shape.blockSizeBytes;
  if (sizeBytes > MAX_WRITE_SIZE_BYTES)
    throw new VhdError(
      'VHD_TOO_LARGE',
      `a disk of ${sizeBytes} bytes (${formatBytes(sizeBytes)}) does not fit a VHD: the limit is 2040 GiB (${MAX_WRITE_SIZE_BYTES} bytes), above which QEMU and XAPI refuse VHDs; export it as raw instead`,
      { details: { field: 'sizeBytes', sizeBytes, maxSizeBytes: MAX_WRITE_SIZE_BYTES } },
    );
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes <= 0 || sizeBytes % VHD_SECTOR_BYTES !== 0)
    throw invalid(`disk size ${sizeBytes} is not a positive multiple of 512 bytes`, 'sizeBytes');
  if (
    !isPowerOfTwo(vhdBlockBytes) ||
    vhdBlockBytes < MIN_BLOCK_BYTES ||
    vhdBlockBytes > MAX_BLOCK_BYTES
  )
    throw invalid(
      `VHD block size ${vhdBlockBytes} is not a power of two in [${MIN_BLOCK_BYTES}, ${MAX_BLOCK_BYTES}]`,
      'blockSizeBytes',
    );
  if (
    !Number.isSafeInteger(sourceBlockBytes) ||
    sourceBlockBytes % VHD_SECTOR_BYTES !== 0 ||
    sourceBlockBytes <= 0 ||
    (vhdBlockBytes % sourceBlockBytes !== 0 && sourceBlockBytes % vhdBlockBytes !== 0)
  )
    throw invalid(
      `source block size ${sourceBlockBytes} and VHD block size ${vhdBlockBytes} must be sector multiples dividing one another`,
      'source.blockSizeBytes',
    );
  if (shape.kind === 'delta' && options.parent === undefined)
    throw invalid('a delta source is written as a differencing VHD: name its parent', 'parent');
  if (shape.kind === 'full' && options.parent !== undefined)
    throw invalid('a full source is written as a dynamic VHD: it has no parent', 'parent');

  const maxTableEntries = ceilDiv(sizeBytes, vhdBlockBytes);
  const vhdSet = new Uint8Array(maxTableEntries);
  const sourceBlockCount = ceilDiv(sizeBytes, sourceBlockBytes);
  for (const index of shape.blocks) {
    if (!Number.isInteger(index) || index < 0 || index >= sourceBlockCount)
      throw invalid(
        `source block ${index} is outside the disk (${sourceBlockCount} blocks)`,
        'source.blocks',
      );
    const [first, last] = vhdBlocksOfSourceBlock(index, shape, vhdBlockBytes);
    vhdSet.fill(1, first, last + 1);
  }
  let vhdBlockCount = 0;
  for (const flag of vhdSet) vhdBlockCount += flag;
  const vhdBlocks = new Uint32Array(vhdBlockCount);
  for (let index = 0, at = 0; index < maxTableEntries; index += 1)
    if (vhdSet[index] === 1) vhdBlocks[at++] = index;

  const tableOffsetBytes = FOOTER_BYTES + HEADER_BYTES;
  let cursorBytes = tableOffsetBytes + batSizeBytes(maxTableEntries);
  const locators: ParentLocatorEntry[] = [];
  const locatorData: Buffer[] = [];
  const parent = options.parent;
  if (parent !== undefined) {
    if (parent.fileName === '' || /[/\\]/.test(parent.fileName))
      throw invalid(
        `parent file name ${JSON.stringify(parent.fileName)} must be a plain file name`,
        'parent.fileName',
      );
    for (const [platformCode, path] of [
      [PlatformCode.W2ru, `.\\${parent.fileName}`],
      [PlatformCode.MacX, `file://./${parent.fileName}`],
    ] as const) {
      const data = encodeLocatorPath(platformCode, path);
      const spaceSectors = ceilDiv(data.length, VHD_SECTOR_BYTES);
      locators.push({
        platformCode,
        dataSpace: spaceSectors,
        dataLengthBytes: data.length,
        reserved: 0,
        dataOffsetBytes: BigInt(cursorBytes),
      });
      const padded = Buffer.alloc(spaceSectors * VHD_SECTOR_BYTES);
      data.copy(padded);
      locatorData.push(padded);
      cursorBytes += padded.length;
    }
  }
  const blockStrideBytes = sectorBitmapBytes(vhdBlockBytes) + vhdBlockBytes;
  const lengthBytes = cursorBytes + vhdBlockCount * blockStrideBytes + FOOTER_BYTES;
  if (lengthBytes > MAX_FILE_BYTES)
    throw new VhdError(
      'VHD_TOO_LARGE',
      `the VHD would be ${formatBytes(lengthBytes)}, beyond what 32-bit sector offsets address`,
      {
        details: { field: 'lengthBytes', lengthBytes },
      },
    );
  const bat = new Uint32Array(maxTableEntries).fill(BAT_UNUSED);
  vhdBlocks.forEach((index, order) => {
    bat[index] = (cursorBytes + order * blockStrideBytes) / VHD_SECTOR_BYTES;
  });
  const uuid = options.uuid ?? newUuid();
  const diskType = parent === undefined ? DiskType.dynamic : DiskType.differencing;
  const timestamp = toVhdTimestamp(options.now ?? new Date());
  const footer = encodeFooter({
    features: FEATURE_RESERVED,
    fileFormatVersion: FILE_FORMAT_VERSION,
    dataOffset: BigInt(FOOTER_BYTES),
    timestamp,
    creatorApplication: CREATOR_APPLICATION,
    creatorVersion: CREATOR_VERSION,
    creatorHostOs: HOST_OS_WINDOWS,
    originalSizeBytes: sizeBytes,
    currentSizeBytes: sizeBytes,
    geometry: computeChsGeometry(sizeBytes),
    diskType,
    uniqueId: uuid,
  });
  const header = encodeHeader({
    tableOffsetBytes,
    maxTableEntries,
    blockSizeBytes: vhdBlockBytes,
    headerVersion: HEADER_VERSION,
    ...(parent === undefined
      ? {}
      : {
          parentUuid: parent.uuid,
          parentTimestamp: parent.timestamp,
          parentUnicodeName: parent.fileName,
          parentLocators: locators,
        }),
  });
  const metadata = Buffer.concat([footer, header, encodeBat(bat), ...locatorData]);
  return {
    lengthBytes,
    uuid,
    diskType,
    sizeBytes,
    blockSizeBytes: vhdBlockBytes,
    metadata,
    footer,
    vhdBlocks,
    timestamp,
  };
}

/** The exact byte length of the VHD `writeVhd` produces for this source and these options. */
export function computeVhdLength(shape: VhdSourceShape, options: VhdWriteOptions = {}): number {
  return planVhd(shape, options).lengthBytes;
}
