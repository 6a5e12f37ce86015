/**
 * A forward-only cursor over an async iterable of byte chunks (a Node Readable, an HTTP body):
 * exact reads into caller buffers, skips, and a tail read that keeps only the last bytes. Reading
 * past the end throws VHD_TRUNCATED naming the field being read. Memory: one input chunk.
 */
import { VhdError } from './errors.ts';

export class StreamCursor {
  readonly #iterator: AsyncIterator<Uint8Array>;
  #chunk: Buffer = Buffer.alloc(0);
  #chunkOffset = 0;
  #positionBytes = 0;
  #done = false;

  constructor(input: AsyncIterable<Uint8Array>) {
    this.#iterator = input[Symbol.asyncIterator]();
  }

  /** Bytes consumed so far (the file offset of the next byte). */
  get positionBytes(): number {
    return this.#positionBytes;
  }

  async #fill(): Promise<boolean> {
    while (this.#chunkOffset >= this.#chunk.length) {
      if (this.#done) return false;
      const next = await this.#iterator.next();
      if (next.done === true) {
        this.#done = true;
        return false;
      }
      const value = next.value;
      this.#chunk = Buffer.isBuffer(value)
        ? value
        : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      this.#chunkOffset = 0;
    }
    return true;
  }

  #truncated(field: string, missingBytes: number): VhdError {
    return new VhdError(
      'VHD_TRUNCATED',
      `${field}: stream ended at offset ${this.#positionBytes}, ${missingBytes} more bytes expected`,
      { details: { field, offsetBytes: this.#positionBytes, missingBytes } },
    );
  }

  /** Fills `target` completely from the stream. */
  async readInto(target: Buffer, field: string): Promise<Buffer> {
    let filled = 0;
    while (filled < target.length) {
      if (!(await this.#fill())) throw this.#truncated(field, target.length - filled);
      const count = Math.min(target.length - filled, this.#chunk.length - this.#chunkOffset);
      this.#chunk.copy(target, filled, this.#chunkOffset, this.#chunkOffset + count);
      this.#chunkOffset += count;
      this.#positionBytes += count;
      filled += count;
    }
    return target;
  }

  async read(lengthBytes: number, field: string): Promise<Buffer> {
    return this.readInto(Buffer.allocUnsafe(lengthBytes), field);
  }

  async skip(lengthBytes: number, field: string): Promise<void> {
    let left = lengthBytes;
    while (left > 0) {
      if (!(await this.#fill())) throw this.#truncated(field, left);
      const count = Math.min(left, this.#chunk.length - this.#chunkOffset);
      this.#chunkOffset += count;
      this.#positionBytes += count;
      left -= count;
    }
  }

  /** Skips forward to an absolute offset (which must not be behind the cursor). */
  async skipTo(offsetBytes: number, field: string): Promise<void> {
    if (offsetBytes < this.#positionBytes)
      throw new VhdError(
        'VHD_STREAM_ORDER',
        `${field}: at offset ${offsetBytes}, behind the stream position ${this.#positionBytes}`,
        { details: { field, offsetBytes, positionBytes: this.#positionBytes } },
      );
    await this.skip(offsetBytes - this.#positionBytes, field);
  }

  /** Reads to the end of the stream and returns its last `keepBytes` bytes (fewer if shorter). */
  async readTail(keepBytes: number): Promise<Buffer> {
    const tail = Buffer.alloc(keepBytes);
    let kept = 0;
    while (await this.#fill()) {
      const piece = this.#chunk.subarray(this.#chunkOffset);
      this.#positionBytes += piece.length;
      this.#chunkOffset = this.#chunk.length;
      if (piece.length >= keepBytes) {
        piece.copy(tail, 0, piece.length - keepBytes);
        kept = keepBytes;
      } else {
        const keepOld = Math.min(kept, keepBytes - piece.length);
        tail.copy(tail, 0, kept - keepOld, kept);
        piece.copy(tail, keepOld);
        kept = keepOld + piece.length;
      }
    }
    return tail.subarray(0, kept);
  }

  /** Stops reading: lets the input release its resources. */
  async close(): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    await this.#iterator.return?.();
  }
}
