/**
 * A set of block indexes over [0, blockCount), stored as a bitmap: 1 TiB at 2 MiB blocks is
 * 524,288 blocks = 64 KiB of memory. Iteration is in ascending index order.
 */
import { CoreError } from '../core/index.ts';

export class BlockSet implements Iterable<number> {
  readonly blockCount: number;
  readonly #bits: Uint32Array;
  #count = 0;

  constructor(blockCount: number) {
    if (!Number.isInteger(blockCount) || blockCount < 0) {
      throw new CoreError('INVALID_ARGUMENT', `block count ${blockCount} is not a natural number`);
    }
    this.blockCount = blockCount;
    this.#bits = new Uint32Array(Math.ceil(blockCount / 32));
  }

  static all(blockCount: number): BlockSet {
    const set = new BlockSet(blockCount);
    set.addRange(0, blockCount);
    return set;
  }

  static of(blockCount: number, indexes: Iterable<number>): BlockSet {
    const set = new BlockSet(blockCount);
    for (const index of indexes) set.add(index);
    return set;
  }

  /** Number of blocks in the set. */
  get count(): number {
    return this.#count;
  }

  #check(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.blockCount) {
      throw new CoreError(
        'INVALID_ARGUMENT',
        `block index ${index} outside [0, ${this.blockCount})`,
      );
    }
  }

  has(index: number): boolean {
    if (index < 0 || index >= this.blockCount) return false;
    return ((this.#bits[index >>> 5] ?? 0) & (1 << (index & 31))) !== 0;
  }

  add(index: number): void {
    this.#check(index);
    const word = index >>> 5;
    const mask = 1 << (index & 31);
    const old = this.#bits[word] ?? 0;
    if ((old & mask) === 0) {
      this.#bits[word] = old | mask;
      this.#count += 1;
    }
  }

  delete(index: number): void {
    if (!this.has(index)) return;
    const word = index >>> 5;
    this.#bits[word] = (this.#bits[word] ?? 0) & ~(1 << (index & 31));
    this.#count -= 1;
  }

  /** Adds every index in [startIndex, endIndex). */
  addRange(startIndex: number, endIndex: number): void {
    for (let index = startIndex; index < endIndex; index += 1) this.add(index);
  }

  /** Adds the blocks touched by the byte range [offsetBytes, offsetBytes + lengthBytes). */
  addByteRange(offsetBytes: number, lengthBytes: number, blockSizeBytes: number): void {
    if (lengthBytes <= 0) return;
    const first = Math.floor(offsetBytes / blockSizeBytes);
    const last = Math.min(this.blockCount, Math.ceil((offsetBytes + lengthBytes) / blockSizeBytes));
    this.addRange(first, last);
  }

  union(other: BlockSet): BlockSet {
    const result = new BlockSet(Math.max(this.blockCount, other.blockCount));
    for (const index of this) result.add(index);
    for (const index of other) result.add(index);
    return result;
  }

  *[Symbol.iterator](): Iterator<number> {
    const bits = this.#bits;
    for (let word = 0; word < bits.length; word += 1) {
      let value = bits[word] ?? 0;
      while (value !== 0) {
        const bit = 31 - Math.clz32(value & -value);
        yield word * 32 + bit;
        value &= value - 1;
      }
    }
  }

  toArray(): number[] {
    return [...this];
  }
}
