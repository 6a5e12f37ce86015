/**
 * A restore point's disk as the fold of its chain's indexes (key first, then deltas): for each
 * block, which index entry holds it, or nothing (a hole, read as zeros). Memory: 6 bytes per
 * block of the disk plus the indexes (1 TiB at 2 MiB blocks: 3 MiB + 18 MiB when fully written).
 */
import { BlockSet, blockCountFor, blockLengthBytes } from '../disk/index.ts';
import { HASH_BYTES } from './constants.ts';
import { RepositoryError } from './errors.ts';
import { entryHash, isZeroHash, type ChainIndex } from './index-codec.ts';

const HOLE = 0;

export class FoldedDisk {
  readonly sizeBytes: number;
  readonly blockSizeBytes: number;
  readonly blockCount: number;
  readonly indexes: readonly ChainIndex[];
  /** 1 + position in `indexes` of the entry holding each block; 0 = hole. */
  readonly #sourceOf: Uint16Array;
  readonly #entryOf: Uint32Array;
  readonly present: BlockSet;

  constructor(indexes: readonly ChainIndex[]) {
    const last = indexes.at(-1);
    if (last === undefined || indexes[0]?.kind !== 'key' || indexes.length > 0xfffe) {
      throw new RepositoryError('REPO_CHAIN_BROKEN', 'a fold needs a key index first');
    }
    this.indexes = indexes;
    this.sizeBytes = last.diskSizeBytes;
    this.blockSizeBytes = last.blockSizeBytes;
    this.blockCount = blockCountFor(this.sizeBytes, this.blockSizeBytes);
    this.#sourceOf = new Uint16Array(this.blockCount);
    this.#entryOf = new Uint32Array(this.blockCount);
    indexes.forEach((index, position) => {
      if (index.blockSizeBytes !== this.blockSizeBytes) {
        throw new RepositoryError('REPO_CHAIN_BROKEN', 'indexes of one chain differ in block size');
      }
      const { blockIndexes } = index;
      for (let entry = 0; entry < blockIndexes.length; entry += 1) {
        const blockIndex = blockIndexes[entry] ?? 0;
        if (blockIndex >= this.blockCount) break;
        const zero = index.kind === 'delta' && isZeroHash(entryHash(index, entry));
        this.#sourceOf[blockIndex] = zero ? HOLE : position + 1;
        this.#entryOf[blockIndex] = entry;
      }
    });
    this.present = new BlockSet(this.blockCount);
    for (let blockIndex = 0; blockIndex < this.blockCount; blockIndex += 1) {
      if (this.#sourceOf[blockIndex] !== HOLE) this.present.add(blockIndex);
    }
  }

  /** The sha256 of block `blockIndex`, or undefined for a hole (zeros). A view: do not keep it. */
  hashOf(blockIndex: number): Buffer | undefined {
    const source = this.#sourceOf[blockIndex] ?? HOLE;
    if (source === HOLE) return undefined;
    const index = this.indexes[source - 1];
    return index === undefined ? undefined : entryHash(index, this.#entryOf[blockIndex] ?? 0);
  }

  lengthOf(blockIndex: number): number {
    return blockLengthBytes(blockIndex, this.sizeBytes, this.blockSizeBytes);
  }

  /** Every distinct block hash present, as latin1 strings (set keys). */
  hashSet(): Set<string> {
    const set = new Set<string>();
    for (const blockIndex of this.present) {
      const hash = this.hashOf(blockIndex);
      if (hash !== undefined) set.add(hash.toString('latin1'));
    }
    return set;
  }
}

/** Adds every non-zero hash of an index to `set` (latin1 keys). */
export function addIndexHashes(set: Set<string>, index: ChainIndex): void {
  const { hashes } = index;
  for (let offset = 0; offset < hashes.length; offset += HASH_BYTES) {
    const hash = hashes.subarray(offset, offset + HASH_BYTES);
    if (!isZeroHash(hash)) set.add(hash.toString('latin1'));
  }
}
