/**
 * One NBD connection in transmission phase: requests pipelined and matched by cookie (replies come
 * in any order), every request checked client-side before sending (libnbd's strict mode: bounds,
 * alignment, size, advertised commands and flags), replies validated by the incremental decoder,
 * server errno values turned into typed errors, and a timeout on the oldest request. Any protocol
 * violation, timeout or socket failure fails every request in flight and closes the connection.
 */
import type { Socket } from 'node:net';
import {
  NBD_CMD_BLOCK_STATUS,
  NBD_CMD_CACHE,
  NBD_CMD_DISC,
  NBD_CMD_FLAG_FAST_ZERO,
  NBD_CMD_FLAG_FUA,
  NBD_CMD_FLAG_NO_HOLE,
  NBD_CMD_FLAG_REQ_ONE,
  NBD_CMD_FLUSH,
  NBD_CMD_READ,
  NBD_CMD_TRIM,
  NBD_CMD_WRITE,
  NBD_CMD_WRITE_ZEROES,
  NBD_FLAG_READ_ONLY,
  NBD_FLAG_SEND_CACHE,
  NBD_FLAG_SEND_FAST_ZERO,
  NBD_FLAG_SEND_FLUSH,
  NBD_FLAG_SEND_FUA,
  NBD_FLAG_SEND_TRIM,
  NBD_FLAG_SEND_WRITE_ZEROES,
  NBD_HARD_MAX_PAYLOAD_BYTES,
  NBD_REQUEST_HEADER_BYTES,
} from './constants.ts';
import { encodeRequestHeaderInto } from './encode.ts';
import { NbdError, errnoError, protocolError } from './errors.ts';
import type { NbdExportInfo } from './handshake.ts';
import { PendingRequest } from './pending-request.ts';
import type { DirectReadHandler, SocketInput } from './socket-input.ts';
import { NbdReplyDecoder, type NbdExtent, type NbdReplySink } from './reply-decoder.ts';

export interface NbdWriteOptions {
  readonly fua?: boolean;
}
export interface NbdZeroOptions extends NbdWriteOptions {
  /** Allocate instead of punching holes (NO_HOLE). */
  readonly noHole?: boolean;
  /** Fail fast with ENOTSUP unless zeroing is cheap (FAST_ZERO). */
  readonly fastZero?: boolean;
}

const commandNames = [
  'READ',
  'WRITE',
  'DISC',
  'FLUSH',
  'TRIM',
  'CACHE',
  'WRITE_ZEROES',
  'BLOCK_STATUS',
];

export const DEFAULT_REQUEST_TIMEOUT_MS = 120_000;
/**
 * READ requests on the wire are at most 256 KiB by default (nbdcopy's default too): qemu-nbd
 * streams many 256 KiB requests about twice as fast as 2 MiB ones (bench/nbd-read.ts).
 */
export const DEFAULT_READ_REQUEST_BYTES = 256 * 1024;

export class NbdClient implements NbdReplySink, DirectReadHandler {
  readonly info: NbdExportInfo;
  /** Largest READ/WRITE request sent (max payload, capped at 32 MiB, multiple of the minimum). */
  readonly maxIoBytes: number;
  /** Reads longer than this are sent as several requests into one buffer. */
  readonly readRequestBytes: number;
  readonly #socket: Socket;
  readonly #decoder: NbdReplyDecoder;
  readonly #inFlight = new Map<number, PendingRequest>();
  readonly #contextNames = new Map<number, string>();
  readonly #requestTimeoutMs: number;
  readonly #failureListeners: ((error: NbdError) => void)[] = [];
  #timer: NodeJS.Timeout | undefined;
  #nextCookie = 1;
  #inFlightBytes = 0;
  #failure: NbdError | undefined;
  #closing = false;
  #corked = false;
  #idleWaiters: (() => void)[] = [];
  readonly #staging: Buffer | undefined;
  #direct: Buffer | undefined;

