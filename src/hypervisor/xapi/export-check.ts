/**
 * A pass-through check on an export body (xapi.md §5): fails with XAPI_EMBEDDED_ERROR when the
 * body of a 200 answer itself starts with "HTTP/" (xen-api issue #4603), and with
 * XAPI_STREAM_TRUNCATED when it ends before the announced Content-Length. No copy of the data.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { EMBEDDED_ERROR_PREFIX } from './constants.ts';
import { XapiError } from './errors.ts';

const PREFIX = Buffer.from(EMBEDDED_ERROR_PREFIX, 'latin1');

export class ExportBodyCheck extends Transform {
  readonly #expectedBytes: number | undefined;
  #seenBytes = 0;
  /** Bytes held back until the prefix can be judged (at most PREFIX.length - 1). */
  #head: Buffer | undefined = Buffer.alloc(0);

  constructor(expectedBytes: number | undefined) {
    super({ highWaterMark: 4 * 1024 * 1024 });
    this.#expectedBytes = expectedBytes;
  }

  get seenBytes(): number {
    return this.#seenBytes;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#seenBytes += chunk.length;
    if (this.#expectedBytes !== undefined && this.#seenBytes > this.#expectedBytes) {
      callback(
        new XapiError(
          'XAPI_PROTOCOL',
          `export body longer than its Content-Length ${this.#expectedBytes}`,
        ),
      );
      return;
    }
    if (this.#head === undefined) {
      callback(null, chunk);
      return;
    }
    const head = this.#head.length === 0 ? chunk : Buffer.concat([this.#head, chunk]);
    if (head.length < PREFIX.length) {
      this.#head = head;
      callback();
      return;
    }
    this.#head = undefined;
    const error = embeddedError(head);
    if (error !== undefined) callback(error);
    else callback(null, head);
  }

  override _flush(callback: TransformCallback): void {
    if (this.#head !== undefined && this.#head.length > 0) this.push(this.#head);
    this.#head = undefined;
    if (this.#expectedBytes !== undefined && this.#seenBytes < this.#expectedBytes) {
      callback(
        new XapiError(
          'XAPI_STREAM_TRUNCATED',
          `export ended after ${this.#seenBytes} of ${this.#expectedBytes} bytes`,
          {
            retryable: true,
            details: { seenBytes: this.#seenBytes, expectedBytes: this.#expectedBytes },
          },
        ),
      );
      return;
    }
    callback();
  }
}

function embeddedError(head: Buffer): XapiError | undefined {
  if (!head.subarray(0, PREFIX.length).equals(PREFIX)) return undefined;
  const firstLine = head
    .subarray(0, Math.min(head.length, 200))
    .toString('latin1')
    .split(/\r?\n/)[0]
    ?.replace(/[^\x20-\x7e]/g, '?');
  return new XapiError(
    'XAPI_EMBEDDED_ERROR',
    `XAPI answered 200 but the body is an HTTP error: ${firstLine ?? ''}`,
    { details: { statusLine: firstLine } },
  );
}
