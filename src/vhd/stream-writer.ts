/**
 * Stream writer: a block stream (any DiskSource) → a dynamic VHD (kind full) or a differencing
 * VHD against a named parent (kind delta), as an async iterable of Buffers whose total length
 * (`lengthBytes`) is known before the first byte. Bounded memory: source blocks are passed
 * through (sliced, never copied); padding and bitmaps come from shared buffers.
 *
 * - Source and VHD block sizes may differ when one divides the other. A VHD block is allocated
 *   when any source block inside it is present. Full: missing parts are written as zeros with
 *   their sectors marked present. Delta: missing parts are zeros with their sectors marked absent
 *   in the sector bitmap, so they keep the parent's data.
 * - The last block is padded with zeros to the VHD block size.
 * - Yielded buffers are read-only (some are shared or belong to the source).
 */
import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { VHD_SECTOR_BYTES } from './constants.ts';
import { VhdError } from './errors.ts';
import { sectorBitmapBytes, setSectorRange } from './sector-bitmap.ts';
import { planVhd, type VhdPlan, type VhdSourceShape, type VhdWriteOptions } from './vhd-plan.ts';
import { ceilDiv, throwIfAborted } from '../core/index.ts';

export interface VhdWriterSource extends VhdSourceShape {
  readBlocks(options?: {
    signal?: AbortSignal;
  }): AsyncIterable<{ readonly index: number; readonly data: Buffer }>;
}

export interface VhdWriter extends AsyncIterable<Buffer> {
  readonly lengthBytes: number;
  readonly plan: VhdPlan;
  /** The VHD bytes as a Node Readable (back-pressure through the async iterator). */
  toReadable(): Readable;
}

export function writeVhd(
  source: VhdWriterSource,
  options: VhdWriteOptions & { signal?: AbortSignal } = {},
): VhdWriter {
  const plan = planVhd(source, options);
  const iterate = (): AsyncGenerator<Buffer> => emit(source, plan, options.signal);
  return {
    lengthBytes: plan.lengthBytes,
    plan,
    [Symbol.asyncIterator]: iterate,
    toReadable: () => Readable.from(iterate(), { objectMode: false }),
  };
}

/**
 * Writes the VHD of `source` to a file; returns the plan (length, uuid, timestamp). Chunks are
 * gathered into vectored writes of at most `batchBytes` (default 8 MiB) to save system calls.
 */
export async function writeVhdFile(
  source: VhdWriterSource,
  path: string,
  options: VhdWriteOptions & { signal?: AbortSignal; batchBytes?: number } = {},
): Promise<VhdPlan> {
  const writer = writeVhd(source, options);
  const batchBytes = options.batchBytes ?? 8 * 1024 * 1024;
  const handle = await open(path, 'w');
  try {
    let batch: Buffer[] = [];
    let pendingBytes = 0;
    let positionBytes = 0;
    const flush = async (): Promise<void> => {
      let buffers = batch;
      while (buffers.length > 0) {
        const { bytesWritten } = await handle.writev(buffers, positionBytes);
        positionBytes += bytesWritten;
        buffers = dropWritten(buffers, bytesWritten);
      }
      batch = [];
      pendingBytes = 0;
    };
    for await (const chunk of writer) {
      batch.push(chunk);
      pendingBytes += chunk.length;
      if (pendingBytes >= batchBytes || batch.length >= 1000) await flush();
    }
    await flush();
    if (positionBytes !== writer.lengthBytes)
      throw new VhdError(
        'VHD_INVALID_SOURCE',
        `wrote ${positionBytes} bytes, planned ${writer.lengthBytes}`,
      );
  } finally {
    await handle.close();
  }
  return writer.plan;
}

/** The buffers left after a short vectored write of `writtenBytes`. */
function dropWritten(buffers: Buffer[], writtenBytes: number): Buffer[] {
  let left = writtenBytes;
  let at = 0;
  while (at < buffers.length && left >= (buffers[at]?.length ?? 0)) {
    left -= buffers[at]?.length ?? 0;
    at += 1;
  }
  const rest = buffers.slice(at);
  const first = rest[0];
  if (first !== undefined && left > 0) rest[0] = first.subarray(left);
  return rest;
}

const sharedZeros = new Map<number, Buffer>();
function zeros(lengthBytes: number): Buffer {
  let buffer = sharedZeros.get(lengthBytes);
  if (buffer === undefined) {
    buffer = Buffer.alloc(lengthBytes);
    sharedZeros.set(lengthBytes, buffer);
  }
  return buffer;
}