  constructor(
    socket: Socket,
    info: NbdExportInfo,
    leftover: Buffer,
    requestTimeoutMs: number,
    input?: SocketInput,
    readRequestBytes?: number,
  ) {
    this.#socket = socket;
    this.info = info;
    this.#requestTimeoutMs = requestTimeoutMs;
    const { minimumBytes, maximumPayloadBytes } = info.blockSizes;
    const cap = Math.min(maximumPayloadBytes, NBD_HARD_MAX_PAYLOAD_BYTES);
    this.maxIoBytes = cap - (cap % minimumBytes);
    const split = Math.min(readRequestBytes ?? DEFAULT_READ_REQUEST_BYTES, this.maxIoBytes);
    this.readRequestBytes = Math.max(minimumBytes, split - (split % minimumBytes));
    for (const [name, id] of info.metaContexts) this.#contextNames.set(id, name);
    this.#decoder = new NbdReplyDecoder({
      sink: this,
      lookup: (cookie) => this.#inFlight.get(cookie),
      structuredReplies: info.structuredReplies,
    });
    this.#staging = input?.staging;
    if (input !== undefined) input.setHandler(this);
    else
      socket.on('data', (chunk: Buffer) => {
        try {
          this.#decoder.push(chunk);
        } catch (error) {
          this.#fail(error instanceof NbdError ? error : protocolError(String(error), 'reply'));
        }
      });
    socket.on('error', (error) =>
      this.#fail(
        new NbdError('NBD_CONNECTION_LOST', `NBD connection failed: ${error.message}`, {
          cause: error,
          retryable: true,
        }),
      ),
    );
    socket.on('close', () =>
      this.#fail(
        new NbdError('NBD_CONNECTION_LOST', 'the NBD server closed the connection', {
          retryable: true,
        }),
      ),
    );
    const period = Math.max(10, Math.min(1000, Math.floor(requestTimeoutMs / 4)));
    this.#timer = setInterval(() => this.#checkTimeout(), period);
    this.#timer.unref();
    if (leftover.length > 0) {
      try {
        this.#decoder.push(leftover);
      } catch (error) {
        this.#fail(error as NbdError);
      }
    }
  }

  get inFlightCount(): number {
    return this.#inFlight.size;
  }
  get inFlightBytes(): number {
    return this.#inFlightBytes;
  }
  /** The error that ended this connection, if any. */
  get failure(): NbdError | undefined {
    return this.#failure;
  }
  get isOpen(): boolean {
    return this.#failure === undefined && !this.#closing;
  }
  hasFlag(flag: number): boolean {
    return (this.info.transmissionFlags & flag) !== 0;
  }
  onFailure(listener: (error: NbdError) => void): void {
    this.#failureListeners.push(listener);
  }

  /** Reads a range (split into requests of at most `readRequestBytes`); holes cost no copy. */
  async read(offsetBytes: number, lengthBytes: number, target?: Buffer): Promise<Buffer> {
    const split = this.readRequestBytes;
    const into = target ?? (lengthBytes > split ? Buffer.allocUnsafe(lengthBytes) : undefined);
    if (into === undefined) {
      const request = this.#send(NBD_CMD_READ, 0, offsetBytes, lengthBytes, undefined);
      await request.promise;
      return request.target ?? Buffer.alloc(lengthBytes);
    }
    this.#check(NBD_CMD_READ, offsetBytes, lengthBytes, true);
    const parts: Promise<PendingRequest>[] = [];
    for (let done = 0; done < lengthBytes; done += split) {
      const partBytes = Math.min(split, lengthBytes - done);
      const request = this.#send(NBD_CMD_READ, 0, offsetBytes + done, partBytes, undefined);
      request.target = into;
      request.targetOffsetBytes = done;
      request.targetZeroed = false;
      parts.push(request.promise);
    }
    await Promise.all(parts);
    return into;
  }

  /**
   * BLOCK_STATUS for [offset, offset + length): extents per selected context name, each list
   * starting at `offsetBytes`, the last extent clamped to the request (checklist §11.5).
   */
  async blockStatus(
    offsetBytes: number,
    lengthBytes: number,
    options: { reqOne?: boolean } = {},
  ): Promise<ReadonlyMap<string, readonly NbdExtent[]>> {
    const flags = options.reqOne === true ? NBD_CMD_FLAG_REQ_ONE : 0;
    const request = this.#send(NBD_CMD_BLOCK_STATUS, flags, offsetBytes, lengthBytes, undefined);
    await request.promise;
    const result = new Map<string, readonly NbdExtent[]>();
    for (const [id, extents] of request.extents ?? []) {
      const name = this.#contextNames.get(id);
      if (name === undefined) continue; // unknown ids are ignored (§11.5)
      result.set(name, clampExtents(extents, lengthBytes, options.reqOne === true));
    }
    for (const name of this.info.metaContexts.keys()) {
      if (!result.has(name))
        throw new NbdError('NBD_EIO', `block status reply lacks context ${name}`, {
          retryable: true,
          details: { context: name },
        });
    }
    return result;
  }

  async write(offsetBytes: number, data: Buffer, options: NbdWriteOptions = {}): Promise<void> {
    const flags = this.#fua(options);
    this.#check(NBD_CMD_WRITE, offsetBytes, data.length, true);
    const parts: Promise<PendingRequest>[] = [];
    for (let done = 0; done < data.length || done === 0; done += this.maxIoBytes) {
      const payload = data.subarray(done, Math.min(data.length, done + this.maxIoBytes));
      parts.push(
        this.#send(NBD_CMD_WRITE, flags, offsetBytes + done, payload.length, payload).promise,
      );
    }
    await Promise.all(parts);
  }

  async writeZeroes(
    offsetBytes: number,
    lengthBytes: number,
    options: NbdZeroOptions = {},
  ): Promise<void> {
    this.#require(NBD_FLAG_SEND_WRITE_ZEROES, 'WRITE_ZEROES');
    let flags = this.#fua(options);
    if (options.noHole === true) flags |= NBD_CMD_FLAG_NO_HOLE;
    if (options.fastZero === true) {
      this.#require(NBD_FLAG_SEND_FAST_ZERO, 'FAST_ZERO');
      flags |= NBD_CMD_FLAG_FAST_ZERO;
    }
    await this.#send(NBD_CMD_WRITE_ZEROES, flags, offsetBytes, lengthBytes, undefined).promise;
  }

  async trim(
    offsetBytes: number,
    lengthBytes: number,
    options: NbdWriteOptions = {},
  ): Promise<void> {
    this.#require(NBD_FLAG_SEND_TRIM, 'TRIM');
    await this.#send(NBD_CMD_TRIM, this.#fua(options), offsetBytes, lengthBytes, undefined).promise;
  }

  async cache(offsetBytes: number, lengthBytes: number): Promise<void> {
    this.#require(NBD_FLAG_SEND_CACHE, 'CACHE');
    await this.#send(NBD_CMD_CACHE, 0, offsetBytes, lengthBytes, undefined).promise;
  }

  async flush(): Promise<void> {
    this.#require(NBD_FLAG_SEND_FLUSH, 'FLUSH');
    await this.#send(NBD_CMD_FLUSH, 0, 0, 0, undefined).promise;
  }

  /** Waits until no request is in flight (or the connection failed). */
  async drain(): Promise<void> {
    while (this.#inFlight.size > 0 && this.#failure === undefined)
      await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Soft disconnect: waits for requests in flight, sends DISC, closes the socket. */
  async disconnect(): Promise<void> {
    if (this.#closing) return;
    await this.drain();
    this.#closing = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    if (this.#failure !== undefined) return;
    const header = Buffer.allocUnsafe(NBD_REQUEST_HEADER_BYTES);
    encodeRequestHeaderInto(header, 0, {
      commandFlags: 0,
      command: NBD_CMD_DISC,
      cookie: this.#nextCookie++,
      offsetBytes: 0,
      lengthBytes: 0,
    });
    const closed = new Promise<void>((resolve) => {
      this.#socket.once('close', () => resolve());
      setTimeout(() => {
        this.#socket.destroy();
        resolve();
      }, 5000).unref();
    });
    this.#socket.end(header);
    await closed;
  }

  /** Hard close: fails whatever is in flight. */
  destroy(): void {
    this.#closing = true;
    this.#fail(new NbdError('NBD_CLOSED', 'the NBD client was closed'));
  }

  #fua(options: NbdWriteOptions): number {
    if (options.fua !== true) return 0;
    this.#require(NBD_FLAG_SEND_FUA, 'FUA');
    return NBD_CMD_FLAG_FUA;
  }

  #require(flag: number, what: string): void {
    if (!this.hasFlag(flag))
      throw new NbdError('NBD_NOT_SUPPORTED', `the export does not advertise ${what}`, {
        details: { feature: what },
      });
  }

  /** Client-side strict checks; `whole` skips the per-request payload limit (split later). */
  #check(command: number, offsetBytes: number, lengthBytes: number, whole = false): void {
    if (this.#failure !== undefined) throw this.#failure;
    if (this.#closing) throw new NbdError('NBD_CLOSED', 'the NBD client is closed');
    const name = commandNames[command] ?? String(command);
    const invalid = (why: string): never => {
      throw new NbdError(
        'NBD_INVALID_REQUEST',
        `${name} [${offsetBytes}, +${lengthBytes}): ${why}`,
        {
          details: { command: name, offsetBytes, lengthBytes },
        },
      );
    };
    if (command === NBD_CMD_FLUSH) return;
    const isWrite =
      command === NBD_CMD_WRITE || command === NBD_CMD_WRITE_ZEROES || command === NBD_CMD_TRIM;
    if (isWrite && this.hasFlag(NBD_FLAG_READ_ONLY))
      throw new NbdError('NBD_NOT_SUPPORTED', `${name} on a read-only export`);
    if (command === NBD_CMD_BLOCK_STATUS && this.info.metaContexts.size === 0)
      throw new NbdError('NBD_NOT_SUPPORTED', 'block status needs a selected meta context');
    const { sizeBytes } = this.info;
    const { minimumBytes } = this.info.blockSizes;
    if (!Number.isSafeInteger(offsetBytes) || offsetBytes < 0) invalid('bad offset');
    if (!Number.isInteger(lengthBytes) || lengthBytes <= 0) invalid('empty or bad length');
    if (lengthBytes > 0xffffffff) invalid('length above 2^32 - 1');
    if (offsetBytes + lengthBytes > sizeBytes) invalid(`beyond the export end (${sizeBytes})`);
    if (offsetBytes % minimumBytes !== 0) invalid(`offset not aligned to ${minimumBytes}`);
    if (lengthBytes % minimumBytes !== 0 && offsetBytes + lengthBytes !== sizeBytes)
      invalid(`length not aligned to ${minimumBytes}`);
    if (
      !whole &&
      (command === NBD_CMD_READ || command === NBD_CMD_WRITE) &&
      lengthBytes > this.maxIoBytes
    )
      invalid(`above the maximum payload ${this.maxIoBytes}`);
  }

  #send(
    command: number,
    flags: number,
    offsetBytes: number,
    lengthBytes: number,
    payload: Buffer | undefined,
  ): PendingRequest {
    this.#check(command, offsetBytes, lengthBytes);
    const cookie = this.#nextCookie++;
    const ioBytes = command === NBD_CMD_READ || command === NBD_CMD_WRITE ? lengthBytes : 0;
    const request = new PendingRequest(command, offsetBytes, lengthBytes, ioBytes);
    const header = Buffer.allocUnsafe(NBD_REQUEST_HEADER_BYTES);
    encodeRequestHeaderInto(header, 0, {
      commandFlags: flags,
      command,
      cookie,
      offsetBytes,
      lengthBytes,
    });
    this.#inFlight.set(cookie, request);
    this.#inFlightBytes += ioBytes;
    // Requests issued in the same tick leave in one writev.
    if (!this.#corked) {
      this.#corked = true;
      this.#socket.cork();
      process.nextTick(() => {
        this.#corked = false;
        this.#socket.uncork();
      });
    }
    this.#socket.write(header);
    if (payload !== undefined && payload.length > 0) this.#socket.write(payload);
    return request;
  }

  #checkTimeout(): void {
    const oldest = this.#inFlight.values().next();
    if (oldest.done === true) return;
    if (Date.now() - oldest.value.startedMs > this.#requestTimeoutMs) {
      this.#fail(
        new NbdError('NBD_TIMEOUT', `no NBD reply within ${this.#requestTimeoutMs} ms`, {
          retryable: true,
          details: { timeoutMs: this.#requestTimeoutMs },
        }),
      );
    }
  }

  #fail(error: NbdError): void {
    if (this.#failure !== undefined) return;
    this.#failure = error;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#socket.destroy();
    const pending = [...this.#inFlight.values()];
    this.#inFlight.clear();
    this.#inFlightBytes = 0;
    for (const request of pending) request.reject(error);
    this.#wakeIdle();
    for (const listener of this.#failureListeners) listener(error);
  }

  #wakeIdle(): void {
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const wake of waiters) wake();
  }

  // ---- DirectReadHandler: where the socket reads next (plain sockets) ----

  nextBuffer(): Buffer {
    this.#direct = this.#decoder.directSpace();
    return this.#direct ?? this.#staging ?? Buffer.allocUnsafe(65536);
  }

  onRead(lengthBytes: number, buffer: Buffer): void {
    if (this.#failure !== undefined) return;
    try {
      if (buffer === this.#direct) {
        this.#direct = undefined;
        this.#decoder.acceptDirect(lengthBytes);
      } else {
        this.#decoder.push(buffer.subarray(0, lengthBytes));
        this.#decoder.retainBuffered();
      }
    } catch (error) {
      this.#fail(error instanceof NbdError ? error : protocolError(String(error), 'reply'));
    }
  }

  // ---- NbdReplySink: called synchronously by the decoder ----

  dataSpace(cookie: number, offsetBytes: number, maxBytes: number): Buffer | undefined {
    const request = this.#inFlight.get(cookie);
    if (request?.target === undefined) return undefined;
    const at = request.targetOffsetBytes + offsetBytes - request.offsetBytes;
    return request.target.subarray(at, at + maxBytes);
  }

  onSimpleReply(cookie: number, errno: number): void {
    const request = this.#inFlight.get(cookie);
    if (request === undefined) return;
    if (errno !== 0) {
      request.error ??= errnoError(errno, commandNames[request.command] ?? '?');
    } else if (request.command === NBD_CMD_READ) {
      request.target ??= Buffer.allocUnsafe(request.lengthBytes);
      request.coveredBytes = request.lengthBytes;
    }
  }

  onDataChunk(cookie: number, offsetBytes: number, lengthBytes: number): void {
    const request = this.#inFlight.get(cookie);
    if (request === undefined) return;
    if (!request.cover(offsetBytes, lengthBytes))
      throw protocolError('overlapping data chunks', 'OFFSET_DATA');
    if (request.target === undefined) {
      // Every byte ends up covered by data or a hole (checked at DONE); holes already seen
      // need a zeroed buffer, otherwise holes are zeroed as they come.
      const holesSeen = request.coveredBytes > lengthBytes;
      request.target = holesSeen
        ? Buffer.alloc(request.lengthBytes)
        : Buffer.allocUnsafe(request.lengthBytes);
      request.targetZeroed = holesSeen;
    }
  }

  onData(cookie: number, offsetBytes: number, data: Buffer): void {
    const request = this.#inFlight.get(cookie);
    if (request?.target === undefined) return;
    data.copy(request.target, request.targetOffsetBytes + offsetBytes - request.offsetBytes);
  }

  onHole(cookie: number, offsetBytes: number, lengthBytes: number): void {
    const request = this.#inFlight.get(cookie);
    if (request === undefined) return;
    if (!request.cover(offsetBytes, lengthBytes))
      throw protocolError('overlapping hole chunks', 'OFFSET_HOLE');
    if (request.target !== undefined && !request.targetZeroed) {
      const at = request.targetOffsetBytes + offsetBytes - request.offsetBytes;
      request.target.fill(0, at, at + lengthBytes);
    }
  }

  onBlockStatus(cookie: number, contextId: number, extents: readonly NbdExtent[]): void {
    const request = this.#inFlight.get(cookie);
    if (request === undefined) return;
    request.extents ??= new Map();
    if (!request.extents.has(contextId)) request.extents.set(contextId, extents);
  }

  onError(cookie: number, errno: number, message: string, offsetBytes: number | undefined): void {
    const request = this.#inFlight.get(cookie);
    if (request === undefined) return;
    request.error ??= errnoError(errno, commandNames[request.command] ?? '?', message, offsetBytes);
  }

  onDone(cookie: number): void {
    const request = this.#inFlight.get(cookie);
    if (request === undefined) return;
    this.#inFlight.delete(cookie);
    this.#inFlightBytes -= request.payloadBytes;
    if (request.error === undefined && request.command === NBD_CMD_READ) {
      if (request.coveredBytes !== request.lengthBytes) {
        request.error = new NbdError(
          'NBD_EIO',
          `READ reply covered ${request.coveredBytes} of ${request.lengthBytes} bytes`,
          { retryable: true },
        );
      } else if (request.target === undefined) {
        // Holes only: a zero-filled buffer (the allocator hands out zero pages, no copy).
        request.target = Buffer.alloc(request.lengthBytes);
      }
    }
    if (request.error === undefined) request.resolve(request);
    else request.reject(request.error);
    if (this.#inFlight.size === 0) this.#wakeIdle();
  }
}

/** Checks §11.5 and clamps the last extent to the request. */
function clampExtents(
  extents: readonly NbdExtent[],
  lengthBytes: number,
  reqOne: boolean,
): NbdExtent[] {
  if (reqOne && extents.length !== 1)
    throw protocolError('REQ_ONE answered with several extents', 'extent count');
  const out: NbdExtent[] = [];
  let covered = 0;
  for (const extent of extents) {
    if (covered >= lengthBytes)
      throw protocolError('extents continue past the request', 'extent length');
    const clamped = Math.min(extent.lengthBytes, lengthBytes - covered);
    out.push(
      clamped === extent.lengthBytes ? extent : { lengthBytes: clamped, flags: extent.flags },
    );
    covered += clamped;
  }
  return out;
}
