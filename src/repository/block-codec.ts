/**
 * Block objects (docs/design.md §4.4): a 48-byte header (magic, version, codec, plain and
 * payload lengths, sha256 of the plaintext) then the payload. Pure: bytes in, values out.
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { Compressor } from 'zstd-napi';
import { ByteReader, ByteWriter, BinaryError } from '../binary/index.ts';
import {
  BLOCK_HEADER_BYTES,
  BLOCK_MAGIC,
  BLOCK_VERSION,
  CODEC_NONE,
  CODEC_ZSTD,
  HASH_BYTES,
  MIN_COMPRESSION_SAVING,
} from './constants.ts';
import type { CompressionConfig } from './config.ts';
import { RepositoryError } from './errors.ts';

export function hashBlock(data: Buffer): Buffer {
  return createHash('sha256').update(data).digest();
}

/** A reusable block encoder (one zstd context; not shared across threads). */
export class BlockEncoder {
  readonly #compressor: Compressor | undefined;

  constructor(compression: CompressionConfig) {
    if (compression.codec === 'zstd') {
      this.#compressor = new Compressor();
      this.#compressor.setParameters({ compressionLevel: compression.level });
    }
  }

  /** Encodes `data` (whose sha256 is `hash`) as a block object. */
  encode(data: Buffer, hash: Buffer): Buffer {
    let codec = CODEC_NONE;
    let payload = data;
    if (this.#compressor !== undefined) {
      const compressed = this.#compressor.compress(data);
      if (compressed.length <= data.length * (1 - MIN_COMPRESSION_SAVING)) {
        codec = CODEC_ZSTD;
        payload = compressed;
      }
    }
    const header = new ByteWriter(BLOCK_HEADER_BYTES)
      .u32(BLOCK_MAGIC, 'magic')
      .u8(BLOCK_VERSION, 'version')
      .u8(codec, 'codec')
      .u16(0, 'reserved')
      .u32(data.length, 'plainLengthBytes')
      .u32(payload.length, 'payloadLengthBytes')
      .bytes(hash, 'hash');
    return Buffer.concat([header.buffer, payload]);
  }
}

type ZstdBinding = typeof import('zstd-napi/binding.js');
// The low-level binding decompresses into a buffer we size: a forged frame header cannot make us
// allocate more than one block.
const zstdBinding = createRequire(import.meta.url)('zstd-napi/binding.js') as ZstdBinding;
const decompressor = new zstdBinding.DCtx();

function corrupt(key: string, message: string, cause?: unknown): RepositoryError {
  return new RepositoryError('REPO_BLOCK_CORRUPT', `${key}: ${message}`, {
    cause,
    details: { key },
  });
}

export interface DecodedBlockHeader {
  readonly codec: number;
  readonly plainLengthBytes: number;
  readonly payloadLengthBytes: number;
  readonly hash: Buffer;
}

export function decodeBlockHeader(key: string, object: Buffer): DecodedBlockHeader {
  try {
    const reader = new ByteReader(object);
    if (reader.u32('magic') !== BLOCK_MAGIC) throw corrupt(key, 'bad magic');
    const version = reader.u8('version');
    if (version !== BLOCK_VERSION) throw corrupt(key, `unsupported version ${version}`);
    const codec = reader.u8('codec');
    if (codec !== CODEC_NONE && codec !== CODEC_ZSTD) throw corrupt(key, `unknown codec ${codec}`);
    if (reader.u16('reserved') !== 0) throw corrupt(key, 'reserved field is not zero');
    const plainLengthBytes = reader.u32('plainLengthBytes');
    const payloadLengthBytes = reader.u32('payloadLengthBytes');
    const hash = reader.bytes(HASH_BYTES, 'hash');
    return { codec, plainLengthBytes, payloadLengthBytes, hash };
  } catch (error) {
    if (error instanceof BinaryError) throw corrupt(key, error.message, error);
    throw error;
  }
}

/**
 * Decodes and checks a block object: magic, version, codec, lengths, and the plaintext's sha256
 * against `expectedHash` (the name it was fetched by) and the expected plain length.
 */
export function decodeBlockObject(
  key: string,
  object: Buffer,
  expectedHash: Buffer,
  expectedLengthBytes: number,
): Buffer {
  const header = decodeBlockHeader(key, object);
  if (object.length !== BLOCK_HEADER_BYTES + header.payloadLengthBytes) {
    throw corrupt(
      key,
      `object is ${object.length} bytes, header says ${BLOCK_HEADER_BYTES + header.payloadLengthBytes}`,
    );
  }
  if (header.plainLengthBytes !== expectedLengthBytes) {
    throw corrupt(
      key,
      `block is ${header.plainLengthBytes} bytes, expected ${expectedLengthBytes}`,
    );
  }
  if (!header.hash.equals(expectedHash)) throw corrupt(key, 'header hash differs from its name');
  const payload = object.subarray(BLOCK_HEADER_BYTES);
  let plain: Buffer;
  if (header.codec === CODEC_NONE) {
    plain = payload;
    if (plain.length !== expectedLengthBytes) throw corrupt(key, 'payload length mismatch');
  } else {
    plain = Buffer.allocUnsafe(expectedLengthBytes);
    let written: number;
    try {
      written = decompressor.decompress(plain, payload);
    } catch (cause) {
      throw corrupt(key, 'zstd payload does not decompress', cause);
    }
    if (written !== expectedLengthBytes) throw corrupt(key, 'decompressed length mismatch');
  }
  if (!hashBlock(plain).equals(expectedHash)) throw corrupt(key, 'content does not match its hash');
  return plain;
}
