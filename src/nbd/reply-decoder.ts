/**
 * Incremental decoder of the transmission phase (reference §6, checklist §11.2–§11.5). Fed the
 * socket's chunks in any split, it calls a sink for every reply event: simple replies, content
 * chunks (data handed over as slices of the received chunks, never copied), holes, block-status
 * extents, errors, and the end of each request. It needs the shape of each request in flight
 * (command, offset, length) to parse simple READ replies and to validate chunks.
 *
 * Every length is checked against the request and a fixed cap before bytes are awaited, so a
 * hostile server cannot make it allocate more than one block-status chunk (≤ 8 MiB). Any protocol
 * violation throws an NbdError (NBD_PROTOCOL); the connection must then be dropped.
 */
import { ByteQueue } from './byte-queue.ts';
import {
  NBD_CMD_BLOCK_STATUS,
  NBD_CMD_READ,
  NBD_EXTENDED_REPLY_MAGIC,
  NBD_MAX_EXTENTS_PER_CHUNK,
  NBD_MAX_STRING_BYTES,
  NBD_REPLY_FLAG_DONE,
  NBD_REPLY_TYPE_BLOCK_STATUS,
  NBD_REPLY_TYPE_ERROR,
  NBD_REPLY_TYPE_ERROR_BIT,
  NBD_REPLY_TYPE_ERROR_OFFSET,
  NBD_REPLY_TYPE_NONE,
  NBD_REPLY_TYPE_OFFSET_DATA,
  NBD_REPLY_TYPE_OFFSET_HOLE,
  NBD_SIMPLE_REPLY_BYTES,
  NBD_SIMPLE_REPLY_MAGIC,
  NBD_STRUCTURED_HEADER_BYTES,
  NBD_STRUCTURED_REPLY_MAGIC,
} from './constants.ts';
import { NbdError, protocolError } from './errors.ts';

/** What the decoder must know about a request in flight. */
export interface NbdRequestShape {
  readonly command: number;
  readonly offsetBytes: number;
  readonly lengthBytes: number;
}

export interface NbdExtent {
  readonly lengthBytes: number;
  readonly flags: number;
}

/** Receives decoded events, synchronously, in wire order. */
export interface NbdReplySink {
  /** A simple reply; for a successful READ the data follows as onData calls. */
  onSimpleReply(cookie: number, errno: number): void;
  /** A content chunk starts (OFFSET_DATA): its absolute offset and data length. */
  onDataChunk(cookie: number, offsetBytes: number, lengthBytes: number): void;
  /** A slice of read data at an absolute offset; valid only during the call unless kept. */
  onData(cookie: number, offsetBytes: number, data: Buffer): void;
  /**
   * Optional: where the next `maxBytes` of read data at `offsetBytes` belong, so that the socket
   * can read them there directly (no copy). Undefined = deliver through onData.
   */
  dataSpace?(cookie: number, offsetBytes: number, maxBytes: number): Buffer | undefined;
  onHole(cookie: number, offsetBytes: number, lengthBytes: number): void;
  onBlockStatus(cookie: number, contextId: number, extents: readonly NbdExtent[]): void;
  onError(cookie: number, errno: number, message: string, offsetBytes: number | undefined): void;
  /** The request is complete (simple reply, or a chunk with the DONE flag). */
  onDone(cookie: number): void;
}

const enum State {
  Header,
  SimpleData,
  DataOffset,
  ChunkData,
  Payload,
}

function readCookie(header: Buffer, at: number): number {
  const high = header.readUInt32BE(at);
  const low = header.readUInt32BE(at + 4);
  // Cookies we send stay below 2^53; anything above cannot match a request.
  return high >= 0x200000 ? -1 : high * 0x100000000 + low;
}

export class NbdReplyDecoder {
  readonly #queue = new ByteQueue();
  readonly #sink: NbdReplySink;
  readonly #lookup: (cookie: number) => NbdRequestShape | undefined;
  readonly #structured: boolean;
  #failure: NbdError | undefined;

