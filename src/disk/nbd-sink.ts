/**
 * An NBD export as a DiskSink (the target of a restore). Writes are pipelined within a bounded
 * number of bytes in flight; all-zero blocks become WRITE_ZEROES when the export advertises it;
 * close() waits for every write, FLUSHes (when advertised) and disconnects. The first write error
 * is reported by the next writeBlock() or by close(). A buffer given to writeBlock must not be
 * modified afterwards (it is sent without copying).
 */
import {
  NBD_FLAG_READ_ONLY,
  NBD_FLAG_SEND_FLUSH,
  NBD_FLAG_SEND_WRITE_ZEROES,
  NbdError,
  openNbdPool,
  type NbdPool,
  type NbdTlsOptions,
} from '../nbd/index.ts';
import { CoreError, MiB } from '../core/index.ts';
import { isZeroBlock, type DiskSink } from './disk.ts';
import type { NbdTransportInfo } from './nbd-disk.ts';

export interface OpenNbdSinkOptions {
  readonly uri: string;
  readonly tls?: NbdTlsOptions;
  /** Several connections only where the export sets CAN_MULTI_CONN. */
  readonly connections?: number;
  readonly maxInFlightBytes?: number;
  readonly signal?: AbortSignal;
}

export interface NbdSink extends DiskSink {
  readonly transport: NbdTransportInfo;
}

class NbdDiskSink implements NbdSink {
  readonly sizeBytes: number;
  readonly transport: NbdTransportInfo;
  readonly #pool: NbdPool;
  readonly #maxInFlightBytes: number;
  readonly #pending = new Set<Promise<void>>();
  #inFlightBytes = 0;
  #failure: Error | undefined;
  #closed = false;

  constructor(pool: NbdPool, maxInFlightBytes: number) {
    this.#pool = pool;
    this.#maxInFlightBytes = maxInFlightBytes;
    this.sizeBytes = pool.info.sizeBytes;
    this.transport = {
      protocol: 'nbd',
      connections: pool.connections,
      tls: pool.info.tls,
      uri: pool.uri,
      exportSizeBytes: pool.info.sizeBytes,
      multiConn: pool.multiConn,
    };
  }

  async writeBlock(index: number, data: Buffer, blockSizeBytes: number): Promise<void> {
    if (this.#closed) throw new NbdError('NBD_CLOSED', 'the NBD sink is closed');
    this.#throwIfFailed();
    const offsetBytes = index * blockSizeBytes;
    if (offsetBytes + data.length > this.sizeBytes || data.length === 0) {
      throw new CoreError(
        'INVALID_ARGUMENT',
        `block ${index} (${data.length} bytes) does not fit the ${this.sizeBytes}-byte export`,
      );
    }
    while (this.#pending.size > 0 && this.#inFlightBytes + data.length > this.#maxInFlightBytes) {
      await Promise.race(this.#pending);
      this.#throwIfFailed();
    }
    const zeroes = this.#pool.hasFlag(NBD_FLAG_SEND_WRITE_ZEROES) && isZeroBlock(data);
    const sent = zeroes
      ? this.#pool.writeZeroes(offsetBytes, data.length)
      : this.#pool.write(offsetBytes, data);
    const weight = zeroes ? 0 : data.length;
    this.#inFlightBytes += weight;
    const tracked: Promise<void> = sent.then(
      () => {
        this.#inFlightBytes -= weight;
        this.#pending.delete(tracked);
      },
      (error: unknown) => {
        this.#inFlightBytes -= weight;
        this.#pending.delete(tracked);
        this.#failure ??= error instanceof Error ? error : new Error(String(error));
      },
    );
    this.#pending.add(tracked);
  }

  #throwIfFailed(): void {
    if (this.#failure !== undefined) throw this.#failure;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await Promise.all(this.#pending);
      this.#throwIfFailed();
      if (this.#pool.hasFlag(NBD_FLAG_SEND_FLUSH)) await this.#pool.flush();
    } finally {
      await this.#pool.close();
    }
  }
}

export async function openNbdSink(options: OpenNbdSinkOptions): Promise<NbdSink> {
  const pool = await openNbdPool({
    uri: options.uri,
    access: 'write',
    ...(options.tls === undefined ? {} : { tls: options.tls }),
    ...(options.connections === undefined ? {} : { connections: options.connections }),
    ...(options.maxInFlightBytes === undefined
      ? {}
      : { maxInFlightBytes: options.maxInFlightBytes }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  });
  if (pool.hasFlag(NBD_FLAG_READ_ONLY)) {
    await pool.close();
    throw new NbdError(
      'NBD_NOT_SUPPORTED',
      `${pool.uri} is read-only: it cannot be a restore target`,
    );
  }
  return new NbdDiskSink(pool, options.maxInFlightBytes ?? 64 * MiB);
}
