/**
 * N connections to one export (reference §12). Several connections only where the protocol allows
 * it: CAN_MULTI_CONN, or a read-only export when only reading. Requests go to the connection with
 * the fewest bytes in flight; the bytes in flight over the whole pool are bounded; idempotent
 * requests (READ, BLOCK_STATUS) are retried after a retryable failure, on a fresh connection when
 * the old one dropped.
 */
import { MiB, Semaphore, describeError } from '../core/index.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { NBD_FLAG_CAN_MULTI_CONN, NBD_FLAG_READ_ONLY } from './constants.ts';
import type { NbdClient } from './client.ts';
import type { NbdWriteOptions, NbdZeroOptions } from './client-options.ts';
import {
  loadNbdTlsFor,
  openNbdClient,
  resolveNbdTarget,
  type OpenNbdClientOptions,
} from './connect.ts';
import { NbdError } from './errors.ts';
import type { NbdExportInfo } from './handshake.ts';
import type { NbdExtent } from './reply-decoder.ts';
import { formatNbdUri, type NbdTarget } from './uri.ts';

export interface OpenNbdPoolOptions extends OpenNbdClientOptions {
  /** Wanted connections (default 1); capped to 1 unless the multi-conn rule allows more. */
  readonly connections?: number;
  /** Bound on READ/WRITE bytes in flight over the whole pool (default 64 MiB). */
  readonly maxInFlightBytes?: number;
  /** 'read' (default) allows N connections on read-only exports; 'write' needs CAN_MULTI_CONN. */
  readonly access?: 'read' | 'write';
  /** Attempts after the first for idempotent requests (default 3). */
  readonly retries?: number;
  /** Called when a connection drops and is replaced (for run logs). */
  readonly onReconnect?: (slot: number, error: NbdError) => void;
}

export const DEFAULT_MAX_IN_FLIGHT_BYTES = 64 * MiB;

interface Slot {
  client: NbdClient | undefined;
  opening: Promise<NbdClient> | undefined;
}

export class NbdPool {
  readonly target: NbdTarget;
  readonly info: NbdExportInfo;
  /** Whether more than one connection was allowed (CAN_MULTI_CONN or read-only). */
  readonly multiConn: boolean;
  readonly maxInFlightBytes: number;
  readonly maxIoBytes: number;
  readonly #slots: Slot[];
  readonly #options: OpenNbdPoolOptions;
  readonly #budget: Semaphore;
  readonly #retries: number;
  #closed = false;
  #reconnects = 0;

  constructor(
    options: OpenNbdPoolOptions,
    target: NbdTarget,
    clients: NbdClient[],
    multiConn: boolean,
  ) {
    const first = clients[0];
    if (first === undefined) throw new NbdError('NBD_CLOSED', 'a pool needs a connection');
    this.#options = options;
    this.target = target;
    this.info = first.info;
    this.multiConn = multiConn;
    this.maxIoBytes = first.maxIoBytes;
    this.maxInFlightBytes = options.maxInFlightBytes ?? DEFAULT_MAX_IN_FLIGHT_BYTES;
    this.#budget = new Semaphore(this.maxInFlightBytes);
    this.#retries = options.retries ?? 3;
    this.#slots = clients.map((client) => ({ client, opening: undefined }));
  }

  get connections(): number {
    return this.#slots.length;
  }
  /** Connections replaced after a failure since the pool opened. */
  get reconnects(): number {
    return this.#reconnects;
  }
  get uri(): string {
    return formatNbdUri(this.target);
  }
  hasFlag(flag: number): boolean {
    return (this.info.transmissionFlags & flag) !== 0;
  }

  /** Reads into `target` when given (of `lengthBytes`; reused by a retry), else a new buffer. */
  read(offsetBytes: number, lengthBytes: number, target?: Buffer): Promise<Buffer> {
    return this.#run(lengthBytes, true, (client) => client.read(offsetBytes, lengthBytes, target));
  }

  blockStatus(
    offsetBytes: number,
    lengthBytes: number,
  ): Promise<ReadonlyMap<string, readonly NbdExtent[]>> {
    return this.#run(0, true, (client) => client.blockStatus(offsetBytes, lengthBytes));
  }

  write(offsetBytes: number, data: Buffer, options?: NbdWriteOptions): Promise<void> {
    return this.#run(data.length, false, (client) => client.write(offsetBytes, data, options));
  }

  writeZeroes(offsetBytes: number, lengthBytes: number, options?: NbdZeroOptions): Promise<void> {
    return this.#run(0, false, (client) => client.writeZeroes(offsetBytes, lengthBytes, options));
  }

