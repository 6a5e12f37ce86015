/** A checked big-endian writer into a fixed-size buffer (headers, requests, index records). */
import { BinaryError } from './errors.ts';

export class ByteWriter {
  readonly buffer: Buffer;
  #offsetBytes = 0;

  constructor(lengthBytes: number) {
    this.buffer = Buffer.alloc(lengthBytes);
  }

  get offsetBytes(): number {
    return this.#offsetBytes;
  }

  #take(lengthBytes: number, field: string): number {
    if (this.#offsetBytes + lengthBytes > this.buffer.length) {
      throw new BinaryError(
        'BINARY_RANGE',
        `${field}: writing past the end of a ${this.buffer.length}-byte buffer`,
      );
    }
    const at = this.#offsetBytes;
    this.#offsetBytes += lengthBytes;
    return at;
  }

  #checkUint(value: number, max: number, field: string): void {
    if (!Number.isInteger(value) || value < 0 || value > max) {
      throw new BinaryError('BINARY_RANGE', `${field}: ${value} does not fit (max ${max})`, {
        details: { field },
      });
    }
  }

  u8(value: number, field = 'u8'): this {
    this.#checkUint(value, 0xff, field);
    this.buffer.writeUInt8(value, this.#take(1, field));
    return this;
  }
  u16(value: number, field = 'u16'): this {
    this.#checkUint(value, 0xffff, field);
    this.buffer.writeUInt16BE(value, this.#take(2, field));
    return this;
  }
  u32(value: number, field = 'u32'): this {
    this.#checkUint(value, 0xffffffff, field);
    this.buffer.writeUInt32BE(value, this.#take(4, field));
    return this;
  }
  u64(value: number | bigint, field = 'u64'): this {
    const big = typeof value === 'bigint' ? value : BigInt(value);
    if (typeof value === 'number') this.#checkUint(value, Number.MAX_SAFE_INTEGER, field);
    if (big < 0n || big > 0xffffffffffffffffn)
      throw new BinaryError('BINARY_RANGE', `${field}: ${big} does not fit u64`);
    this.buffer.writeBigUInt64BE(big, this.#take(8, field));
    return this;
  }
  bytes(data: Uint8Array, field = 'bytes'): this {
    this.buffer.set(data, this.#take(data.length, field));
    return this;
  }
  zeros(lengthBytes: number, field = 'padding'): this {
    this.#take(lengthBytes, field);
    return this;
  }
}
