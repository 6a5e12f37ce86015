/**
 * A list of received chunks read as one byte stream, without concatenating them: headers are
 * parsed straight from the list (copied only when one straddles two chunks) and payloads are
 * handed out as slices of the chunks the socket delivered.
 */
export class ByteQueue {
  readonly #chunks: Buffer[] = [];
  #head = 0; // index of the first live chunk
  #offsetInHead = 0;
  #lengthBytes = 0;

  get lengthBytes(): number {
    return this.#lengthBytes;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#lengthBytes += chunk.length;
  }

  /** The big-endian u32 at the front (caller checked 4 bytes are queued); consumes nothing. */
  peekUInt32BE(): number {
    const first = this.#chunks[this.#head];
    if (first !== undefined && first.length - this.#offsetInHead >= 4)
      return first.readUInt32BE(this.#offsetInHead);
    let value = 0;
    let index = this.#head;
    let at = this.#offsetInHead;
    for (let n = 0; n < 4; n += 1) {
      let chunk = this.#chunks[index];
      while (chunk !== undefined && at >= chunk.length) {
        index += 1;
        at = 0;
        chunk = this.#chunks[index];
      }
      value = value * 256 + (chunk?.[at] ?? 0);
      at += 1;
    }
    return value;
  }

  /** The next `lengthBytes` bytes (caller checked they are there): a view when contiguous. */
  take(lengthBytes: number): Buffer {
    const first = this.#chunks[this.#head];
    if (first !== undefined && first.length - this.#offsetInHead >= lengthBytes) {
      const view = first.subarray(this.#offsetInHead, this.#offsetInHead + lengthBytes);
      this.#advance(lengthBytes);
      return view;
    }
    const out = Buffer.allocUnsafe(lengthBytes);
    let written = 0;
    while (written < lengthBytes) {
      const slice = this.takeUpTo(lengthBytes - written);
      slice.copy(out, written);
      written += slice.length;
    }
    return out;
  }

  /** Up to `maxBytes` of the next bytes as a view of one chunk (never copies). */
  takeUpTo(maxBytes: number): Buffer {
    const first = this.#chunks[this.#head];
    if (first === undefined || maxBytes <= 0) return Buffer.alloc(0);
    const available = first.length - this.#offsetInHead;
    const count = Math.min(available, maxBytes);
    const view = first.subarray(this.#offsetInHead, this.#offsetInHead + count);
    this.#advance(count);
    return view;
  }

  /** Drops the next `lengthBytes` bytes (at most what is queued). */
  skip(lengthBytes: number): number {
    let left = Math.min(lengthBytes, this.#lengthBytes);
    const skipped = left;
    while (left > 0) left -= this.takeUpTo(left).length;
    return skipped;
  }

  /** Copies what is queued into memory the queue owns (before the source buffers are reused). */
  retain(): void {
    if (this.#lengthBytes === 0) return;
    const owned = Buffer.from(this.drain());
    this.push(owned);
  }

  /** Everything queued, as one buffer (used when handing a socket over to another reader). */
  drain(): Buffer {
    return this.take(this.#lengthBytes);
  }

  #advance(count: number): void {
    this.#offsetInHead += count;
    this.#lengthBytes -= count;
    const first = this.#chunks[this.#head];
    if (first !== undefined && this.#offsetInHead === first.length) {
      this.#chunks[this.#head] = EMPTY;
      this.#head += 1;
      this.#offsetInHead = 0;
      if (this.#head === this.#chunks.length) {
        this.#chunks.length = 0;
        this.#head = 0;
      } else if (this.#head > 64 && this.#head * 2 > this.#chunks.length) {
        this.#chunks.splice(0, this.#head);
        this.#head = 0;
      }
    }
  }
}

const EMPTY = Buffer.alloc(0);
