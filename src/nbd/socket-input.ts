/**
 * How bytes come off a plain NBD socket. Node's 'data' events allocate a 64 KiB buffer per read
 * and copy once more into the destination; with `onread` the socket reads into memory we choose:
 * a reused staging buffer for headers, and, while inside READ data, the destination buffer itself
 * (the kernel copies straight into the block the consumer gets). TLS sockets get the same after
 * their handshake through tls-direct-reads.ts (the TLS layer decrypts into that memory).
 */
export interface DirectReadHandler {
  /** The memory the next read goes into. */
  nextBuffer(): Buffer;
  /** `lengthBytes` were read into `buffer` (the one nextBuffer returned). */
  onRead(lengthBytes: number, buffer: Buffer): void;
}

export const STAGING_BUFFER_BYTES = 64 * 1024;

export class SocketInput {
  readonly #staging = Buffer.allocUnsafe(STAGING_BUFFER_BYTES);
  #handler: DirectReadHandler | undefined;
  #chunkListener: ((chunk: Buffer) => void) | undefined;

  /** Options for net.createConnection. */
  readonly onread = {
    buffer: (): Buffer => this.#handler?.nextBuffer() ?? this.#staging,
    callback: (lengthBytes: number, buffer: Uint8Array): boolean => {
      const handler = this.#handler;
      if (handler !== undefined) handler.onRead(lengthBytes, buffer as Buffer);
      else this.#chunkListener?.(Buffer.from(buffer.subarray(0, lengthBytes)));
      return true;
    },
  };

  get staging(): Buffer {
    return this.#staging;
  }

  /** Handshake phase: each read delivered as an owned copy. */
  setChunkListener(listener: ((chunk: Buffer) => void) | undefined): void {
    this.#chunkListener = listener;
  }

  /** Transmission phase: the client decides where each read goes. */
  setHandler(handler: DirectReadHandler | undefined): void {
    this.#handler = handler;
  }
}
