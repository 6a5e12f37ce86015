/**
 * Reading a snapshot VDI over XAPI's NBD (xapi.md §6): one connection per slot, opened one after
 * another (parallel connects race inside XAPI), spread over the endpoints VDI.get_nbd_info gave,
 * at most 16 per host across the whole source, TLS with the returned certificate pinned and its
 * name checked against the announced subject. Only READ is used (xapi-nbd has no block status):
 * the block list comes from CBT or a VHD BAT. The export name embeds a session: never printed.
 */
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { BlockSet, blockLengthBytes } from '../../disk/index.ts';
import type { Block, DiskKind, DiskSource, ReadBlocksOptions } from '../../disk/index.ts';
import { CoreError, MiB, describeError } from '../../core/index.ts';
import { openNbdPool, type NbdPool } from '../../nbd/index.ts';
import { XapiError } from './errors.ts';
import type { XapiNbdEndpoint } from './nbd-info.ts';
import { redactSecrets } from './session.ts';

/** xapi-nbd's `connection_limit` (xapi.md §6). */
export const MAX_NBD_CONNECTIONS_PER_HOST = 16;
/** Longest read request made of consecutive blocks (XO reads 2 MiB blocks, xapi.md §6). */
const MAX_RUN_BYTES = 2 * MiB;

/** Counts NBD connections per host address for one XAPI source. */
export class NbdHostLimiter {
  readonly #used = new Map<string, number>();
  readonly #limit: number;

  constructor(limit = MAX_NBD_CONNECTIONS_PER_HOST) {
    this.#limit = limit;
  }

