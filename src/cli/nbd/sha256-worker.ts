/**
 * sha256 on a worker thread, so the socket thread keeps reading while the previous blocks are
 * hashed (performance reference §A6: hashing on the reading thread halves a Node reader). Buffers
 * are transferred, not copied; at most `maxQueued` of them wait in the worker.
 */
import { Worker } from 'node:worker_threads';

// Plain CommonJS so the worker needs no TypeScript loader.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const hash = createHash('sha256');
parentPort.on('message', (message) => {
  if (message === null) parentPort.postMessage({ digest: hash.digest('hex') });
  else { hash.update(new Uint8Array(message.buffer, message.byteOffset, message.byteLength)); parentPort.postMessage({ ack: true }); }
});
`;

export class Sha256Worker {
  readonly #worker = new Worker(WORKER_SOURCE, { eval: true });
  readonly #maxQueued: number;
  #queued = 0;
  #wake: (() => void) | undefined;
  #digest: ((hex: string) => void) | undefined;
  #failure: Error | undefined;

  constructor(maxQueued = 8) {
    this.#maxQueued = maxQueued;
    this.#worker.on('message', (message: { ack?: boolean; digest?: string }) => {
      if (message.ack === true) {
        this.#queued -= 1;
        this.#wake?.();
      } else if (message.digest !== undefined) this.#digest?.(message.digest);
    });
    this.#worker.on('error', (error) => {
      this.#failure = error;
      this.#wake?.();
    });
  }

  /** Queues `data` for hashing; the buffer is transferred (unusable afterwards) when possible. */
  async update(data: Buffer): Promise<void> {
    while (this.#queued >= this.#maxQueued && this.#failure === undefined)
      await new Promise<void>((resolve) => (this.#wake = resolve));
    if (this.#failure !== undefined) throw this.#failure;
    this.#queued += 1;
    const whole = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength;
    const view = { buffer: data.buffer, byteOffset: data.byteOffset, byteLength: data.byteLength };
    if (whole && data.buffer instanceof ArrayBuffer) this.#worker.postMessage(view, [data.buffer]);
    else this.#worker.postMessage(view);
  }

  async digest(): Promise<string> {
    const hex = new Promise<string>((resolve) => (this.#digest = resolve));
    this.#worker.postMessage(null);
    const result = await hex;
    await this.#worker.terminate();
    return result;
  }

  async destroy(): Promise<void> {
    await this.#worker.terminate();
  }
}
