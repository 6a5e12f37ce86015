/**
 * A checked big-endian cursor over a buffer. Every read checks the remaining length first and
 * throws BINARY_TRUNCATED naming the field, so decoders never read garbage past the end.
 */
import { BinaryError } from './errors.ts';

export class ByteReader {
  readonly buffer: Buffer;
  #offsetBytes: number;

  constructor(buffer: Buffer, offsetBytes = 0) {
    this.buffer = buffer;
    this.#offsetBytes = offsetBytes;
  }

  get offsetBytes(): number {
    return this.#offsetBytes;
  }

  get remainingBytes(): number {
    return this.buffer.length - this.#offsetBytes;
  }

  #take(lengthBytes: number, field: string): number {
    if (lengthBytes < 0 || this.remainingBytes < lengthBytes) {
      throw new BinaryError(
        'BINARY_TRUNCATED',
        `${field}: needs ${lengthBytes} bytes at offset ${this.#offsetBytes}, ${this.remainingBytes} left`,
        { details: { field, offsetBytes: this.#offsetBytes, lengthBytes } },
      );
    }
    const at = this.#offsetBytes;
    this.#offsetBytes += lengthBytes;
    return at;
  }

  u8(field = 'u8'): number {
    return this.buffer.readUInt8(this.#take(1, field));
  }
  u16(field = 'u16'): number {
    return this.buffer.readUInt16BE(this.#take(2, field));
  }
  u32(field = 'u32'): number {
    return this.buffer.readUInt32BE(this.#take(4, field));
  }
  /** A u64 as a bigint (exact). */
  u64(field = 'u64'): bigint {
    return this.buffer.readBigUInt64BE(this.#take(8, field));
  }
  /** A u64 as a number; throws BINARY_RANGE above 2^53 - 1. */
  u64Number(field = 'u64'): number {
    const value = this.u64(field);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new BinaryError('BINARY_RANGE', `${field}: ${value} exceeds 2^53-1`, {
        details: { field },
      });
    }
    return Number(value);
  }
  /** A view (no copy) of the next `lengthBytes` bytes. */
  bytes(lengthBytes: number, field = 'bytes'): Buffer {
    const at = this.#take(lengthBytes, field);
    return this.buffer.subarray(at, at + lengthBytes);
  }
  skip(lengthBytes: number, field = 'padding'): void {
    this.#take(lengthBytes, field);
  }
}