  tryAcquire(address: string): boolean {
    const used = this.#used.get(address) ?? 0;
    if (used >= this.#limit) return false;
    this.#used.set(address, used + 1);
    return true;
  }

  release(address: string): void {
    const used = this.#used.get(address) ?? 0;
    if (used <= 1) this.#used.delete(address);
    else this.#used.set(address, used - 1);
  }

  inUse(address: string): number {
    return this.#used.get(address) ?? 0;
  }
}

export interface OpenXapiNbdOptions {
  readonly endpoints: readonly XapiNbdEndpoint[];
  readonly connections: number;
  readonly limiter: NbdHostLimiter;
  readonly sizeBytes: number;
  readonly blockSizeBytes: number;
  readonly kind: DiskKind;
  readonly blocks: BlockSet;
  /** Read-ahead bound over all connections (default 64 MiB). */
  readonly maxInFlightBytes?: number;
  readonly signal?: AbortSignal;
}

interface Connection {
  readonly pool: NbdPool;
  readonly address: string;
}

export interface XapiNbdSource extends DiskSource {
  readonly connections: number;
  readonly tls: true;
  /** nbds://address:port/<secret> of the first connection. */
  readonly displayUri: string;
  readonly exportSizeBytes: number;
}

/** Checks that the pinned certificate carries the subject XAPI announced (its host name or IP). */
export function checkNbdCertificateName(endpoint: XapiNbdEndpoint): void {
  const certificate = new X509Certificate(endpoint.certPem);
  const matches =
    isIP(endpoint.subject) === 0
      ? certificate.checkHost(endpoint.subject) !== undefined
      : certificate.checkIP(endpoint.subject) !== undefined;
  if (!matches) {
    throw new XapiError(
      'XAPI_NBD_CERT_NAME',
      `the NBD certificate of ${endpoint.address} is not valid for ${endpoint.subject}`,
      { details: { address: endpoint.address, subject: endpoint.subject } },
    );
  }
}

async function openOne(endpoint: XapiNbdEndpoint, options: OpenXapiNbdOptions): Promise<NbdPool> {
  checkNbdCertificateName(endpoint);
  const exportName = endpoint.exportName.reveal();
  try {
    return await openNbdPool({
      uri: {
        endpoint: { kind: 'tcp', host: endpoint.address, port: endpoint.port },
        exportName,
        tls: true,
      },
      tlsMaterial: {
        serverName: endpoint.subject,
        pinnedFingerprint256: endpoint.certSha256Fingerprint,
      },
      connections: 1,
      access: 'read',
      maxInFlightBytes: options.maxInFlightBytes ?? 64 * MiB,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
  } catch (error) {
    throw new XapiError(
      'XAPI_NBD_CONNECT',
      `NBD connection to ${endpoint.address}:${endpoint.port} failed: ${redactSecrets(describeError(error), [exportName])}`,
      { retryable: true, details: { address: endpoint.address, port: endpoint.port } },
    );
  }
}

class NbdReader implements XapiNbdSource {
  readonly sizeBytes: number;
  readonly blockSizeBytes: number;
  readonly kind: DiskKind;
  readonly blocks: BlockSet;
  readonly tls = true as const;
  readonly displayUri: string;
  readonly exportSizeBytes: number;
  readonly #connections: Connection[];
  readonly #limiter: NbdHostLimiter;
  readonly #windowBytes: number;
  #closed = false;

  constructor(connections: Connection[], options: OpenXapiNbdOptions, displayUri: string) {
    this.#connections = connections;
    this.#limiter = options.limiter;
    this.sizeBytes = options.sizeBytes;
    this.blockSizeBytes = options.blockSizeBytes;
    this.kind = options.kind;
    this.blocks = options.blocks;
    this.displayUri = displayUri;
    this.exportSizeBytes = connections[0]?.pool.info.sizeBytes ?? options.sizeBytes;
    this.#windowBytes = Math.max(options.maxInFlightBytes ?? 64 * MiB, options.blockSizeBytes);
  }

  get connections(): number {
    return this.#connections.length;
  }

  /**
   * Runs of consecutive blocks are read with one request of up to 2 MiB (xapi-nbd serves one
   * request at a time per connection: fewer, longer reads), dealt round-robin over the
   * connections, within the read-ahead window; blocks are yielded in index order.
   */
  async *readBlocks(options: ReadBlocksOptions = {}): AsyncIterable<Block> {
    const queue: { first: number; count: number; lengthBytes: number; data: Promise<Buffer> }[] =
      [];
    let queuedBytes = 0;
    let sequence = 0;
    const runLimitBytes = Math.max(MAX_RUN_BYTES, this.blockSizeBytes);
    const indexes = this.blocks[Symbol.iterator]();
    let next = indexes.next();
    try {
      for (;;) {
        while (next.done !== true) {
          const first = next.value;
          let count = 1;
          let lengthBytes = blockLengthBytes(first, this.sizeBytes, this.blockSizeBytes);
          if (queue.length > 0 && queuedBytes + lengthBytes > this.#windowBytes) break;
          next = indexes.next();
          while (
            next.done !== true &&
            next.value === first + count &&
            lengthBytes + this.blockSizeBytes <= runLimitBytes
          ) {
            lengthBytes += blockLengthBytes(next.value, this.sizeBytes, this.blockSizeBytes);
            count += 1;
            next = indexes.next();
          }
          const connection = this.#connections[sequence % this.#connections.length];
          if (connection === undefined) throw new CoreError('INVALID_ARGUMENT', 'no connection');
          sequence += 1;
          const data = connection.pool.read(first * this.blockSizeBytes, lengthBytes);
          data.catch(() => undefined);
          queue.push({ first, count, lengthBytes, data });
          queuedBytes += lengthBytes;
        }
        const head = queue.shift();
        if (head === undefined) return;
        if (options.signal?.aborted === true)
          throw new CoreError('CANCELLED', 'NBD read cancelled', { cause: options.signal.reason });
        const data = await head.data;
        queuedBytes -= head.lengthBytes;
        for (let i = 0; i < head.count; i += 1) {
          const index = head.first + i;
          const offset = i * this.blockSizeBytes;
          const length = blockLengthBytes(index, this.sizeBytes, this.blockSizeBytes);
          yield { index, data: data.subarray(offset, offset + length) };
        }
      }
    } finally {
      for (const pending of queue) pending.data.catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const connection of this.#connections) {
      await connection.pool.close().catch(() => undefined);
      this.#limiter.release(connection.address);
    }
  }
}

/**
 * Opens up to `connections` NBD connections one after another, connection i on endpoint
 * i mod n, skipping endpoints that failed or hosts at their limit; at least one must open.
 */
export async function openXapiNbdSource(options: OpenXapiNbdOptions): Promise<XapiNbdSource> {
  const wanted = Math.max(1, Math.floor(options.connections));
  const connections: Connection[] = [];
  const failed = new Set<XapiNbdEndpoint>();
  let lastError: unknown;
  try {
    for (let slot = 0; slot < wanted * options.endpoints.length; slot += 1) {
      if (connections.length >= wanted) break;
      const endpoint = options.endpoints[slot % options.endpoints.length];
      if (endpoint === undefined || failed.has(endpoint)) continue;
      if (!options.limiter.tryAcquire(endpoint.address)) continue;
      try {
        connections.push({ pool: await openOne(endpoint, options), address: endpoint.address });
      } catch (error) {
        options.limiter.release(endpoint.address);
        failed.add(endpoint);
        lastError = error;
        if (error instanceof XapiError && error.code === 'XAPI_NBD_CERT_NAME') throw error;
      }
    }
  } catch (error) {
    for (const connection of connections) {
      await connection.pool.close().catch(() => undefined);
      options.limiter.release(connection.address);
    }
    throw error;
  }
  const first = options.endpoints.find((e) => !failed.has(e)) ?? options.endpoints[0];
  if (connections.length === 0 || first === undefined) {
    if (lastError instanceof XapiError) throw lastError;
    throw new XapiError('XAPI_NBD_CONNECT', 'no NBD connection could be opened (host limits)', {
      retryable: true,
    });
  }
  return new NbdReader(connections, options, `nbds://${first.address}:${first.port}/<secret>`);
}
