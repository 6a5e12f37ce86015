/**
 * sha256 of a whole NBD export, read in order over a pool with a bounded read-ahead window (the
 * hash needs bytes in order; replies arrive in any order and are reordered here).
 */
import { createHash } from 'node:crypto';
import { MiB } from '../../core/index.ts';
import type { NbdPool } from '../../nbd/index.ts';

export const CHECKSUM_REQUEST_BYTES = 2 * MiB;

export async function sha256OfNbdExport(
  pool: NbdPool,
  options: { requestBytes?: number; windowBytes?: number; signal?: AbortSignal } = {},
): Promise<string> {
  const requestBytes = Math.min(options.requestBytes ?? CHECKSUM_REQUEST_BYTES, pool.maxIoBytes);
  const windowBytes = options.windowBytes ?? pool.maxInFlightBytes;
  const sizeBytes = pool.info.sizeBytes;
  const hash = createHash('sha256');
  const queue: Promise<Buffer>[] = [];
  let nextOffset = 0;
  const refill = () => {
    while (
      nextOffset < sizeBytes &&
      (queue.length === 0 || queue.length * requestBytes < windowBytes)
    ) {
      const read = pool.read(nextOffset, Math.min(requestBytes, sizeBytes - nextOffset));
      read.catch(() => undefined);
      queue.push(read);
      nextOffset += requestBytes;
    }
  };
  refill();
  for (let read = queue.shift(); read !== undefined; read = queue.shift()) {
    options.signal?.throwIfAborted();
    const data = await read;
    refill();
    hash.update(data);
  }
  return hash.digest('hex');
}
