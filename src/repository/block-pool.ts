/**
 * A pool of worker threads for the CPU-bound block work (hashing, zstd): on a 2-core machine the
 * main thread keeps reading, writing and coordinating while workers hash and (de)compress
 * (docs/design.md §4.10 has the figures). The workers run a small JavaScript kernel
 * (block-kernel.ts: hashing and zstd only, no format logic); framing and checks stay in
 * block-codec.ts on the calling thread.
 *
 * Data crosses threads through a fixed set of shared-memory slots (one input and one output
 * area each, sized for one block), never by transferring the caller's buffers: a block buffer may
 * be shared (a DiskTee hands the same buffer to the writer of every remote), so detaching it would
 * silently empty it for the others. The caller's bytes are copied into a slot, the worker writes
 * its result into the same slot, and the result is copied out into a buffer the caller owns; a
 * slot is busy only for one task. Fixed slots also keep block-sized allocations off the workers'
 * heaps (no garbage collection for them, no page faults on fresh memory).
 *
 * Blocks already in shared memory (BlockBuffers hands out SharedArrayBuffer memory) skip the
 * slots: the worker gets views of the caller's block and of an object buffer and works in place
 * (encode: hash, then compress straight into the object; decode: decompress straight into the
 * caller's block, then hash it). It only reads the block it encodes, so a shared block is safe.
 * Nothing is copied on the main thread, which on a 2-core machine is CPU the workers get back.
 */
import { Worker } from 'node:worker_threads';
import { Semaphore } from '../core/index.ts';
import { BlockBuffers } from '../disk/index.ts';
import {
  decodeBlockObject,
  openBlockObject,
  writeBlockHeader,
  zstdBindingPath,
  zstdCompressBound,
} from './block-codec.ts';
import { blake3BindingPath, type BlockHashName } from './block-hash.ts';
import { kernelSource } from './block-kernel.ts';
import type { RepositoryConfig } from './config.ts';
import { BLOCK_HEADER_BYTES, CODEC_NONE, CODEC_ZSTD, MIN_COMPRESSION_SAVING } from './constants.ts';
import { RepositoryError } from './errors.ts';

interface KernelResult {
  readonly id: number;
  readonly error?: string;
  readonly hash?: Uint8Array;
  readonly codec?: number;
  readonly payloadBytes?: number;
}

interface Pending {
  readonly resolve: (result: KernelResult) => void;
  readonly reject: (error: Error) => void;
  readonly worker: number;
}

interface Slot {
  readonly index: number;
  readonly input: Buffer;
  readonly output: Buffer;
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Shared memory a worker can work on in place (a view posted to it, not a copy). */
interface SharedRef {
  readonly memory: SharedArrayBuffer;
  readonly offsetBytes: number;
  readonly lengthBytes: number;
}

function sharedRef(buffer: Buffer): SharedRef | undefined {
  const memory = buffer.buffer;
  return memory instanceof SharedArrayBuffer
    ? { memory, offsetBytes: buffer.byteOffset, lengthBytes: buffer.length }
    : undefined;
}

/** Slots per worker: one task running, one queued, and the next being copied in or out. */
const SLOTS_PER_WORKER = 2;
const EXTRA_SLOTS = 2;

export class BlockWorkerPool {
  readonly size: number;
  /** The largest block the slots hold; larger ones are handled on the calling thread. */
  readonly blockCapacityBytes: number;
  readonly #workers: Worker[] = [];
  readonly #busy: number[] = [];
  readonly #pending = new Map<number, Pending>();
  readonly #slots: Slot[] = [];
  readonly #freeSlots: number[] = [];
  readonly #slotGate: Semaphore;
  /** Block objects handed out by `encode`, back through `recycleObject` once stored. */
  readonly #objects: BlockBuffers;
  #nextId = 1;
  #closed = false;
  #failure: RepositoryError | undefined;

  readonly #hashName: BlockHashName;

