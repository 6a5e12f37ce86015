/**
 * A pool of worker threads for the CPU-bound block work (sha256, zstd): on a 2-core machine the
 * main thread keeps reading, writing and coordinating while workers hash and (de)compress
 * (docs/design.md §4.10 has the figures). The workers run a small JavaScript kernel (sha256 and
 * zstd only: no format logic, and no TypeScript loader needed in the worker); framing and checks
 * stay in block-codec.ts on the calling thread. Buffers are transferred, not copied: a block handed
 * to `encode` must not be used afterwards by the caller.
 */
import { Worker } from 'node:worker_threads';
import {
  checkBlockHash,
  openBlockObject,
  writeBlockHeader,
  zstdBindingPath,
} from './block-codec.ts';
import type { CompressionConfig } from './config.ts';
import { BLOCK_HEADER_BYTES, CODEC_NONE, MIN_COMPRESSION_SAVING } from './constants.ts';
import { RepositoryError } from './errors.ts';

/** The worker kernel (CommonJS, evaluated by the Worker). */
const kernelSource = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const zstd = require(workerData.bindingPath);
const headroom = workerData.headroomBytes;
const level = workerData.level;
const cctx = level === null ? null : new zstd.CCtx();
const dctx = new zstd.DCtx();
let scratch = Buffer.alloc(0);
const owns = (b) => b.byteOffset === 0 && b.byteLength === b.buffer.byteLength;
parentPort.on('message', (task) => {
  try {
    if (task.op === 'encode') {
      const data = Buffer.from(task.data.buffer, task.data.byteOffset, task.data.byteLength);
      const hash = createHash('sha256').update(data).digest();
      let out = null;
      let codec = 0;
      let payloadBytes = data.length;
      if (cctx !== null) {
        const bound = zstd.compressBound(data.length);
        if (scratch.length < bound) scratch = Buffer.allocUnsafe(bound);
        const compressedBytes = cctx.compress(scratch.subarray(0, bound), data, level);
        if (compressedBytes <= data.length * (1 - workerData.minSaving)) {
          codec = 1;
          payloadBytes = compressedBytes;
          out = Buffer.allocUnsafeSlow(headroom + compressedBytes);
          scratch.copy(out, headroom, 0, compressedBytes);
        }
      }
      if (codec === 0) {
        out = Buffer.allocUnsafeSlow(headroom + data.length);
        data.copy(out, headroom);
      }
      parentPort.postMessage(
        { id: task.id, hash, out, codec, payloadBytes },
        // The input goes back too: dead buffers are then collected by the main thread, which
        // collects often, instead of piling up in this isolate until its next GC.
        [out.buffer, data.buffer].filter((b, i, all) => all.indexOf(b) === i && b.byteLength > 0 && (b === out.buffer ? owns(out) : owns(data))),
      );
    } else {
      const payload = Buffer.from(task.payload.buffer, task.payload.byteOffset, task.payload.byteLength);
      const plain = Buffer.allocUnsafe(task.lengthBytes);
      const written = dctx.decompress(plain, payload);
      if (written !== task.lengthBytes) throw new Error('decompressed length mismatch');
      const hash = createHash('sha256').update(plain).digest();
      parentPort.postMessage(
        { id: task.id, plain, hash, input: payload },
        [plain.buffer, payload.buffer].filter((b, i, all) => all.indexOf(b) === i && b.byteLength > 0 && (b === plain.buffer ? owns(plain) : owns(payload) || task.wholeBuffer)),
      );
    }
  } catch (error) {
    parentPort.postMessage({ id: task.id, error: String(error && error.message || error) });
  }
});
`;

interface KernelResult {
  readonly id: number;
  readonly error?: string;
  readonly hash?: Uint8Array;
  readonly out?: Uint8Array;
  readonly codec?: number;
  readonly payloadBytes?: number;
  readonly plain?: Uint8Array;
}

interface Pending {
  readonly resolve: (result: KernelResult) => void;
  readonly reject: (error: Error) => void;
  readonly worker: number;
}

function owns(data: Uint8Array): boolean {
  return data.byteOffset === 0 && data.byteLength === data.buffer.byteLength;
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function transferList(data: Uint8Array): ArrayBuffer[] {
  return owns(data) && data.buffer instanceof ArrayBuffer ? [data.buffer] : [];
}

export class BlockWorkerPool {
  readonly size: number;
  readonly #workers: Worker[] = [];
  readonly #busy: number[] = [];
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #closed = false;

  constructor(size: number, compression: CompressionConfig) {
    this.size = Math.max(1, Math.floor(size));
    for (let i = 0; i < this.size; i += 1) {
      const worker = new Worker(kernelSource, {
        eval: true,
        workerData: {
          bindingPath: zstdBindingPath,
          headroomBytes: BLOCK_HEADER_BYTES,
          level: compression.codec === 'zstd' ? compression.level : null,
          minSaving: MIN_COMPRESSION_SAVING,
        },
      });
      worker.unref();
      worker.on('message', (result: KernelResult) => {
        const pending = this.#pending.get(result.id);
        if (pending === undefined) return;
        this.#pending.delete(result.id);
        this.#busy[pending.worker] = (this.#busy[pending.worker] ?? 1) - 1;
        pending.resolve(result);
      });
      worker.on('error', (error) => {
        for (const [id, pending] of this.#pending) {
          if (pending.worker !== i) continue;
          this.#pending.delete(id);
          pending.reject(error);
        }
      });
      this.#workers.push(worker);
      this.#busy.push(0);
    }
  }

  #run(task: Record<string, unknown>, transfer: ArrayBuffer[]): Promise<KernelResult> {
    if (this.#closed) {
      return Promise.reject(new RepositoryError('REPO_INVALID_REQUEST', 'block pool closed'));
    }
    let worker = 0;
    for (let i = 1; i < this.size; i += 1) {
      if ((this.#busy[i] ?? 0) < (this.#busy[worker] ?? 0)) worker = i;
    }
    this.#busy[worker] = (this.#busy[worker] ?? 0) + 1;
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, worker });
      this.#workers[worker]?.postMessage({ ...task, id }, transfer);
    });
  }

  /** sha256 and block object of `data` (transferred: do not use `data` afterwards). */
  async encode(data: Buffer): Promise<{ hash: Buffer; object: Buffer }> {
    const plainLengthBytes = data.length;
    const result = await this.#run({ op: 'encode', data }, transferList(data));
    if (result.error !== undefined || result.hash === undefined) {
      throw new RepositoryError('REPO_INVALID_REQUEST', `block encoding failed: ${result.error}`);
    }
    if (
      result.out === undefined ||
      result.codec === undefined ||
      result.payloadBytes === undefined
    ) {
      throw new RepositoryError('REPO_INVALID_REQUEST', 'block encoding: malformed worker answer');
    }
    const hash = toBuffer(result.hash);
    const object = toBuffer(result.out).subarray(0, BLOCK_HEADER_BYTES + result.payloadBytes);
    writeBlockHeader(object, result.codec, plainLengthBytes, result.payloadBytes, hash);
    return { hash, object };
  }

  /** Decodes and checks a block object like decodeBlockObject (the object is transferred). */
  async decode(key: string, object: Buffer, hash: Buffer, lengthBytes: number): Promise<Buffer> {
    const { codec, payload } = openBlockObject(key, object, hash, lengthBytes);
    if (codec === CODEC_NONE) {
      checkBlockHash(key, payload, hash);
      return payload;
    }
    const result = await this.#run({ op: 'decode', payload, lengthBytes }, transferList(object));
    if (result.error !== undefined || result.plain === undefined || result.hash === undefined) {
      throw new RepositoryError('REPO_BLOCK_CORRUPT', `${key}: ${result.error ?? 'no answer'}`, {
        details: { key },
      });
    }
    if (!toBuffer(result.hash).equals(hash)) {
      throw new RepositoryError('REPO_BLOCK_CORRUPT', `${key}: content does not match its hash`, {
        details: { key },
      });
    }
    return toBuffer(result.plain);
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(this.#workers.map((worker) => worker.terminate()));
  }
}
