/**
 * Extent maps: whole-disk (or range) iteration over BLOCK_STATUS for one metadata context. Short
 * answers are legal, so it loops from the first uncovered offset; neighbours with equal flags are
 * merged so the output is canonical (and comparable with nbdinfo --map).
 */
import type { NbdExtent } from './reply-decoder.ts';
import type { NbdExportInfo } from './handshake.ts';
import { NbdError } from './errors.ts';

export interface NbdMappedExtent {
  readonly offsetBytes: number;
  readonly lengthBytes: number;
  readonly flags: number;
}

export interface BlockStatusSource {
  readonly info: NbdExportInfo;
  blockStatus(
    offsetBytes: number,
    lengthBytes: number,
  ): Promise<ReadonlyMap<string, readonly NbdExtent[]>>;
}

/** Largest BLOCK_STATUS window asked at once (the length is a u32 hint). */
export const BLOCK_STATUS_WINDOW_BYTES = 1024 * 1024 * 1024;

export async function* iterateNbdExtents(
  source: BlockStatusSource,
  context: string,
  range: { offsetBytes?: number; lengthBytes?: number; signal?: AbortSignal } = {},
): AsyncGenerator<NbdMappedExtent> {
  if (!source.info.metaContexts.has(context)) {
    throw new NbdError('NBD_META_CONTEXT_UNAVAILABLE', `meta context ${context} is not selected`, {
      details: { context },
    });
  }
  const start = range.offsetBytes ?? 0;
  const end = Math.min(source.info.sizeBytes, start + (range.lengthBytes ?? source.info.sizeBytes));
  const alignment = source.info.blockSizes.minimumBytes;
  const window = BLOCK_STATUS_WINDOW_BYTES - (BLOCK_STATUS_WINDOW_BYTES % alignment);
  let pending: NbdMappedExtent | undefined;
  let offsetBytes = start;
  while (offsetBytes < end) {
    range.signal?.throwIfAborted();
    const lengthBytes = Math.min(window, end - offsetBytes);
    const extents = (await source.blockStatus(offsetBytes, lengthBytes)).get(context) ?? [];
    if (extents.length === 0)
      throw new NbdError('NBD_EIO', `no extents for ${context} at ${offsetBytes}`, {
        retryable: true,
      });
    for (const extent of extents) {
      if (pending !== undefined && pending.flags === extent.flags) {
        pending = { ...pending, lengthBytes: pending.lengthBytes + extent.lengthBytes };
      } else {
        if (pending !== undefined) yield pending;
        pending = { offsetBytes, lengthBytes: extent.lengthBytes, flags: extent.flags };
      }
      offsetBytes += extent.lengthBytes;
    }
  }
  if (pending !== undefined) yield pending;
}