  constructor(
    size: number,
    codecs: Pick<RepositoryConfig, 'compression' | 'hash'>,
    blockCapacityBytes: number,
  ) {
    const { compression } = codecs;
    this.#hashName = codecs.hash;
    this.size = Math.max(1, Math.floor(size));
    this.blockCapacityBytes = blockCapacityBytes;
    const slotCount = this.size * SLOTS_PER_WORKER + EXTRA_SLOTS;
    const outputBytes = BLOCK_HEADER_BYTES + zstdCompressBound(blockCapacityBytes);
    const shared: { input: SharedArrayBuffer; output: SharedArrayBuffer }[] = [];
    for (let index = 0; index < slotCount; index += 1) {
      const input = new SharedArrayBuffer(blockCapacityBytes);
      const output = new SharedArrayBuffer(outputBytes);
      shared.push({ input, output });
      this.#slots.push({ index, input: Buffer.from(input), output: Buffer.from(output) });
      this.#freeSlots.push(index);
    }
    this.#slotGate = new Semaphore(slotCount);
    this.#objects = new BlockBuffers(BLOCK_HEADER_BYTES + blockCapacityBytes);
    for (let i = 0; i < this.size; i += 1) {
      const worker = new Worker(kernelSource, {
        eval: true,
        workerData: {
          bindingPath: zstdBindingPath,
          hashName: codecs.hash,
          blake3BindingPath,
          headroomBytes: BLOCK_HEADER_BYTES,
          level: compression.codec === 'zstd' ? compression.level : null,
          minSaving: MIN_COMPRESSION_SAVING,
          slots: shared,
        },
      });
      worker.on('message', (result: KernelResult) => {
        const pending = this.#pending.get(result.id);
        if (pending === undefined) return;
        this.#pending.delete(result.id);
        const busy = (this.#busy[pending.worker] ?? 1) - 1;
        this.#busy[pending.worker] = busy;
        if (busy === 0) worker.unref(); // idle: let the process exit
        pending.resolve(result);
      });
      // A worker that died fails its tasks, and the pool with it: a task sent to a dead worker
      // would never be answered.
      worker.on('error', (error) => this.#broken(error));
      worker.on('exit', () => {
        if (!this.#closed) this.#broken(new Error('a block worker exited'));
      });
      // Referenced only while it has work (see #run), so an idle pool never keeps the process
      // alive (a CLI run would not exit). After the listeners: adding one refs the port again.
      worker.unref();
      this.#workers.push(worker);
      this.#busy.push(0);
    }
  }

  /** Runs `fn` with a free slot; the slot is free again when `fn` settles. */
  async #withSlot<T>(fn: (slot: Slot) => Promise<T>): Promise<T> {
    const release = await this.#slotGate.acquire();
    const index = this.#freeSlots.pop();
    const slot = index === undefined ? undefined : this.#slots[index];
    try {
      if (slot === undefined) throw new RepositoryError('REPO_INVALID_REQUEST', 'no free slot');
      return await fn(slot);
    } finally {
      if (index !== undefined) this.#freeSlots.push(index);
      release();
    }
  }

  #broken(cause: Error): void {
    this.#failure ??= new RepositoryError(
      'REPO_INVALID_REQUEST',
      `block worker failed: ${cause.message}`,
      { cause },
    );
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const entry of pending) entry.reject(this.#failure);
  }

