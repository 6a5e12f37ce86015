/**
 * Block objects (docs/design.md §4.4): a 48-byte header (magic, version, codec, plain and
 * payload lengths, hash of the plaintext by the repository's algorithm) then the payload.
 * Pure: bytes in, values out.
 */
import { createRequire } from 'node:module';
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
import { hashBlock, type BlockHashName } from './block-hash.ts';
import type { CompressionConfig } from './config.ts';
import { RepositoryError } from './errors.ts';

/** Writes the 48-byte header into the first bytes of `object` (payload already after it). */
export function writeBlockHeader(
  object: Buffer,
  codec: number,
  plainLengthBytes: number,
  payloadLengthBytes: number,
  hash: Buffer,
): void {
  const header = new ByteWriter(BLOCK_HEADER_BYTES)
    .u32(BLOCK_MAGIC, 'magic')
    .u8(BLOCK_VERSION, 'version')
    .u8(codec, 'codec')
    .u16(0, 'reserved')
    .u32(plainLengthBytes, 'plainLengthBytes')
    .u32(payloadLengthBytes, 'payloadLengthBytes')
    .bytes(hash, 'hash');
  header.buffer.copy(object, 0);
}

type ZstdBinding = typeof import('zstd-napi/binding.js');
// The low-level binding compresses and decompresses into buffers we size: no extra copies, and a
// forged frame header cannot make us allocate more than one block.
const zstdRequire = createRequire(import.meta.url);
export const zstdBindingPath = zstdRequire.resolve('zstd-napi/binding.js');
const zstdBinding = zstdRequire(zstdBindingPath) as ZstdBinding;

/** The largest zstd frame a block of `lengthBytes` can compress to. */
export function zstdCompressBound(lengthBytes: number): number {
  return zstdBinding.compressBound(lengthBytes);
}

/** Whether a compressed payload is worth keeping (§4.4). */
export function keepsCompressed(payloadLengthBytes: number, plainLengthBytes: number): boolean {
  return payloadLengthBytes <= plainLengthBytes * (1 - MIN_COMPRESSION_SAVING);
}

/** A reusable block encoder on the calling thread (one zstd context). */
export class BlockEncoder {
  readonly #cctx: InstanceType<ZstdBinding['CCtx']> | undefined;
  readonly #level: number;
  #scratch = Buffer.alloc(0);

  constructor(compression: CompressionConfig) {
    this.#level = compression.codec === 'zstd' ? compression.level : 0;
    if (compression.codec === 'zstd') this.#cctx = new zstdBinding.CCtx();
  }

  /** Encodes `data` (whose hash is `hash`) as a block object. */
  encode(data: Buffer, hash: Buffer): Buffer {
    if (this.#cctx !== undefined) {
      // Compress into a reusable scratch buffer, then copy into an exact-size object: a highly
      // compressible block must not pin a block-sized buffer while its put is in flight.
      const bound = zstdBinding.compressBound(data.length);
      if (this.#scratch.length < bound) this.#scratch = Buffer.allocUnsafe(bound);
      const payloadLengthBytes = this.#cctx.compress(
        this.#scratch.subarray(0, bound),
        data,
        this.#level,
      );
      if (keepsCompressed(payloadLengthBytes, data.length)) {
        const object = Buffer.allocUnsafe(BLOCK_HEADER_BYTES + payloadLengthBytes);
        this.#scratch.copy(object, BLOCK_HEADER_BYTES, 0, payloadLengthBytes);
        writeBlockHeader(object, CODEC_ZSTD, data.length, payloadLengthBytes, hash);
        return object;
      }
    }
    const object = Buffer.allocUnsafe(BLOCK_HEADER_BYTES + data.length);
    data.copy(object, BLOCK_HEADER_BYTES);
    writeBlockHeader(object, CODEC_NONE, data.length, data.length, hash);
    return object;
  }
}

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

/** Checks a block object's framing (everything but the content) and returns codec and payload. */
export function openBlockObject(
  key: string,
  object: Buffer,
  expectedHash: Buffer,
  expectedLengthBytes: number,
): { codec: number; payload: Buffer } {
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
  if (header.codec === CODEC_NONE && header.payloadLengthBytes !== expectedLengthBytes) {
    throw corrupt(key, 'payload length mismatch');
  }
  return { codec: header.codec, payload: object.subarray(BLOCK_HEADER_BYTES) };
}

/** Decompresses a payload into exactly `expectedLengthBytes` (REPO_BLOCK_CORRUPT otherwise). */
export function decodeBlockPayload(
  key: string,
  codec: number,
  payload: Buffer,
  expectedLengthBytes: number,
): Buffer {
  if (codec === CODEC_NONE) return payload;
  const plain = Buffer.allocUnsafe(expectedLengthBytes);
  let written: number;
  try {
    written = decompressor.decompress(plain, payload);
  } catch (cause) {
    throw corrupt(key, 'zstd payload does not decompress', cause);
  }
  if (written !== expectedLengthBytes) throw corrupt(key, 'decompressed length mismatch');
  return plain;
}

export function checkBlockHash(
  key: string,
  plain: Buffer,
  expectedHash: Buffer,
  hashName: BlockHashName,
): void {
  if (!hashBlock(plain, hashName).equals(expectedHash)) {
    throw corrupt(key, 'content does not match its hash');
  }
}

/**
 * Decodes and checks a block object: magic, version, codec, lengths, and the plaintext's hash (by
 * `hashName`) against `expectedHash` (the name it was fetched by) and the expected plain length.
 */
export function decodeBlockObject(
  key: string,
  object: Buffer,
  expectedHash: Buffer,
  expectedLengthBytes: number,
  hashName: BlockHashName,
): Buffer {
  const { codec, payload } = openBlockObject(key, object, expectedHash, expectedLengthBytes);
  const plain = decodeBlockPayload(key, codec, payload, expectedLengthBytes);
  checkBlockHash(key, plain, expectedHash, hashName);
  return plain;
}
