/**
 * Stream reader: parses a dynamic or differencing VHD as it arrives (footer copy, header, BAT,
 * then blocks in the order of their file offsets, then the final footer) in one forward pass.
 *
 * - `openVhdStream` resolves once the BAT is read: the allocated blocks are known before any data.
 * - Requirements of a one-pass read: the header and BAT precede every block (else
 *   VHD_STREAM_ORDER). Locator data anywhere is skipped.
 * - `blocks()` yields allocated blocks in ascending index order. Blocks stored out of index order
 *   are held in a buffer bounded by `maxBufferedBytes`; the peak is computed from the BAT at open,
 *   so a stream that would need more fails before any data is read (VHD_STREAM_ORDER).
 * - Sector bitmaps: sectors whose bit is clear are zeroed in `data`; a block that is not full
 *   carries its bitmap in `sectorBitmap` (undefined = every sector present). A dynamic disk reads
 *   absent sectors as zeros; a differencing disk takes them from the parent (see VhdDisk).
 * - The final footer must equal the footer copy (checked after the last block).
 */
import { DiskType, FOOTER_BYTES, HEADER_BYTES, VHD_SECTOR_BYTES } from './constants.ts';
import { VhdError, badField } from './errors.ts';
import { batSizeBytes, decodeBat } from './bat.ts';
import { decodeFooter, type ValidVhdFooter } from './footer.ts';
import { decodeHeader, type ValidVhdHeader } from './header.ts';
import { assertLayout, blocksInFileOrder } from './layout.ts';
import { isBitmapFull, sectorBitmapBytes, zeroAbsentSectors } from './sector-bitmap.ts';
import { StreamCursor } from './stream-cursor.ts';
import { MiB, ceilDiv, throwIfAborted } from '../core/index.ts';

export interface VhdBlock {
  readonly index: number;
  /** blockSizeBytes long; absent sectors are zero. Owned by the consumer. */
  readonly data: Buffer;
  /** The sector bitmap when some sectors are absent; undefined when all are present. */
  readonly sectorBitmap: Buffer | undefined;
}

export interface VhdStream {
  readonly footer: ValidVhdFooter;
  readonly header: ValidVhdHeader;
  readonly bat: Uint32Array;
  readonly sizeBytes: number;
  readonly blockSizeBytes: number;
  /** Allocated blocks within the virtual size, ascending. */
  readonly allocated: Uint32Array;
  /** Yields every allocated block in ascending index order; can be called once. */
  blocks(options?: { signal?: AbortSignal }): AsyncIterable<VhdBlock>;
  close(): Promise<void>;
}

export interface OpenVhdStreamOptions {
  /** Bound on blocks held to reorder an out-of-order stream (default 256 MiB). */
  readonly maxBufferedBytes?: number;
  readonly signal?: AbortSignal;
}

export async function openVhdStream(
  input: AsyncIterable<Uint8Array>,
  options: OpenVhdStreamOptions = {},
): Promise<VhdStream> {
  const cursor = new StreamCursor(input);
  try {
    throwIfAborted(options.signal);
    const footerBytes = await cursor.read(FOOTER_BYTES, 'footer copy');
    const footer = decodeFooter(footerBytes);
    if (footer.diskType === DiskType.fixed)
      throw new VhdError(
        'VHD_UNSUPPORTED',
        'a fixed VHD cannot be read as a stream (its footer is at the end)',
        {
          details: { field: 'footer.diskType' },
        },
      );
    const headerOffset = Number(footer.dataOffset);
    if (headerOffset < FOOTER_BYTES)
      throw badField('footer.dataOffset', headerOffset, 'inside the footer copy');
    await cursor.skipTo(headerOffset, 'header');
    const header = decodeHeader(await cursor.read(HEADER_BYTES, 'header'), footer.sizeBytes);
    const tableOffset = header.tableOffsetNumber;
    if (tableOffset < cursor.positionBytes)
      throw new VhdError(
        'VHD_STREAM_ORDER',
        `the BAT (offset ${tableOffset}) comes before the header ends`,
        {
          details: { field: 'header.tableOffset' },
        },
      );
    await cursor.skipTo(tableOffset, 'BAT');
    const bat = decodeBat(
      await cursor.read(batSizeBytes(header.maxTableEntries), 'BAT'),
      header.maxTableEntries,
    );
    assertLayout({ headerOffsetBytes: headerOffset, header, bat });
    const order = blocksInFileOrder(bat);
    const first = order[0];
    if (first !== undefined && (bat[first] ?? 0) * VHD_SECTOR_BYTES < cursor.positionBytes)
      throw new VhdError('VHD_STREAM_ORDER', `block ${first} lies before the end of the BAT`, {
        details: { field: `bat[${first}]` },
      });
    const blockCount = ceilDiv(footer.sizeBytes, header.blockSizeBytes);
    const fileOrder = order.filter((index) => index < blockCount);
    const allocated = Uint32Array.from(fileOrder).sort();
    checkReorderBuffer(
      fileOrder,
      allocated,
      header.blockSizeBytes,
      options.maxBufferedBytes ?? 256 * MiB,
    );
    return new StreamReader(cursor, footerBytes, footer, header, bat, order, allocated, blockCount);
  } catch (error) {
    await cursor.close().catch(() => undefined);
    throw error;
  }
}

