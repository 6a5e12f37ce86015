/**
 * Field tables: a fixed-size binary structure described as data (name, offset, size, type), so
 * that codecs read and write fields by name and tests can assert every offset and size against
 * the specification. A table is checked when it is defined: fields are sorted, contiguous, do not
 * overlap, and cover the structure exactly. All integers are big-endian.
 */
import { BinaryError } from './errors.ts';

export type FieldType = 'u8' | 'u16' | 'u32' | 'u64' | 'bytes';

export interface FieldSpec<N extends string = string> {
  readonly name: N;
  readonly offsetBytes: number;
  readonly sizeBytes: number;
  readonly type: FieldType;
}

const integerSizes: Readonly<Record<Exclude<FieldType, 'bytes'>, number>> = {
  u8: 1,
  u16: 2,
  u32: 4,
  u64: 8,
};

export class FieldTable<N extends string> {
  readonly structName: string;
  readonly totalBytes: number;
  readonly fields: readonly FieldSpec<N>[];
  readonly #byName: ReadonlyMap<N, FieldSpec<N>>;

  constructor(structName: string, totalBytes: number, fields: readonly FieldSpec<N>[]) {
    this.structName = structName;
    this.totalBytes = totalBytes;
    this.fields = fields;
    const byName = new Map<N, FieldSpec<N>>();
    let expectedOffset = 0;
    for (const field of fields) {
      if (byName.has(field.name)) throw this.#bad(field.name, 'is defined twice');
      if (field.offsetBytes !== expectedOffset)
        throw this.#bad(field.name, `starts at ${field.offsetBytes}, expected ${expectedOffset}`);
      if (field.type !== 'bytes' && integerSizes[field.type] !== field.sizeBytes)
        throw this.#bad(field.name, `is a ${field.type} of ${field.sizeBytes} bytes`);
      if (field.sizeBytes <= 0) throw this.#bad(field.name, 'has no size');
      byName.set(field.name, field);
      expectedOffset += field.sizeBytes;
    }
    if (expectedOffset !== totalBytes)
      throw new BinaryError(
        'BINARY_RANGE',
        `${structName}: fields cover ${expectedOffset} bytes, structure is ${totalBytes}`,
      );
    this.#byName = byName;
  }

  #bad(name: string, what: string): BinaryError {
    return new BinaryError('BINARY_RANGE', `${this.structName}.${name} ${what}`, {
      details: { field: `${this.structName}.${name}` },
    });
  }

  field(name: N): FieldSpec<N> {
    const field = this.#byName.get(name);
    if (field === undefined) throw this.#bad(name, 'is not a field');
    return field;
  }

  #at(buffer: Uint8Array, name: N, baseOffsetBytes: number): FieldSpec<N> {
    const field = this.field(name);
    if (baseOffsetBytes + this.totalBytes > buffer.length)
      throw new BinaryError(
        'BINARY_TRUNCATED',
        `${this.structName}: needs ${this.totalBytes} bytes at ${baseOffsetBytes}, buffer has ${buffer.length}`,
        { details: { field: `${this.structName}.${name}` } },
      );
    return field;
  }

  /** An unsigned integer field (u64 fields must be at most 2^53 - 1). */
  readUint(buffer: Buffer, name: N, baseOffsetBytes = 0): number {
    const field = this.#at(buffer, name, baseOffsetBytes);
    const at = baseOffsetBytes + field.offsetBytes;
    switch (field.type) {
      case 'u8':
        return buffer.readUInt8(at);
      case 'u16':
        return buffer.readUInt16BE(at);
      case 'u32':
        return buffer.readUInt32BE(at);
      case 'u64': {
        const value = buffer.readBigUInt64BE(at);
        if (value > BigInt(Number.MAX_SAFE_INTEGER))
          throw this.#bad(name, `${value} exceeds 2^53-1`);
        return Number(value);
      }
      case 'bytes':
        throw this.#bad(name, 'is not an integer field');
    }
  }

  readBigUint(buffer: Buffer, name: N, baseOffsetBytes = 0): bigint {
    const field = this.#at(buffer, name, baseOffsetBytes);
    if (field.type !== 'u64') return BigInt(this.readUint(buffer, name, baseOffsetBytes));
    return buffer.readBigUInt64BE(baseOffsetBytes + field.offsetBytes);
  }

  /** A view (no copy) of a field's bytes. */
  readBytes(buffer: Buffer, name: N, baseOffsetBytes = 0): Buffer {
    const field = this.#at(buffer, name, baseOffsetBytes);
    const at = baseOffsetBytes + field.offsetBytes;
    return buffer.subarray(at, at + field.sizeBytes);
  }

  writeUint(buffer: Buffer, name: N, value: number | bigint, baseOffsetBytes = 0): void {
    const field = this.#at(buffer, name, baseOffsetBytes);
    const at = baseOffsetBytes + field.offsetBytes;
    const big = BigInt(value);
    if (field.type === 'bytes') throw this.#bad(name, 'is not an integer field');
    const max = (1n << BigInt(8 * field.sizeBytes)) - 1n;
    if (big < 0n || big > max) throw this.#bad(name, `cannot hold ${big}`);
    if (field.type === 'u64') buffer.writeBigUInt64BE(big, at);
    else buffer.writeUIntBE(Number(big), at, field.sizeBytes);
  }

  /** Copies `data` into a bytes field; the rest of the field is zero-filled. */
  writeBytes(buffer: Buffer, name: N, data: Uint8Array, baseOffsetBytes = 0): void {
    const field = this.#at(buffer, name, baseOffsetBytes);
    if (data.length > field.sizeBytes)
      throw this.#bad(name, `holds ${field.sizeBytes} bytes, got ${data.length}`);
    const at = baseOffsetBytes + field.offsetBytes;
    buffer.fill(0, at, at + field.sizeBytes);
    buffer.set(data, at);
  }
}
