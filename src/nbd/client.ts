/**
 * One NBD connection in transmission phase: requests pipelined and matched by cookie (replies come
 * in any order), every request checked client-side before sending (libnbd's strict mode: bounds,
 * alignment, size, advertised commands and flags), replies validated by the incremental decoder,
 * server errno values turned into typed errors, and a stall timeout. Any protocol violation,
 * timeout or socket failure fails every request in flight (and queued) and closes the connection.
 */
import type { Socket } from 'node:net';
import {
  NBD_CMD_BLOCK_STATUS,
  NBD_CMD_CACHE,
  NBD_CMD_DISC,
  NBD_CMD_FLAG_FAST_ZERO,
  NBD_CMD_FLAG_NO_HOLE,
  NBD_CMD_FLAG_REQ_ONE,
  NBD_CMD_FLUSH,
  NBD_CMD_READ,
  NBD_CMD_TRIM,
  NBD_CMD_WRITE,
  NBD_CMD_WRITE_ZEROES,
  NBD_FLAG_SEND_CACHE,
  NBD_FLAG_SEND_FAST_ZERO,
  NBD_FLAG_SEND_FLUSH,
  NBD_FLAG_SEND_TRIM,
  NBD_FLAG_SEND_WRITE_ZEROES,
  NBD_HARD_MAX_PAYLOAD_BYTES,
} from './constants.ts';
import { encodeRequestHeader } from './encode.ts';
import { NbdError, protocolError } from './errors.ts';
import type { NbdExportInfo } from './handshake.ts';
import { PendingRequest } from './pending-request.ts';
import type { DirectReadHandler, SocketInput } from './socket-input.ts';
import { NbdReplyDecoder, type NbdExtent } from './reply-decoder.ts';
import { ReplyAssembler } from './reply-assembler.ts';
import { RequestQueue } from './request-queue.ts';
import { StallWatch } from './stall-watch.ts';
import { checkNbdRequest, extentsByContext, fuaFlag, requireFlag } from './request-checks.ts';
import {
  DEFAULT_MAX_REQUESTS_IN_FLIGHT,
  DEFAULT_READ_REQUEST_BYTES,
  type NbdWriteOptions,
  type NbdZeroOptions,
} from './client-options.ts';

export class NbdClient implements DirectReadHandler {
  readonly info: NbdExportInfo;
  /** Whether replies are read into chosen memory (`onread`) rather than through 'data' events. */
  readonly directReads: boolean;
  /** Largest READ/WRITE request sent (max payload, capped at 32 MiB, multiple of the minimum). */
  readonly maxIoBytes: number;
  /** Reads longer than this are sent as several requests into one buffer. */
  readonly readRequestBytes: number;
  readonly #socket: Socket;
  readonly #decoder: NbdReplyDecoder;
  readonly #replies = new ReplyAssembler((request) => this.#settled(request));
  readonly #inFlight = this.#replies.inFlight;
  readonly #contextNames = new Map<number, string>();
  readonly #failureListeners: ((error: NbdError) => void)[] = [];
  readonly #stall: StallWatch;
  #nextCookie = 1;
  #inFlightBytes = 0;
  #failure: NbdError | undefined;
  #closing = false;
  #corked = false;
  #idleWaiters: (() => void)[] = [];
  readonly #staging: Buffer | undefined;
  #direct: Buffer | undefined;
  readonly #maxRequests: number;
  readonly #waiting = new RequestQueue();