  #state = State.Header;
  #cookie = 0;
  #request: NbdRequestShape = { command: 0, offsetBytes: 0, lengthBytes: 0 };
  #chunkFlags = 0;
  #chunkType = 0;
  #remainingBytes = 0;
  #cursorBytes = 0;

  constructor(options: {
    sink: NbdReplySink;
    lookup: (cookie: number) => NbdRequestShape | undefined;
    structuredReplies: boolean;
  }) {
    this.#sink = options.sink;
    this.#lookup = options.lookup;
    this.#structured = options.structuredReplies;
  }

  /** Bytes received and not yet decoded. */
  get bufferedBytes(): number {
    return this.#queue.lengthBytes;
  }

  /** True between replies (nothing partially decoded). */
  get idle(): boolean {
    return this.#state === State.Header && this.#queue.lengthBytes === 0;
  }

  /**
   * When the decoder is inside read data with nothing buffered: the memory the next bytes should
   * be read into (from the sink's `dataSpace`), at most the rest of the data. Then call
   * `acceptDirect(n)` after `n` bytes were read there.
   */
  directSpace(): Buffer | undefined {
    if (this.#failure !== undefined || this.#queue.lengthBytes !== 0) return undefined;
    if (this.#state !== State.SimpleData && this.#state !== State.ChunkData) return undefined;
    return this.#sink.dataSpace?.(this.#cookie, this.#cursorBytes, this.#remainingBytes);
  }

  /** Accounts for `lengthBytes` of data read straight into the space from directSpace(). */
  acceptDirect(lengthBytes: number): void {
    if (lengthBytes > this.#remainingBytes)
      throw new NbdError('NBD_PROTOCOL', 'direct read beyond the data', {
        details: { lengthBytes },
      });
    this.#cursorBytes += lengthBytes;
    this.#remainingBytes -= lengthBytes;
    if (this.#remainingBytes === 0) this.#endChunk(this.#state === State.SimpleData);
  }

  /** Copies partially decoded bytes so the buffers they came in may be reused. */
  retainBuffered(): void {
    this.#queue.retain();
  }

  push(chunk: Buffer): void {
    if (this.#failure !== undefined) throw this.#failure;
    this.#queue.push(chunk);
    try {
      this.#run();
    } catch (error) {
      this.#failure =
        error instanceof NbdError
          ? error
          : new NbdError('NBD_PROTOCOL', 'undecodable reply', { cause: error });
      throw this.#failure;
    }
  }

  #run(): void {
    const queue = this.#queue;
    for (;;) {
      switch (this.#state) {
        case State.Header:
          if (queue.lengthBytes < 4 || !this.#header()) return;
          break;
        case State.SimpleData:
        case State.ChunkData: {
          if (queue.lengthBytes === 0) return;
          const slice = queue.takeUpTo(this.#remainingBytes);
          const at = this.#cursorBytes;
          this.#cursorBytes += slice.length;
          this.#remainingBytes -= slice.length;
          this.#sink.onData(this.#cookie, at, slice);
          if (this.#remainingBytes === 0) this.#endChunk(this.#state === State.SimpleData);
          break;
        }
        case State.DataOffset: {
          if (queue.lengthBytes < 8) return;
          const offsetBytes = this.#readOffset(queue.take(8), 0, 'OFFSET_DATA offset');
          const dataBytes = this.#remainingBytes - 8;
          this.#checkContent(offsetBytes, dataBytes, 'OFFSET_DATA');
          this.#remainingBytes = dataBytes;
          this.#cursorBytes = offsetBytes;
          this.#state = State.ChunkData;
          this.#sink.onDataChunk(this.#cookie, offsetBytes, dataBytes);
          break;
        }
        case State.Payload:
          if (queue.lengthBytes < this.#remainingBytes) return;
          this.#payload(queue.take(this.#remainingBytes));
          this.#endChunk(false);
          break;
      }
    }
  }

  /** Decodes a reply header if complete; returns false when more bytes are needed. */
  #header(): boolean {
    const queue = this.#queue;
    const magic = queue.peekUInt32BE();
    if (magic === NBD_SIMPLE_REPLY_MAGIC) {
      if (queue.lengthBytes < NBD_SIMPLE_REPLY_BYTES) return false;
      const header = queue.take(NBD_SIMPLE_REPLY_BYTES);
      const errno = header.readUInt32BE(4);
      const cookie = this.#known(readCookie(header, 8));
      this.#sink.onSimpleReply(cookie, errno);
      if (this.#request.command === NBD_CMD_READ && errno === 0 && this.#request.lengthBytes > 0) {
        this.#state = State.SimpleData;
        this.#remainingBytes = this.#request.lengthBytes;
        this.#cursorBytes = this.#request.offsetBytes;
      } else {
        this.#sink.onDone(cookie);
      }
      return true;
    }
    if (magic === NBD_STRUCTURED_REPLY_MAGIC) {
      if (!this.#structured)
        throw protocolError('structured reply without negotiation', 'reply magic');
      if (queue.lengthBytes < NBD_STRUCTURED_HEADER_BYTES) return false;
      const header = queue.take(NBD_STRUCTURED_HEADER_BYTES);
      this.#chunkFlags = header.readUInt16BE(4);
      this.#chunkType = header.readUInt16BE(6);
      this.#known(readCookie(header, 8));
      const lengthBytes = header.readUInt32BE(16);
      this.#checkChunk(this.#chunkType, lengthBytes);
      this.#remainingBytes = lengthBytes;
      if (this.#chunkType === NBD_REPLY_TYPE_OFFSET_DATA) this.#state = State.DataOffset;
      else if (lengthBytes === 0) this.#endChunk(false);
      else this.#state = State.Payload;
      return true;
    }
    if (magic === NBD_EXTENDED_REPLY_MAGIC)
      throw protocolError('extended reply header without negotiation', 'reply magic');
    throw protocolError(`bad reply magic 0x${magic.toString(16)}`, 'reply magic');
  }

  #known(cookie: number): number {
    const request = cookie < 0 ? undefined : this.#lookup(cookie);
    if (request === undefined)
      throw protocolError('reply for a cookie that is not in flight', 'cookie');
    this.#cookie = cookie;
    this.#request = request;
    return cookie;
  }

  /** Per-type length rules (§6) and type-for-command rules (§11.4), before any payload. */
  #checkChunk(type: number, lengthBytes: number): void {
    const command = this.#request.command;
    const bad = (why: string): never => {
      throw protocolError(`chunk type ${type} of ${lengthBytes} bytes: ${why}`, 'chunk length');
    };
    switch (type) {
      case NBD_REPLY_TYPE_NONE:
        if (lengthBytes !== 0) bad('NONE must be empty');
        if ((this.#chunkFlags & NBD_REPLY_FLAG_DONE) === 0) bad('NONE must carry DONE');
        return;
      case NBD_REPLY_TYPE_OFFSET_DATA:
        if (command !== NBD_CMD_READ) bad('data chunk for a non-READ request');
        if (lengthBytes < 9 || lengthBytes - 8 > this.#request.lengthBytes)
          bad('data length outside the request');
        return;
      case NBD_REPLY_TYPE_OFFSET_HOLE:
        if (command !== NBD_CMD_READ) bad('hole chunk for a non-READ request');
        if (lengthBytes !== 12) bad('OFFSET_HOLE must be 12 bytes');
        return;
      case NBD_REPLY_TYPE_BLOCK_STATUS:
        if (command !== NBD_CMD_BLOCK_STATUS) bad('block status for another command');
        if (lengthBytes < 12 || (lengthBytes - 4) % 8 !== 0) bad('not 4 + 8n bytes');
        if ((lengthBytes - 4) / 8 > NBD_MAX_EXTENTS_PER_CHUNK) bad('more than 2^20 extents');
        return;
      case NBD_REPLY_TYPE_ERROR:
        if (lengthBytes < 6 || lengthBytes > 6 + NBD_MAX_STRING_BYTES) bad('bad error length');
        return;
      case NBD_REPLY_TYPE_ERROR_OFFSET:
        if (lengthBytes < 14 || lengthBytes > 14 + NBD_MAX_STRING_BYTES) bad('bad error length');
        return;
      default:
        if ((type & NBD_REPLY_TYPE_ERROR_BIT) === 0) bad('unknown non-error chunk type');
        if (lengthBytes < 6 || lengthBytes > 14 + NBD_MAX_STRING_BYTES) bad('bad error length');
    }
  }

  #readOffset(buffer: Buffer, at: number, field: string): number {
    const high = buffer.readUInt32BE(at);
    if (high >= 0x200000) throw protocolError(`${field} beyond 2^53`, field);
    return high * 0x100000000 + buffer.readUInt32BE(at + 4);
  }

  #checkContent(offsetBytes: number, lengthBytes: number, field: string): void {
    const request = this.#request;
    if (
      offsetBytes < request.offsetBytes ||
      offsetBytes + lengthBytes > request.offsetBytes + request.lengthBytes
    ) {
      throw protocolError(
        `${field} [${offsetBytes}, +${lengthBytes}) outside the request [${request.offsetBytes}, +${request.lengthBytes})`,
        field,
      );
    }
  }

  #payload(payload: Buffer): void {
    const cookie = this.#cookie;
    const type = this.#chunkType;
    if (type === NBD_REPLY_TYPE_OFFSET_HOLE) {
      const offsetBytes = this.#readOffset(payload, 0, 'OFFSET_HOLE offset');
      const lengthBytes = payload.readUInt32BE(8);
      if (lengthBytes === 0) throw protocolError('empty hole', 'OFFSET_HOLE length');
      this.#checkContent(offsetBytes, lengthBytes, 'OFFSET_HOLE');
      this.#sink.onHole(cookie, offsetBytes, lengthBytes);
    } else if (type === NBD_REPLY_TYPE_BLOCK_STATUS) {
      const contextId = payload.readUInt32BE(0);
      const count = (payload.length - 4) / 8;
      const extents: NbdExtent[] = new Array<NbdExtent>(count);
      for (let index = 0; index < count; index += 1) {
        const lengthBytes = payload.readUInt32BE(4 + index * 8);
        if (lengthBytes === 0) throw protocolError('extent of length 0', 'extent length');
        extents[index] = { lengthBytes, flags: payload.readUInt32BE(8 + index * 8) };
      }
      this.#sink.onBlockStatus(cookie, contextId, extents);
    } else {
      // Error chunks (known and unknown types with bit 15 set).
      const errno = payload.readUInt32BE(0);
      const messageBytes = payload.readUInt16BE(4);
      const fixedBytes = type === NBD_REPLY_TYPE_ERROR_OFFSET ? 14 : 6;
      if (messageBytes > payload.length - fixedBytes)
        throw protocolError('error message longer than its chunk', 'error message length');
      const message = payload.toString('utf8', 6, 6 + messageBytes);
      let offsetBytes: number | undefined;
      if (type === NBD_REPLY_TYPE_ERROR_OFFSET) {
        offsetBytes = this.#readOffset(payload, 6 + messageBytes, 'ERROR_OFFSET offset');
        this.#checkContent(offsetBytes, 1, 'ERROR_OFFSET');
      }
      const known = type === NBD_REPLY_TYPE_ERROR || type === NBD_REPLY_TYPE_ERROR_OFFSET;
      this.#sink.onError(cookie, known ? errno : errno || 5, message, offsetBytes);
    }
  }

  #endChunk(simple: boolean): void {
    this.#state = State.Header;
    if (simple || (this.#chunkFlags & NBD_REPLY_FLAG_DONE) !== 0) {
      this.#chunkFlags = 0;
      this.#sink.onDone(this.#cookie);
    }
  }
}
