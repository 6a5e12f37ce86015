/**
 * Index objects (docs/design.md §4.5). A key index lists every non-zero block of the disk at one
 * restore point; a delta index lists the blocks that differ from its base (an all-zero hash marks
 * a block that became zero). Entries are sorted by block index. A sha256 of everything before it
 * closes the object. Pure: bytes in, values out.
 */
import { createHash } from 'node:crypto';
import { ByteReader, ByteWriter, BinaryError } from '../binary/index.ts';
import { blockCountFor } from '../disk/index.ts';
import {
  CHAIN_ID_PATTERN,
  HASH_BYTES,
  INDEX_ENTRY_BYTES,
  INDEX_HEADER_BYTES,
  INDEX_KIND_DELTA,
  INDEX_KIND_KEY,
  INDEX_MAGIC,
  INDEX_TRAILER_BYTES,
  INDEX_VERSION,
  MAX_SEQ,
  NO_BASE_SEQ,
} from './constants.ts';
import { hashAlgorithmCode, hashAlgorithmOfCode, type BlockHashName } from './block-hash.ts';
import { RepositoryError } from './errors.ts';

export const ZERO_HASH = Buffer.alloc(HASH_BYTES);

export interface ChainIndex {
  readonly kind: 'key' | 'delta';
  readonly chainId: string;
  readonly seq: number;
  /** Sequence number of the state this delta applies to; undefined for a key index. */
  readonly baseSeq: number | undefined;
  readonly blockSizeBytes: number;
  readonly diskSizeBytes: number;
  /** Ascending block indexes, one per entry. */
  readonly blockIndexes: Uint32Array;
  /** The algorithm of `hashes`: the repository's block hash (§4.1). */
  readonly hash: BlockHashName;
  /** entryCount × 32 bytes: the hash of each entry's block; all zero = zero block (delta only). */
  readonly hashes: Buffer;
}

export function entryHash(index: ChainIndex, entry: number): Buffer {
  return index.hashes.subarray(entry * HASH_BYTES, (entry + 1) * HASH_BYTES);
}

export function isZeroHash(hash: Buffer): boolean {
  return hash.equals(ZERO_HASH);
}

export function encodeIndex(index: ChainIndex): Buffer {
  const count = index.blockIndexes.length;
  const writer = new ByteWriter(
    INDEX_HEADER_BYTES + count * INDEX_ENTRY_BYTES + INDEX_TRAILER_BYTES,
  );
  writer
    .u32(INDEX_MAGIC, 'magic')
    .u8(INDEX_VERSION, 'version')
    .u8(index.kind === 'key' ? INDEX_KIND_KEY : INDEX_KIND_DELTA, 'kind')
    .u8(hashAlgorithmCode(index.hash), 'hashAlgorithm')
    .u8(0, 'reserved')
    .u32(index.blockSizeBytes, 'blockSizeBytes')
    .u64(index.diskSizeBytes, 'diskSizeBytes')
    .u32(index.seq, 'seq')
    .u32(index.baseSeq ?? NO_BASE_SEQ, 'baseSeq')
    .u32(count, 'entryCount')
    .bytes(Buffer.from(index.chainId, 'hex'), 'chainId');
  for (let entry = 0; entry < count; entry += 1) {
    writer.u32(index.blockIndexes[entry] ?? 0, 'blockIndex').bytes(entryHash(index, entry), 'hash');
  }
  const body = writer.buffer.subarray(0, writer.offsetBytes);
  writer.bytes(createHash('sha256').update(body).digest(), 'checksum');
  return writer.buffer;
}

function corrupt(key: string, message: string, cause?: unknown): RepositoryError {
  return new RepositoryError('REPO_INDEX_CORRUPT', `${key}: ${message}`, {
    cause,
    details: { key },
  });
}

