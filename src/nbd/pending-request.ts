/**
 * One request in flight on a connection: what was asked (for the reply decoder), where read data
 * lands, which byte ranges the reply covered so far (no overlap, exact cover at the end), the
 * block-status extents received, and the first error. A class, not closures, to keep the per-
 * request cost low on the read path.
 */
import type { NbdExtent, NbdRequestShape } from './reply-decoder.ts';
import type { NbdError } from './errors.ts';

export class PendingRequest implements NbdRequestShape {
  readonly command: number;
  readonly offsetBytes: number;
  readonly lengthBytes: number;
  readonly startedMs: number;
  /** Bytes counted against the connection's in-flight total (READ and WRITE payloads). */
  readonly payloadBytes: number;
  target: Buffer | undefined;
  targetOffsetBytes = 0;
  /** True when `target` is known to be zero-filled (holes then need no work). */
  targetZeroed = false;
  coveredBytes = 0;
  /** Covered ranges as flat [start, end) pairs, only once there is more than one chunk. */
  ranges: number[] | undefined;
  extents: Map<number, readonly NbdExtent[]> | undefined;
  error: NbdError | undefined;
  resolve!: (request: PendingRequest) => void;
  reject!: (error: unknown) => void;
  readonly promise: Promise<PendingRequest>;

  constructor(command: number, offsetBytes: number, lengthBytes: number, payloadBytes: number) {
    this.command = command;
    this.offsetBytes = offsetBytes;
    this.lengthBytes = lengthBytes;
    this.payloadBytes = payloadBytes;
    this.startedMs = Date.now();
    this.promise = new Promise<PendingRequest>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  /** Records a content chunk; returns false if it overlaps one already received. */
  cover(offsetBytes: number, lengthBytes: number): boolean {
    const end = offsetBytes + lengthBytes;
    if (this.coveredBytes === 0) {
      this.ranges = [offsetBytes, end];
    } else {
      const ranges = this.ranges ?? [];
      for (let index = 0; index < ranges.length; index += 2) {
        if (offsetBytes < (ranges[index + 1] ?? 0) && (ranges[index] ?? 0) < end) return false;
      }
      ranges.push(offsetBytes, end);
      this.ranges = ranges;
    }
    this.coveredBytes += lengthBytes;
    return true;
  }
}