  constructor(
    socket: Socket,
    info: NbdExportInfo,
    leftover: Buffer,
    requestTimeoutMs: number,
    input?: SocketInput,
    readRequestBytes?: number,
    maxRequestsInFlight?: number,
  ) {
    this.#maxRequests = Math.max(1, maxRequestsInFlight ?? DEFAULT_MAX_REQUESTS_IN_FLIGHT);
    this.#socket = socket;
    this.info = info;
    this.#stall = new StallWatch(
      requestTimeoutMs,
      () => this.#inFlight.size > 0,
      () =>
        this.#fail(
          new NbdError('NBD_TIMEOUT', `no NBD reply within ${requestTimeoutMs} ms`, {
            retryable: true,
            details: { timeoutMs: requestTimeoutMs },
          }),
        ),
    );
    const { minimumBytes, maximumPayloadBytes } = info.blockSizes;
    const cap = Math.min(maximumPayloadBytes, NBD_HARD_MAX_PAYLOAD_BYTES);
    this.maxIoBytes = cap - (cap % minimumBytes);
    const split = Math.min(readRequestBytes ?? DEFAULT_READ_REQUEST_BYTES, this.maxIoBytes);
    this.readRequestBytes = Math.max(minimumBytes, split - (split % minimumBytes));
    for (const [name, id] of info.metaContexts) this.#contextNames.set(id, name);
    this.#decoder = new NbdReplyDecoder({
      sink: this.#replies,
      lookup: (cookie) => this.#inFlight.get(cookie),
      structuredReplies: info.structuredReplies,
    });
    this.#staging = input?.staging;
    this.directReads = input !== undefined;
    if (input !== undefined) input.setHandler(this);
    else
      socket.on('data', (chunk: Buffer) => {
        this.#stall.progressed();
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
    if (leftover.length > 0) {
      try {
        this.#decoder.push(leftover);
      } catch (error) {
        this.#fail(error as NbdError);
      }
    }
  }

  /** Requests sent and not answered, plus those queued behind the request limit. */
  get inFlightCount(): number {
    return this.#inFlight.size + this.#waiting.length;
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
    return extentsByContext(
      request.extents ?? new Map(),
      this.#contextNames,
      this.info.metaContexts.keys(),
      lengthBytes,
      options.reqOne === true,
    );
  }

  async write(offsetBytes: number, data: Buffer, options: NbdWriteOptions = {}): Promise<void> {
    const flags = fuaFlag(this.info, options.fua);
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
    requireFlag(this.info, NBD_FLAG_SEND_WRITE_ZEROES, 'WRITE_ZEROES');
    let flags = fuaFlag(this.info, options.fua);
    if (options.noHole === true) flags |= NBD_CMD_FLAG_NO_HOLE;
    if (options.fastZero === true) {
      requireFlag(this.info, NBD_FLAG_SEND_FAST_ZERO, 'FAST_ZERO');
      flags |= NBD_CMD_FLAG_FAST_ZERO;
    }
    await this.#send(NBD_CMD_WRITE_ZEROES, flags, offsetBytes, lengthBytes, undefined).promise;
  }

  async trim(
    offsetBytes: number,
    lengthBytes: number,
    options: NbdWriteOptions = {},
  ): Promise<void> {
    requireFlag(this.info, NBD_FLAG_SEND_TRIM, 'TRIM');
    await this.#send(
      NBD_CMD_TRIM,
      fuaFlag(this.info, options.fua),
      offsetBytes,
      lengthBytes,
      undefined,
    ).promise;
  }

  async cache(offsetBytes: number, lengthBytes: number): Promise<void> {
    requireFlag(this.info, NBD_FLAG_SEND_CACHE, 'CACHE');
    await this.#send(NBD_CMD_CACHE, 0, offsetBytes, lengthBytes, undefined).promise;
  }

  async flush(): Promise<void> {
    requireFlag(this.info, NBD_FLAG_SEND_FLUSH, 'FLUSH');
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
    this.#stall.stop();
    if (this.#failure !== undefined) return;
    const header = encodeRequestHeader({
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

  /** Client-side strict checks; `whole` skips the per-request payload limit (split later). */
  #check(command: number, offsetBytes: number, lengthBytes: number, whole = false): void {
    if (this.#failure !== undefined) throw this.#failure;
    if (this.#closing) throw new NbdError('NBD_CLOSED', 'the NBD client is closed');
    checkNbdRequest(this.info, this.maxIoBytes, command, offsetBytes, lengthBytes, whole);
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
    const header = encodeRequestHeader({
      commandFlags: flags,
      command,
      cookie,
      offsetBytes,
      lengthBytes,
    });
    this.#inFlightBytes += ioBytes;
    if (this.#inFlight.size >= this.#maxRequests) {
      request.cookie = cookie;
      request.header = header;
      request.payload = payload;
      this.#waiting.push(request);
      return request;
    }
    this.#transmit(cookie, request, header, payload);
    return request;
  }

  #transmit(
    cookie: number,
    request: PendingRequest,
    header: Buffer,
    payload: Buffer | undefined,
  ): void {
    this.#inFlight.set(cookie, request);
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
  }

  /** Sends queued requests as room frees up on the wire. */
  #dispatchWaiting(): void {
    while (this.#inFlight.size < this.#maxRequests) {
      const request = this.#waiting.shift();
      if (request === undefined) return;
      const { header, payload } = request;
      request.header = undefined;
      request.payload = undefined;
      if (header !== undefined) this.#transmit(request.cookie, request, header, payload);
    }
  }

  #fail(error: NbdError): void {
    if (this.#failure !== undefined) return;
    this.#failure = error;
    this.#stall.stop();
    this.#socket.destroy();
    const pending = [...this.#inFlight.values()];
    pending.push(...this.#waiting.takeAll());
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
    this.#stall.progressed();
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

  /** After a request settled: its bytes leave the count, queued requests go out. */
  #settled(request: PendingRequest): void {
    this.#inFlightBytes -= request.payloadBytes;
    this.#dispatchWaiting();
    if (this.#inFlight.size === 0) this.#wakeIdle();
  }
}