/** Fails when reordering the blocks to ascending order would hold more than the bound. */
function checkReorderBuffer(
  fileOrder: Uint32Array,
  ascending: Uint32Array,
  blockSizeBytes: number,
  maxBufferedBytes: number,
): void {
  const arrived = new Set<number>();
  let next = 0;
  let peak = 0;
  for (const index of fileOrder) {
    if (index === ascending[next]) {
      next += 1;
      while (next < ascending.length && arrived.delete(ascending[next] ?? -1)) next += 1;
    } else {
      arrived.add(index);
      peak = Math.max(peak, arrived.size);
    }
  }
  if (peak * blockSizeBytes > maxBufferedBytes)
    throw new VhdError(
      'VHD_STREAM_ORDER',
      `blocks are stored out of order: ascending output would buffer ${peak} blocks (${peak * blockSizeBytes} bytes, bound ${maxBufferedBytes})`,
      { details: { field: 'bat', peakBlocks: peak, maxBufferedBytes } },
    );
}

class StreamReader implements VhdStream {
  readonly footer: ValidVhdFooter;
  readonly header: ValidVhdHeader;
  readonly bat: Uint32Array;
  readonly allocated: Uint32Array;
  readonly #cursor: StreamCursor;
  readonly #footerBytes: Buffer;
  readonly #order: Uint32Array;
  readonly #blockCount: number;
  #started = false;

  constructor(
    cursor: StreamCursor,
    footerBytes: Buffer,
    footer: ValidVhdFooter,
    header: ValidVhdHeader,
    bat: Uint32Array,
    order: Uint32Array,
    allocated: Uint32Array,
    blockCount: number,
  ) {
    this.#cursor = cursor;
    this.#footerBytes = footerBytes;
    this.footer = footer;
    this.header = header;
    this.bat = bat;
    this.#order = order;
    this.allocated = allocated;
    this.#blockCount = blockCount;
  }

  get sizeBytes(): number {
    return this.footer.sizeBytes;
  }
  get blockSizeBytes(): number {
    return this.header.blockSizeBytes;
  }

  async *blocks(options: { signal?: AbortSignal } = {}): AsyncGenerator<VhdBlock> {
    if (this.#started) throw new VhdError('VHD_UNSUPPORTED', 'a VHD stream can be read once');
    this.#started = true;
    const cursor = this.#cursor;
    const blockSizeBytes = this.header.blockSizeBytes;
    const bitmapBytes = sectorBitmapBytes(blockSizeBytes);
    const sectorCount = blockSizeBytes / VHD_SECTOR_BYTES;
    const bitmap = Buffer.allocUnsafe(bitmapBytes);
    const held = new Map<number, VhdBlock>();
    let next = 0;
    try {
      for (const index of this.#order) {
        throwIfAborted(options.signal);
        const field = `block ${index}`;
        await cursor.skipTo((this.bat[index] ?? 0) * VHD_SECTOR_BYTES, field);
        if (index >= this.#blockCount) {
          await cursor.skip(bitmapBytes + blockSizeBytes, field);
          continue;
        }
        await cursor.readInto(bitmap, `${field} sector bitmap`);
        const data = await cursor.readInto(Buffer.allocUnsafe(blockSizeBytes), `${field} data`);
        let sectorBitmap: Buffer | undefined;
        if (!isBitmapFull(bitmap, sectorCount)) {
          sectorBitmap = Buffer.from(bitmap);
          zeroAbsentSectors(sectorBitmap, data);
        }
        const block = { index, data, sectorBitmap };
        if (index !== this.allocated[next]) {
          held.set(index, block);
          continue;
        }
        yield block;
        next += 1;
        for (
          let ready = held.get(this.allocated[next] ?? -1);
          ready !== undefined;
          ready = held.get(this.allocated[next] ?? -1)
        ) {
          held.delete(ready.index);
          next += 1;
          yield ready;
        }
      }
      const tail = await cursor.readTail(FOOTER_BYTES);
      if (tail.length < FOOTER_BYTES)
        throw new VhdError(
          'VHD_TRUNCATED',
          `final footer: only ${tail.length} bytes after the last block`,
          {
            details: { field: 'final footer', lengthBytes: tail.length },
          },
        );
      decodeFooter(tail);
      if (!tail.equals(this.#footerBytes))
        throw new VhdError(
          'VHD_BAD_FIELD',
          'the final footer differs from the footer copy at offset 0',
          {
            details: { field: 'footer' },
          },
        );
    } finally {
      await cursor.close();
    }
  }

  async close(): Promise<void> {
    await this.#cursor.close();
  }
}
