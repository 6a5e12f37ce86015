/**
 * Incremental handshake decoder: fed whatever chunks the socket delivers, it returns a complete
 * greeting, option reply or EXPORT_NAME reply once all its bytes are there, and `undefined` until
 * then. Option reply headers are validated (and their length capped) before the payload is awaited.
 */
import { ByteQueue } from './byte-queue.ts';
import {
  NBD_EXPORT_NAME_PADDING_BYTES,
  NBD_EXPORT_NAME_REPLY_BYTES,
  NBD_GREETING_BYTES,
  NBD_OPTION_REPLY_HEADER_BYTES,
} from './constants.ts';
import {
  decodeExportNameReply,
  decodeGreeting,
  decodeOptionReplyHeader,
  type NbdGreeting,
  type NbdOptionReply,
  type NbdOptionReplyHeader,
} from './handshake-codec.ts';

export class HandshakeDecoder {
  readonly #queue = new ByteQueue();
  #pendingHeader: NbdOptionReplyHeader | undefined;

  push(chunk: Buffer): void {
    this.#queue.push(chunk);
  }

  get bufferedBytes(): number {
    return this.#queue.lengthBytes;
  }

  /** Bytes received beyond the handshake (handed to the transmission decoder). */
  drain(): Buffer {
    return this.#queue.drain();
  }

  readGreeting(): NbdGreeting | undefined {
    if (this.#queue.lengthBytes < NBD_GREETING_BYTES) return undefined;
    return decodeGreeting(this.#queue.take(NBD_GREETING_BYTES));
  }

  readOptionReply(expectedOption: number): NbdOptionReply | undefined {
    if (this.#pendingHeader === undefined) {
      if (this.#queue.lengthBytes < NBD_OPTION_REPLY_HEADER_BYTES) return undefined;
      this.#pendingHeader = decodeOptionReplyHeader(
        this.#queue.take(NBD_OPTION_REPLY_HEADER_BYTES),
        expectedOption,
      );
    }
    const header = this.#pendingHeader;
    if (this.#queue.lengthBytes < header.lengthBytes) return undefined;
    this.#pendingHeader = undefined;
    // Copy: the payload outlives the chunks it came in.
    return { ...header, payload: Buffer.from(this.#queue.take(header.lengthBytes)) };
  }

  readExportNameReply(
    noZeroes: boolean,
  ): { sizeBytes: number; transmissionFlags: number } | undefined {
    const total = NBD_EXPORT_NAME_REPLY_BYTES + (noZeroes ? 0 : NBD_EXPORT_NAME_PADDING_BYTES);
    if (this.#queue.lengthBytes < total) return undefined;
    return decodeExportNameReply(this.#queue.take(total));
  }
}
