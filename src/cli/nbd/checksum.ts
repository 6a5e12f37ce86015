/**
 * sha256 of a whole NBD export, read in order over a pool with a bounded read-ahead window (the
 * hash needs bytes in order; replies arrive in any order and are reordered here).
 */
import { createHash } from 'node:crypto';
import { MiB, ProgressMeter, throwIfAborted, type ProgressListener } from '../../core/index.ts';
import type { NbdPool } from '../../nbd/index.ts';
import { Sha256Worker } from './sha256-worker.ts';

export const CHECKSUM_REQUEST_BYTES = 2 * MiB;

export async function sha256OfNbdExport(
  pool: NbdPool,
  options: {
    requestBytes?: number;
    windowBytes?: number;
    signal?: AbortSignal;
    /** 'worker' (default): hash on a worker thread while reading; 'main': on this thread. */
    hashOn?: 'worker' | 'main';
    /** Phase 'checksum': bytes hashed of the export's size, requests done (ten a second). */
    onProgress?: ProgressListener;
  } = {},
): Promise<string> {
  const requestBytes = Math.min(options.requestBytes ?? CHECKSUM_REQUEST_BYTES, pool.maxIoBytes);
  const windowBytes = options.windowBytes ?? pool.maxInFlightBytes;
  const sizeBytes = pool.info.sizeBytes;
  const worker = (options.hashOn ?? 'worker') === 'worker' ? new Sha256Worker() : undefined;
  const hash = worker === undefined ? createHash('sha256') : undefined;
  const queue: Promise<Buffer>[] = [];
  const meter = new ProgressMeter(options.onProgress);
  meter.start('checksum', {
    totalBytes: sizeBytes,
    totalObjects: Math.ceil(sizeBytes / requestBytes),
  });
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
  try {
    refill();
    for (let read = queue.shift(); read !== undefined; read = queue.shift()) {
      throwIfAborted(options.signal);
      const data = await read;
      const lengthBytes = data.length; // the worker takes the buffer over (detached after update)
      refill();
      if (worker !== undefined) await worker.update(data);
      else hash?.update(data);
      meter.add(1, lengthBytes);
    }
    meter.report();
    return worker !== undefined ? await worker.digest() : (hash?.digest('hex') ?? '');
  } catch (error) {
    await worker?.destroy();
    throw error;
  }
}
