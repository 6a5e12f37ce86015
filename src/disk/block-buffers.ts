/**
 * Reusable block buffers. Every block a source reads needs a block-sized buffer; allocating a new
 * one each time costs page faults on fresh memory and, above all, garbage collection: V8 runs a
 * full mark-compact for every few tens of MiB of new buffer memory, hundreds per GiB read. A
 * source takes its buffers here and yields blocks whose `release()` gives them back; consumers
 * that call `release()` (the repository writer, restore loops) make the steady state allocate
 * nothing. `take` of a shorter length returns the start of a pooled buffer (a partial last block,
 * a compressed object); `give` accepts only what `take` lent, once; anything else is left to the
 * garbage collector.
 *
 * By default the memory is a SharedArrayBuffer: worker threads (the repository's block workers)
 * can then hash, compress and decompress a block in place, with no copy into and out of their own
 * memory; see BlockMemory for when not. V8 collects unreachable SharedArrayBuffers
 * lazily (a process reading disk after disk grew by ~130 MiB per disk before a collection), so
 * free buffers are not kept per instance but in free lists for the whole process, one per memory
 * kind and length: the next disk reuses the previous disk's buffers, and a buffer goes back to
 * the list of its own kind (a private one handed out over the shared budget, see take, never
 * takes a shared one's place). A give keeps the buffer while its list is shorter than the
 * giver's `maxFree`, so what stays allocated when idle is, per list, the largest `maxFree` in
 * use: with 2 MiB blocks about 72 MiB for NBD disks (their read-ahead window), 32 MiB for files
 * and restore points, 32 MiB for block objects (and as much again in private lists for
 * consumers that went over their shared budget).
 */
import type { Block } from './disk.ts';

/**
 * 'shared': SharedArrayBuffer memory, for blocks that worker threads process in place (sources
 * feeding the repository from the kernel: files; restore points). 'private': ordinary memory,
 * for producers that fill blocks with JavaScript copies (an NBD client copies the payload bytes
 * that arrive with a reply header): V8 copies into shared memory with relaxed atomic stores,
 * byte by byte when source and target are not equally aligned, ten times slower than memcpy
 * (2.0 s instead of 0.2 s of copies per 4 GiB read over NBD).
 */
export type BlockMemory = 'shared' | 'private';

export class BlockBuffers {
  readonly lengthBytes: number;
  readonly maxFree: number;
  readonly memory: BlockMemory;
  /** Free buffers by memory kind and length, shared by every instance of the process. */
  static readonly #freeLists = new Map<string, Buffer[]>();
  readonly #sharedFree: Buffer[];
  readonly #privateFree: Buffer[];
  /** Buffers handed out and not yet given back: a buffer is accepted back only once. */
  readonly #lent = new WeakSet<ArrayBufferLike>();
  /** Shared buffers handed out and not given back (see take). */
  #sharedOut = 0;

  constructor(lengthBytes: number, maxFree = 16, memory: BlockMemory = 'shared') {
    this.lengthBytes = lengthBytes;
    this.maxFree = maxFree;
    this.memory = memory;
    this.#sharedFree = BlockBuffers.#freeList('shared', lengthBytes);
    this.#privateFree = BlockBuffers.#freeList('private', lengthBytes);
  }

  static #freeList(memory: BlockMemory, lengthBytes: number): Buffer[] {
    const key = `${memory}:${lengthBytes}`;
    let free = BlockBuffers.#freeLists.get(key);
    if (free === undefined) BlockBuffers.#freeLists.set(key, (free = []));
    return free;
  }

  /** A buffer of `lengthBytes` (reused when one was given back, else new; contents undefined). */
  take(lengthBytes: number): Buffer {
    if (lengthBytes > this.lengthBytes) return Buffer.allocUnsafe(lengthBytes);
    // V8 does not count SharedArrayBuffer memory towards collecting garbage, so shared buffers
    // a consumer drops without release() pile up (1 TiB restore read: 2 GiB of RSS). Past
    // `maxFree` shared buffers out, buffers are private: a consumer that releases stays below,
    // one that does not leaks at most `maxFree` shared buffers before the collector sees the rest.
    let buffer: Buffer;
    if (this.memory === 'shared' && this.#sharedOut < this.maxFree) {
      buffer = this.#sharedFree.pop() ?? Buffer.from(new SharedArrayBuffer(this.lengthBytes));
      this.#sharedOut += 1;
    } else {
      buffer = this.#privateFree.pop() ?? Buffer.allocUnsafeSlow(this.lengthBytes);
    }
    this.#lent.add(buffer.buffer);
    return lengthBytes === this.lengthBytes ? buffer : buffer.subarray(0, lengthBytes);
  }

  /** Gives back a buffer from `take` (others, and a second give, are ignored). */
  give(buffer: Buffer): void {
    const memory = buffer.buffer;
    if (!this.#lent.has(memory)) return;
    this.#lent.delete(memory);
    const shared = memory instanceof SharedArrayBuffer;
    if (shared) this.#sharedOut -= 1;
    const free = shared ? this.#sharedFree : this.#privateFree;
    if (free.length < this.maxFree) free.push(Buffer.from(memory, 0, this.lengthBytes));
  }

  /** `{index, data}` with a `release` that gives `data` back (once). */
  block(index: number, data: Buffer): Block {
    return { index, data, release: () => this.give(data) };
  }
}