  #run(task: Record<string, unknown>): Promise<KernelResult> {
    if (this.#closed) {
      return Promise.reject(new RepositoryError('REPO_INVALID_REQUEST', 'block pool closed'));
    }
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    let worker = 0;
    for (let i = 1; i < this.size; i += 1) {
      if ((this.#busy[i] ?? 0) < (this.#busy[worker] ?? 0)) worker = i;
    }
    this.#busy[worker] = (this.#busy[worker] ?? 0) + 1;
    // A task in flight keeps the process alive (its caller may wait on nothing else).
    if (this.#busy[worker] === 1) this.#workers[worker]?.ref();
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, worker });
      this.#workers[worker]?.postMessage({ ...task, id });
    });
  }

  /** Hash and block object of `data` (left untouched: it may be shared with other readers). */
  async encode(data: Buffer): Promise<{ hash: Buffer; object: Buffer }> {
    if (data.length > this.blockCapacityBytes) {
      throw new RepositoryError(
        'REPO_INVALID_REQUEST',
        `block of ${data.length} bytes exceeds the block size ${this.blockCapacityBytes}`,
      );
    }
    const dataRef = sharedRef(data);
    if (dataRef !== undefined) {
      // Shared object memory too, unless many objects are out (then BlockBuffers hands out
      // ordinary memory, and the slots do the work).
      const whole = this.#objects.take(BLOCK_HEADER_BYTES + this.blockCapacityBytes);
      const wholeRef = sharedRef(whole);
      if (wholeRef !== undefined) return this.#encodeInPlace(data, dataRef, whole, wholeRef);
      this.#objects.give(whole);
    }
    return this.#withSlot(async (slot) => {
      data.copy(slot.input);
      const result = await this.#run({ op: 'encode', slot: slot.index, lengthBytes: data.length });
      if (result.error !== undefined || result.hash === undefined) {
        throw new RepositoryError('REPO_INVALID_REQUEST', `block encoding failed: ${result.error}`);
      }
      const { codec, payloadBytes } = result;
      if (codec === undefined || payloadBytes === undefined) {
        throw new RepositoryError(
          'REPO_INVALID_REQUEST',
          'block encoding: malformed worker answer',
        );
      }
      const hash = toBuffer(result.hash);
      const object = this.#objects.take(BLOCK_HEADER_BYTES + payloadBytes);
      if (codec === CODEC_ZSTD) {
        slot.output.copy(object, BLOCK_HEADER_BYTES, BLOCK_HEADER_BYTES, object.length);
      } else {
        data.copy(object, BLOCK_HEADER_BYTES);
      }
      writeBlockHeader(object, codec, data.length, payloadBytes, hash);
      return { hash, object };
    });
  }

  /**
   * `data` in shared memory (BlockBuffers): the worker hashes it and writes the object's payload
   * (compressed, or the block as is) straight into the object's memory; nothing is copied here.
   */
  async #encodeInPlace(
    data: Buffer,
    dataRef: SharedRef,
    whole: Buffer,
    wholeRef: SharedRef,
  ): Promise<{ hash: Buffer; object: Buffer }> {
    let result: KernelResult;
    try {
      result = await this.#run({ op: 'encodeInPlace', data: dataRef, object: wholeRef });
    } catch (error) {
      this.#objects.give(whole);
      throw error;
    }
    const { hash, codec, payloadBytes } = result;
    if (result.error !== undefined || hash === undefined || codec === undefined) {
      this.#objects.give(whole);
      throw new RepositoryError('REPO_INVALID_REQUEST', `block encoding failed: ${result.error}`);
    }
    const payloadLengthBytes = payloadBytes ?? data.length;
    const object = whole.subarray(0, BLOCK_HEADER_BYTES + payloadLengthBytes);
    const hashBuffer = toBuffer(hash);
    writeBlockHeader(object, codec, data.length, payloadLengthBytes, hashBuffer);
    return { hash: hashBuffer, object };
  }

  /**
   * Gives back an object from `encode` once nothing uses it any more (its put succeeded: a store
   * keeps no reference to a body after put). Other buffers are ignored.
   */
  recycleObject(object: Buffer): void {
    this.#objects.give(object);
  }

  /** Memory for reading a block object of `lengthBytes` (give it back with `recycleObject`). */
  objectBuffer(lengthBytes: number): Buffer {
    return this.#objects.take(lengthBytes);
  }

  /**
   * Decodes and checks a block object like decodeBlockObject (the object is left untouched); the
   * plaintext goes into `into` when given (of `lengthBytes`), else into a new buffer.
   */
  async decode(
    key: string,
    object: Buffer,
    hash: Buffer,
    lengthBytes: number,
    into?: Buffer,
  ): Promise<Buffer> {
    const { codec, payload } = openBlockObject(key, object, hash, lengthBytes);
    if (payload.length > this.blockCapacityBytes || lengthBytes > this.blockCapacityBytes) {
      return decodeBlockObject(key, object, hash, lengthBytes, this.#hashName); // unusual: inline
    }
    const payloadRef = sharedRef(payload);
    const intoRef = into?.length === lengthBytes ? sharedRef(into) : undefined;
    if (into !== undefined && payloadRef !== undefined && intoRef !== undefined) {
      const result = await this.#run({
        op: 'decodeInPlace',
        codec,
        payload: payloadRef,
        into: intoRef,
      });
      checkDecoded(key, hash, result);
      return into;
    }
    return this.#withSlot(async (slot) => {
      payload.copy(slot.input);
      const result = await this.#run(
        codec === CODEC_NONE
          ? { op: 'hash', slot: slot.index, lengthBytes: payload.length }
          : { op: 'decode', slot: slot.index, payloadBytes: payload.length, lengthBytes },
      );
      checkDecoded(key, hash, result);
      // Into the caller's buffer when given, so the object's memory can be reused at once.
      if (codec === CODEC_NONE && into?.length !== lengthBytes) return payload;
      const plain = into?.length === lengthBytes ? into : Buffer.allocUnsafe(lengthBytes);
      if (codec === CODEC_NONE) payload.copy(plain);
      else slot.output.copy(plain, 0, 0, lengthBytes);
      return plain;
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#broken(new Error('block pool closed'));
    await Promise.all(this.#workers.map((worker) => worker.terminate()));
  }
}

/** A decode answer whose plaintext hashes to `hash`, else REPO_BLOCK_CORRUPT naming the object. */
function checkDecoded(key: string, hash: Buffer, result: KernelResult): void {
  if (result.error !== undefined || result.hash === undefined) {
    throw new RepositoryError('REPO_BLOCK_CORRUPT', `${key}: ${result.error ?? 'no answer'}`, {
      details: { key },
    });
  }
  if (!toBuffer(result.hash).equals(hash)) {
    throw new RepositoryError('REPO_BLOCK_CORRUPT', `${key}: content does not match its hash`, {
      details: { key },
    });
  }
}
