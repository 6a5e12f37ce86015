/**
 * Random-access reader over a ByteSource: opens a fixed, dynamic or differencing VHD (trailing
 * footer, header, BAT; layout checked against the file length) and reads single blocks. Blocks of
 * a fixed VHD are synthetic 2 MiB slices of its data.
 */
import {
  DEFAULT_BLOCK_BYTES,
  DiskType,
  FOOTER_BYTES,
  FOOTER_COOKIE,
  HEADER_BYTES,
  MAX_LOCATOR_DATA_BYTES,
  PlatformCode,
  VHD_SECTOR_BYTES,
  BAT_UNUSED,
} from './constants.ts';
import { VhdError } from './errors.ts';
import { batSizeBytes, decodeBat } from './bat.ts';
import { decodeFooter, type ValidVhdFooter } from './footer.ts';
import { decodeHeader, type ValidVhdHeader } from './header.ts';
import { assertLayout } from './layout.ts';
import { decodeLocatorPath, locatorSpaceBytes } from './parent-locator.ts';
import { isBitmapFull, sectorBitmapBytes, zeroAbsentSectors } from './sector-bitmap.ts';
import { openFileByteSource, readRange, type ByteSource } from './byte-source.ts';
import type { VhdBlock } from './stream-reader.ts';
import { ceilDiv } from '../core/index.ts';

export interface LocatorPath {
  readonly locatorIndex: number;
  readonly platformCode: number;
  /** POSIX form of the stored path (backslashes turned into slashes, file:// removed). */
  readonly path: string;
}

export class VhdReader {
  readonly source: ByteSource;
  readonly footer: ValidVhdFooter;
  /** Undefined for a fixed VHD. */
  readonly header: ValidVhdHeader | undefined;
  readonly bat: Uint32Array | undefined;
  readonly blockSizeBytes: number;
  readonly blockCount: number;

  private constructor(
    source: ByteSource,
    footer: ValidVhdFooter,
    header: ValidVhdHeader | undefined,
    bat: Uint32Array | undefined,
  ) {
    this.source = source;
    this.footer = footer;
    this.header = header;
    this.bat = bat;
    this.blockSizeBytes = header?.blockSizeBytes ?? DEFAULT_BLOCK_BYTES;
    this.blockCount = ceilDiv(footer.sizeBytes, this.blockSizeBytes);
  }

  static async open(source: ByteSource): Promise<VhdReader> {
    if (source.sizeBytes < FOOTER_BYTES)
      throw new VhdError(
        'VHD_TRUNCATED',
        `${source.name}: ${source.sizeBytes} bytes, less than a footer`,
        {
          details: { field: 'footer', fileSizeBytes: source.sizeBytes },
        },
      );
    const footer = await readTrailingFooter(source);
    if (footer.diskType === DiskType.fixed) {
      if (footer.sizeBytes > source.sizeBytes - FOOTER_BYTES)
        throw new VhdError(
          'VHD_TRUNCATED',
          `fixed VHD data: ${footer.sizeBytes} bytes announced, file has less`,
          {
            details: { field: 'footer.currentSize' },
          },
        );
      return new VhdReader(source, footer, undefined, undefined);
    }
    const headerOffset = Number(footer.dataOffset);
    const header = decodeHeader(
      await readRange(source, headerOffset, HEADER_BYTES, 'footer.dataOffset (header)'),
      footer.sizeBytes,
    );
    const batEnd = header.tableOffsetNumber + batSizeBytes(header.maxTableEntries);
    if (batEnd > source.sizeBytes - FOOTER_BYTES)
      throw new VhdError(
        'VHD_BAD_LAYOUT',
        `the BAT [${header.tableOffsetNumber}, ${batEnd}) lies beyond the data end of ${source.name} (${source.sizeBytes - FOOTER_BYTES} bytes)`,
        { details: { field: 'header.tableOffset', fileSizeBytes: source.sizeBytes } },
      );
    const batBytes = await readRange(
      source,
      header.tableOffsetNumber,
      batSizeBytes(header.maxTableEntries),
      'header.tableOffset (BAT)',
    );
    const bat = decodeBat(batBytes, header.maxTableEntries);
    assertLayout({
      headerOffsetBytes: headerOffset,
      header,
      bat,
      fileLengthBytes: source.sizeBytes,
    });
    return new VhdReader(source, footer, header, bat);
  }

  get sizeBytes(): number {
    return this.footer.sizeBytes;
  }