  trim(offsetBytes: number, lengthBytes: number, options?: NbdWriteOptions): Promise<void> {
    return this.#run(0, false, (client) => client.trim(offsetBytes, lengthBytes, options));
  }

  /** Waits for every acknowledged write on every connection, then one FLUSH (multi-conn: visible to all). */
  async flush(): Promise<void> {
    await Promise.all(this.#slots.map((slot) => slot.client?.drain() ?? Promise.resolve()));
    if (this.#slots.length === 1) {
      await this.#run(0, false, (client) => client.flush());
      return;
    }
    await Promise.all(
      this.#slots.map(async (slot) => {
        if (slot.client?.isOpen === true) await slot.client.flush();
      }),
    );
  }

  /** Soft disconnect of every connection. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all(
      this.#slots.map(async (slot) => {
        const client = slot.client ?? (await slot.opening?.catch(() => undefined));
        await client?.disconnect().catch(() => undefined);
      }),
    );
  }

  async #run<T>(
    weightBytes: number,
    idempotent: boolean,
    op: (client: NbdClient) => Promise<T>,
  ): Promise<T> {
    const release = await this.#budget.acquire(Math.max(weightBytes, 1));
    try {
      for (let attempt = 0; ; attempt += 1) {
        if (this.#closed) throw new NbdError('NBD_CLOSED', 'the NBD pool is closed');
        try {
          return await op(await this.#client());
        } catch (error) {
          if (!idempotent || attempt >= this.#retries) throw error;
          if (!(error instanceof NbdError) || !error.retryable) throw error;
          await sleep(Math.min(1000, 25 * 2 ** attempt));
        }
      }
    } finally {
      release();
    }
  }

  /** The live connection with the fewest bytes in flight, reconnecting a dead one if needed. */
  async #client(): Promise<NbdClient> {
    let best: NbdClient | undefined;
    let dead: Slot | undefined;
    for (const slot of this.#slots) {
      const client = slot.client;
      if (client?.isOpen === true) {
        if (best === undefined || client.inFlightBytes < best.inFlightBytes) best = client;
      } else dead ??= slot;
    }
    if (dead !== undefined && dead.opening === undefined) this.#reopen(dead);
    if (best !== undefined) return best;
    const opening = (dead ?? this.#slots[0])?.opening;
    if (opening === undefined) throw new NbdError('NBD_CLOSED', 'no NBD connection');
    return opening;
  }

  #reopen(slot: Slot): void {
    const failure = slot.client?.failure;
    slot.client = undefined;
    const opening = openNbdClient({ ...this.#options, uri: this.target }).then((client) => {
      if (client.info.sizeBytes !== this.info.sizeBytes) {
        client.destroy();
        throw new NbdError('NBD_PROTOCOL', 'the export changed size across a reconnection', {
          details: { before: this.info.sizeBytes, after: client.info.sizeBytes },
        });
      }
      if (this.#closed) void client.disconnect();
      return client;
    });
    slot.opening = opening;
    opening.then(
      (client) => {
        slot.client = client;
        slot.opening = undefined;
        this.#reconnects += 1;
        if (failure !== undefined) this.#options.onReconnect?.(this.#slots.indexOf(slot), failure);
      },
      () => {
        slot.opening = undefined;
      },
    );
  }
}

/** Opens the first connection, checks the multi-conn rule, then opens the others in parallel. */
export async function openNbdPool(options: OpenNbdPoolOptions): Promise<NbdPool> {
  const target = resolveNbdTarget(options.uri);
  const tlsMaterial = options.tlsMaterial ?? (await loadNbdTlsFor(target, options.tls));
  const withTls = {
    ...options,
    uri: target,
    ...(tlsMaterial === undefined ? {} : { tlsMaterial }),
  };
  const first = await openNbdClient(withTls);
  const flags = first.info.transmissionFlags;
  const multiConn =
    (flags & NBD_FLAG_CAN_MULTI_CONN) !== 0 ||
    ((options.access ?? 'read') === 'read' && (flags & NBD_FLAG_READ_ONLY) !== 0);
  const wanted = Math.max(1, Math.floor(options.connections ?? 1));
  const count = multiConn ? wanted : 1;
  const clients = [first];
  try {
    const others = await Promise.all(
      Array.from({ length: count - 1 }, () => openNbdClient(withTls)),
    );
    clients.push(...others);
  } catch (error) {
    for (const client of clients) client.destroy();
    throw new NbdError(
      error instanceof NbdError ? error.code : 'NBD_CONNECT',
      `could not open ${count} connections: ${describeError(error)}`,
      { cause: error, retryable: error instanceof NbdError && error.retryable },
    );
  }
  return new NbdPool(withTls, target, clients, multiConn);
}
