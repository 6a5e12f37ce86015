/**
 * Hand-crafted VHD files for reader tests: blocks in any file order, any sector bitmap, damaged
 * fields. Built from the codecs' encoders, so the structures are valid unless a test breaks them.
 */
import {
  BAT_UNUSED,
  DiskType,
  computeChsGeometry,
  encodeBat,
  encodeFooter,
  encodeHeader,
  sectorBitmapBytes,
  setSectorRange,
  type DiskTypeCode,
  type ParentLocatorEntry,
} from '../../src/vhd/index.ts';

export interface CraftBlock {
  readonly index: number;
  readonly data: Buffer;
  /** Sector ranges present [first, end); default: all. */
  readonly sectors?: readonly (readonly [number, number])[];
}

export function craftVhd(options: {
  sizeBytes: number;
  blockSizeBytes?: number;
  blocks: readonly CraftBlock[];
  /** Order of blocks in the file (indexes); default ascending. */
  fileOrder?: readonly number[];
  diskType?: DiskTypeCode;
  parentUuid?: string;
  parentName?: string;
  locators?: readonly { entry: Omit<ParentLocatorEntry, 'dataOffsetBytes'>; data: Buffer }[];
  uuid?: string;
}): Buffer {
  const blockSizeBytes = options.blockSizeBytes ?? 2 * 1024 * 1024;
  const entries = Math.ceil(options.sizeBytes / blockSizeBytes);
  const bitmapBytes = sectorBitmapBytes(blockSizeBytes);
  const bat = new Uint32Array(entries).fill(BAT_UNUSED);
  const batBytes = encodeBat(bat).length;
  let cursor = 1536 + batBytes;
  const locatorEntries: ParentLocatorEntry[] = [];
  const locatorData: Buffer[] = [];
  for (const locator of options.locators ?? []) {
    locatorEntries.push({ ...locator.entry, dataOffsetBytes: BigInt(cursor) });
    const padded = Buffer.alloc(Math.ceil(locator.data.length / 512) * 512);
    locator.data.copy(padded);
    locatorData.push(padded);
    cursor += padded.length;
  }
  const order = options.fileOrder ?? options.blocks.map((b) => b.index).sort((a, b) => a - b);
  const byIndex = new Map(options.blocks.map((b) => [b.index, b]));
  const blockParts: Buffer[] = [];
  for (const index of order) {
    const block = byIndex.get(index);
    if (block === undefined) throw new Error(`no block ${index}`);
    bat[index] = cursor / 512;
    const bitmap = Buffer.alloc(bitmapBytes);
    for (const [first, end] of block.sectors ?? [[0, blockSizeBytes / 512]])
      setSectorRange(bitmap, first, end);
    const data = Buffer.alloc(blockSizeBytes);
    block.data.copy(data);
    blockParts.push(bitmap, data);
    cursor += bitmapBytes + blockSizeBytes;
  }
  const diskType = options.diskType ?? DiskType.dynamic;
  const footer = encodeFooter({
    features: 2,
    fileFormatVersion: 0x10000,
    dataOffset: 512n,
    timestamp: 1000,
    creatorApplication: 'tap\0',
    creatorVersion: 0,
    creatorHostOs: 'Wi2k',
    originalSizeBytes: options.sizeBytes,
    currentSizeBytes: options.sizeBytes,
    geometry: computeChsGeometry(options.sizeBytes),
    diskType,
    uniqueId: options.uuid ?? '22222222-2222-4222-8222-222222222222',
  });
  const header = encodeHeader({
    tableOffsetBytes: 1536,
    maxTableEntries: entries,
    blockSizeBytes,
    headerVersion: 0x10000,
    ...(options.parentUuid === undefined
      ? {}
      : { parentUuid: options.parentUuid, parentTimestamp: 1000 }),
    ...(options.parentName === undefined ? {} : { parentUnicodeName: options.parentName }),
    parentLocators: locatorEntries,
  });
  return Buffer.concat([footer, header, encodeBat(bat), ...locatorData, ...blockParts, footer]);
}

/** Recomputes the footer checksum of both footers after a test edited them. */
export function refreshFooters(file: Buffer, edit: (footer: Buffer) => void): Buffer {
  const copy = Buffer.from(file);
  for (const at of [0, copy.length - 512]) {
    const footer = copy.subarray(at, at + 512);
    edit(footer);
    footer.writeUInt32BE(0, 64);
    let sum = 0;
    for (const byte of footer) sum += byte;
    footer.writeUInt32BE(~sum >>> 0, 64);
  }
  return copy;
}

/** Edits the header at 512 and recomputes its checksum. */
export function editHeader(file: Buffer, edit: (header: Buffer) => void): Buffer {
  const copy = Buffer.from(file);
  const header = copy.subarray(512, 1536);
  edit(header);
  header.writeUInt32BE(0, 36);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.writeUInt32BE(~sum >>> 0, 36);
  return copy;
}

/** Chunks a buffer like a network stream would (uneven chunk sizes). */
export async function* chunked(buffer: Buffer, chunkBytes = 65_537): AsyncGenerator<Buffer> {
  for (let offset = 0; offset < buffer.length; offset += chunkBytes) {
    yield buffer.subarray(offset, Math.min(offset + chunkBytes, buffer.length));
    await Promise.resolve();
  }
}
