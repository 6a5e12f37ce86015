/**
 * Assembles replies into the requests in flight on one connection (the NbdReplySink of its
 * decoder): READ data lands at its place in the result buffer (or is read there directly), holes
 * are zeroed without copying, coverage is checked (no overlap, exact cover at the end), block
 * status and errors are collected, and each request settles when its last chunk arrives.
 */
import { NBD_CMD_READ } from './constants.ts';
import { NbdError, errnoError, protocolError } from './errors.ts';
import type { PendingRequest } from './pending-request.ts';
import type { NbdExtent, NbdReplySink } from './reply-decoder.ts';
import { nbdCommandName } from './request-checks.ts';

export class ReplyAssembler implements NbdReplySink {
  /** Requests on the wire, by cookie. */
  readonly inFlight = new Map<number, PendingRequest>();
  readonly #onSettled: (request: PendingRequest) => void;

  constructor(onSettled: (request: PendingRequest) => void) {
    this.#onSettled = onSettled;
  }

  dataSpace(cookie: number, offsetBytes: number, maxBytes: number): Buffer | undefined {
    const request = this.inFlight.get(cookie);
    if (request?.target === undefined) return undefined;
    const at = request.targetOffsetBytes + offsetBytes - request.offsetBytes;
    return request.target.subarray(at, at + maxBytes);
  }

  onSimpleReply(cookie: number, errno: number): void {
    const request = this.inFlight.get(cookie);
    if (request === undefined) return;
    if (errno !== 0) {
      request.error ??= errnoError(errno, nbdCommandName(request.command));
    } else if (request.command === NBD_CMD_READ) {
      request.target ??= Buffer.allocUnsafe(request.lengthBytes);
      request.coveredBytes = request.lengthBytes;
    }
  }

  onDataChunk(cookie: number, offsetBytes: number, lengthBytes: number): void {
    const request = this.inFlight.get(cookie);
    if (request === undefined) return;
    if (!request.cover(offsetBytes, lengthBytes))
      throw protocolError('overlapping data chunks', 'OFFSET_DATA');
    if (request.target === undefined) {
      // Every byte ends up covered by data or a hole (checked at DONE); holes already seen
      // need a zeroed buffer, otherwise holes are zeroed as they come.
      const holesSeen = request.coveredBytes > lengthBytes;
      request.target = holesSeen
        ? Buffer.alloc(request.lengthBytes)
        : Buffer.allocUnsafe(request.lengthBytes);
      request.targetZeroed = holesSeen;
    }
  }

  onData(cookie: number, offsetBytes: number, data: Buffer): void {
    const request = this.inFlight.get(cookie);
    if (request?.target === undefined) return;
    data.copy(request.target, request.targetOffsetBytes + offsetBytes - request.offsetBytes);
  }

  onHole(cookie: number, offsetBytes: number, lengthBytes: number): void {
    const request = this.inFlight.get(cookie);
    if (request === undefined) return;
    if (!request.cover(offsetBytes, lengthBytes))
      throw protocolError('overlapping hole chunks', 'OFFSET_HOLE');
    if (request.target !== undefined && !request.targetZeroed) {
      const at = request.targetOffsetBytes + offsetBytes - request.offsetBytes;
      request.target.fill(0, at, at + lengthBytes);
    }
  }

  onBlockStatus(cookie: number, contextId: number, extents: readonly NbdExtent[]): void {
    const request = this.inFlight.get(cookie);
    if (request === undefined) return;
    request.extents ??= new Map();
    if (!request.extents.has(contextId)) request.extents.set(contextId, extents);
  }

  onError(cookie: number, errno: number, message: string, offsetBytes: number | undefined): void {
    const request = this.inFlight.get(cookie);
    if (request === undefined) return;
    request.error ??= errnoError(errno, nbdCommandName(request.command), message, offsetBytes);
  }

  onDone(cookie: number): void {
    const request = this.inFlight.get(cookie);
    if (request === undefined) return;
    this.inFlight.delete(cookie);
    if (request.error === undefined && request.command === NBD_CMD_READ) {
      if (request.coveredBytes !== request.lengthBytes) {
        request.error = new NbdError(
          'NBD_EIO',
          `READ reply covered ${request.coveredBytes} of ${request.lengthBytes} bytes`,
          { retryable: true },
        );
      } else if (request.target === undefined) {
        // Holes only: a zero-filled buffer (the allocator hands out zero pages, no copy).
        request.target = Buffer.alloc(request.lengthBytes);
      }
    }
    if (request.error === undefined) request.resolve(request);
    else request.reject(request.error);
    this.#onSettled(request);
  }
}