/** Decodes and checks an index object: magic, version, lengths, order, ranges and checksum. */
export function decodeIndex(key: string, object: Buffer): ChainIndex {
  try {
    const reader = new ByteReader(object);
    if (reader.u32('magic') !== INDEX_MAGIC) throw corrupt(key, 'bad magic');
    const version = reader.u8('version');
    if (version !== INDEX_VERSION) throw corrupt(key, `unsupported version ${version}`);
    const kindCode = reader.u8('kind');
    if (kindCode !== INDEX_KIND_KEY && kindCode !== INDEX_KIND_DELTA) {
      throw corrupt(key, `unknown kind ${kindCode}`);
    }
    const hashCode = reader.u8('hashAlgorithm');
    const hashName = hashAlgorithmOfCode(hashCode);
    if (hashName === undefined) throw corrupt(key, `unknown hash algorithm ${hashCode}`);
    if (reader.u8('reserved') !== 0) throw corrupt(key, 'reserved field is not zero');
    const blockSizeBytes = reader.u32('blockSizeBytes');
    const diskSizeBytes = reader.u64Number('diskSizeBytes');
    const seq = reader.u32('seq');
    const baseSeqRaw = reader.u32('baseSeq');
    const count = reader.u32('entryCount');
    const chainId = reader.bytes(16, 'chainId').toString('hex');
    if (blockSizeBytes === 0) throw corrupt(key, 'block size 0');
    if (seq > MAX_SEQ) throw corrupt(key, `seq ${seq} out of range`);
    const kind = kindCode === INDEX_KIND_KEY ? 'key' : 'delta';
    if (kind === 'key' ? baseSeqRaw !== NO_BASE_SEQ : baseSeqRaw >= seq) {
      throw corrupt(key, `base seq ${baseSeqRaw} invalid for a ${kind} index at seq ${seq}`);
    }
    const expectedBytes = INDEX_HEADER_BYTES + count * INDEX_ENTRY_BYTES + INDEX_TRAILER_BYTES;
    if (object.length !== expectedBytes) {
      throw corrupt(
        key,
        `object is ${object.length} bytes, ${count} entries need ${expectedBytes}`,
      );
    }
    const body = object.subarray(0, expectedBytes - INDEX_TRAILER_BYTES);
    const checksum = object.subarray(expectedBytes - INDEX_TRAILER_BYTES);
    if (!createHash('sha256').update(body).digest().equals(checksum)) {
      throw corrupt(key, 'checksum mismatch');
    }
    const blockCount = blockCountFor(diskSizeBytes, blockSizeBytes);
    const blockIndexes = new Uint32Array(count);
    const hashes = Buffer.allocUnsafe(count * HASH_BYTES);
    let previous = -1;
    for (let entry = 0; entry < count; entry += 1) {
      const blockIndex = reader.u32('blockIndex');
      const hash = reader.bytes(HASH_BYTES, 'hash');
      if (blockIndex <= previous || blockIndex >= blockCount) {
        throw corrupt(key, `entry ${entry}: block index ${blockIndex} out of order or range`);
      }
      if (kind === 'key' && isZeroHash(hash))
        throw corrupt(key, `entry ${entry}: zero hash in a key`);
      previous = blockIndex;
      blockIndexes[entry] = blockIndex;
      hash.copy(hashes, entry * HASH_BYTES);
    }
    if (!CHAIN_ID_PATTERN.test(chainId)) throw corrupt(key, 'bad chain id');
    return {
      kind,
      chainId,
      seq,
      baseSeq: kind === 'key' ? undefined : baseSeqRaw,
      blockSizeBytes,
      diskSizeBytes,
      hash: hashName,
      blockIndexes,
      hashes,
    };
  } catch (error) {
    if (error instanceof BinaryError) throw corrupt(key, error.message, error);
    throw error;
  }
}

/** Accumulates entries in ascending block order without knowing their count in advance. */
export class IndexBuilder {
  #indexes = new Uint32Array(1024);
  #hashes = Buffer.allocUnsafe(1024 * HASH_BYTES);
  #count = 0;

  get count(): number {
    return this.#count;
  }

  add(blockIndex: number, hash: Buffer): void {
    if (this.#count === this.#indexes.length) {
      const indexes = new Uint32Array(this.#indexes.length * 2);
      indexes.set(this.#indexes);
      this.#indexes = indexes;
      const hashes = Buffer.allocUnsafe(this.#hashes.length * 2);
      this.#hashes.copy(hashes);
      this.#hashes = hashes;
    }
    this.#indexes[this.#count] = blockIndex;
    hash.copy(this.#hashes, this.#count * HASH_BYTES);
    this.#count += 1;
  }

  build(header: Omit<ChainIndex, 'blockIndexes' | 'hashes'>): ChainIndex {
    return {
      ...header,
      blockIndexes: this.#indexes.slice(0, this.#count),
      hashes: Buffer.from(this.#hashes.subarray(0, this.#count * HASH_BYTES)),
    };
  }
}