  get diskType(): number {
    return this.footer.diskType;
  }

  isAllocated(index: number): boolean {
    if (index < 0 || index >= this.blockCount) return false;
    return this.bat === undefined || this.bat[index] !== BAT_UNUSED;
  }

  /** Allocated block indexes within the virtual size, ascending. */
  allocatedBlocks(): number[] {
    const indexes: number[] = [];
    for (let index = 0; index < this.blockCount; index += 1)
      if (this.isAllocated(index)) indexes.push(index);
    return indexes;
  }

  /** The block (blockSizeBytes long, absent sectors zeroed), or undefined when unallocated. */
  async readBlock(index: number): Promise<VhdBlock | undefined> {
    if (!this.isAllocated(index)) return undefined;
    const blockSizeBytes = this.blockSizeBytes;
    if (this.bat === undefined) {
      const lengthBytes = Math.min(blockSizeBytes, this.sizeBytes - index * blockSizeBytes);
      const data = await readRange(
        this.source,
        index * blockSizeBytes,
        lengthBytes,
        `block ${index}`,
      );
      if (lengthBytes === blockSizeBytes) return { index, data, sectorBitmap: undefined };
      const padded = Buffer.alloc(blockSizeBytes);
      data.copy(padded);
      return { index, data: padded, sectorBitmap: undefined };
    }
    const bitmapBytes = sectorBitmapBytes(blockSizeBytes);
    const raw = await readRange(
      this.source,
      (this.bat[index] ?? 0) * VHD_SECTOR_BYTES,
      bitmapBytes + blockSizeBytes,
      `bat[${index}]`,
    );
    const bitmap = raw.subarray(0, bitmapBytes);
    const data = raw.subarray(bitmapBytes);
    if (isBitmapFull(bitmap, blockSizeBytes / VHD_SECTOR_BYTES))
      return { index, data, sectorBitmap: undefined };
    const sectorBitmap = Buffer.from(bitmap);
    zeroAbsentSectors(sectorBitmap, data);
    return { index, data, sectorBitmap };
  }

  /** Paths stored in the W2ru, W2ku and MacX parent locators (differencing disks). */
  async locatorPaths(): Promise<LocatorPath[]> {
    const paths: LocatorPath[] = [];
    const locators = this.header?.parentLocators ?? [];
    for (const [locatorIndex, locator] of locators.entries()) {
      const code = locator.platformCode;
      if (code !== PlatformCode.W2ru && code !== PlatformCode.W2ku && code !== PlatformCode.MacX)
        continue;
      const lengthBytes = Math.min(
        locator.dataLengthBytes,
        locatorSpaceBytes(locator) || locator.dataLengthBytes,
        MAX_LOCATOR_DATA_BYTES,
      );
      if (lengthBytes === 0) continue;
      const data = await readRange(
        this.source,
        Number(locator.dataOffsetBytes),
        lengthBytes,
        `header.parentLocator${locatorIndex}.dataOffset`,
      );
      const path = decodeLocatorPath(code, data);
      if (path !== undefined && path !== '') paths.push({ locatorIndex, platformCode: code, path });
    }
    return paths;
  }

  async close(): Promise<void> {
    await this.source.close();
  }
}

async function readTrailingFooter(source: ByteSource): Promise<ValidVhdFooter> {
  const trailing = await readRange(source, source.sizeBytes - FOOTER_BYTES, FOOTER_BYTES, 'footer');
  try {
    return decodeFooter(trailing);
  } catch (error) {
    // A final footer that is there but damaged is reported as such; a missing one (no cookie)
    // while the copy at offset 0 is valid means the file was cut.
    if (trailing.subarray(0, 8).toString('latin1') === FOOTER_COOKIE) throw error;
    let copyValid = false;
    try {
      copyValid =
        decodeFooter(await readRange(source, 0, FOOTER_BYTES, 'footer copy')).diskType !==
        DiskType.fixed;
    } catch {
      copyValid = false;
    }
    if (!copyValid) throw error;
    throw new VhdError(
      'VHD_TRUNCATED',
      `${source.name}: no final footer, while the footer copy at offset 0 is valid (truncated file?)`,
      { cause: error, details: { field: 'footer' } },
    );
  }
}

export async function openVhdFile(path: string): Promise<VhdReader> {
  const source = await openFileByteSource(path);
  try {
    return await VhdReader.open(source);
  } catch (error) {
    await source.close();
    throw error;
  }
}