function invalid(message: string, index: number): VhdError {
  return new VhdError('VHD_INVALID_SOURCE', message, {
    details: { field: 'source.readBlocks', index },
  });
}

async function* emit(
  source: VhdWriterSource,
  plan: VhdPlan,
  signal: AbortSignal | undefined,
): AsyncGenerator<Buffer> {
  const vhdBytes = plan.blockSizeBytes;
  const sourceBytes = source.blockSizeBytes;
  const sizeBytes = plan.sizeBytes;
  const sectorCount = vhdBytes / VHD_SECTOR_BYTES;
  const bitmapBytes = sectorBitmapBytes(vhdBytes);
  const fullBitmap = Buffer.alloc(bitmapBytes);
  setSectorRange(fullBitmap, 0, sectorCount);
  const zeroBlock = zeros(Math.max(vhdBytes, sourceBytes));
  const sourceBlockCount = ceilDiv(sizeBytes, sourceBytes);
  const blocks = source.readBlocks(signal === undefined ? {} : { signal });
  const iterator = blocks[Symbol.asyncIterator]();
  let current: { index: number; data: Buffer } | undefined;
  let lastIndex = -1;
  const state = { finished: false };

  const pull = async (wanted: number): Promise<Buffer> => {
    while (current === undefined || current.index < wanted) {
      const next = await iterator.next();
      if (next.done === true) {
        state.finished = true;
        throw invalid(`the source ended before block ${wanted} of its block set`, wanted);
      }
      const { index, data } = next.value;
      if (
        !Number.isInteger(index) ||
        index <= lastIndex ||
        index >= sourceBlockCount ||
        !source.blocks.has(index)
      )
        throw invalid(
          `the source yielded block ${index} out of order or outside its block set`,
          index,
        );
      const expected = Math.min(sourceBytes, sizeBytes - index * sourceBytes);
      if (data.length !== expected)
        throw invalid(`source block ${index} is ${data.length} bytes, expected ${expected}`, index);
      lastIndex = index;
      current = { index, data };
    }
    if (current.index !== wanted)
      throw invalid(`the source skipped block ${wanted} of its block set`, wanted);
    return current.data;
  };

  try {
    yield plan.metadata;
    for (const vhdIndex of plan.vhdBlocks) {
      throwIfAborted(signal);
      const blockStart = vhdIndex * vhdBytes;
      const blockEnd = blockStart + vhdBytes;
      const firstSource = Math.floor(blockStart / sourceBytes);
      const endSource = Math.min(sourceBlockCount, ceilDiv(blockEnd, sourceBytes));
      let bitmap: Buffer = fullBitmap;
      if (source.kind === 'delta' && sourceBytes < vhdBytes) {
        let partial: Buffer | undefined;
        for (let s = firstSource; s < endSource; s += 1) {
          if (source.blocks.has(s)) continue;
          partial ??= Buffer.from(fullBitmap);
          const first = (s * sourceBytes - blockStart) / VHD_SECTOR_BYTES;
          clearSectorRange(partial, first, first + sourceBytes / VHD_SECTOR_BYTES);
        }
        bitmap = partial ?? fullBitmap;
      }
      yield bitmap;
      let written = 0;
      for (let s = firstSource; s < endSource; s += 1) {
        const segmentStart = Math.max(s * sourceBytes, blockStart);
        const segmentEnd = Math.min((s + 1) * sourceBytes, blockEnd, sizeBytes);
        const lengthBytes = segmentEnd - segmentStart;
        if (lengthBytes <= 0) continue;
        if (source.blocks.has(s)) {
          const data = await pull(s);
          const from = segmentStart - s * sourceBytes;
          yield data.subarray(from, from + lengthBytes);
        } else yield zeroBlock.subarray(0, lengthBytes);
        written += lengthBytes;
      }
      if (written < vhdBytes) yield zeroBlock.subarray(0, vhdBytes - written);
    }
    if (!state.finished) {
      const extra = await iterator.next();
      state.finished = extra.done === true;
      if (extra.done !== true)
        throw invalid('the source yielded blocks beyond its block set', extra.value.index);
    }
    yield plan.footer;
  } finally {
    if (!state.finished) await iterator.return?.();
  }
}

function clearSectorRange(bitmap: Buffer, firstSector: number, endSector: number): void {
  for (let sector = firstSector; sector < endSector; sector += 1) {
    const byte = sector >>> 3;
    bitmap[byte] = (bitmap[byte] ?? 0) & ~(0x80 >>> (sector & 7));
  }
}
