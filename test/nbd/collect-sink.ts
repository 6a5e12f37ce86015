/** A reply sink for tests: records decoder events, merging contiguous data slices. */
import type { NbdExtent, NbdReplySink } from '../../src/nbd/index.ts';

export type Event =
  | ['simple', number, number]
  | ['data-chunk', number, number, number]
  | ['data', number, number, string]
  | ['hole', number, number, number]
  | ['status', number, number, NbdExtent[]]
  | ['error', number, number, string, number | undefined]
  | ['done', number];

export class CollectSink implements NbdReplySink {
  readonly events: Event[] = [];
  onSimpleReply(cookie: number, errno: number): void {
    this.events.push(['simple', cookie, errno]);
  }
  onDataChunk(cookie: number, offsetBytes: number, lengthBytes: number): void {
    this.events.push(['data-chunk', cookie, offsetBytes, lengthBytes]);
  }
  onData(cookie: number, offsetBytes: number, data: Buffer): void {
    const last = this.events.at(-1);
    if (
      last?.[0] === 'data' &&
      last[1] === cookie &&
      last[2] + last[3].length / 2 === offsetBytes
    ) {
      last[3] += data.toString('hex');
    } else this.events.push(['data', cookie, offsetBytes, data.toString('hex')]);
  }
  onHole(cookie: number, offsetBytes: number, lengthBytes: number): void {
    this.events.push(['hole', cookie, offsetBytes, lengthBytes]);
  }
  onBlockStatus(cookie: number, contextId: number, extents: readonly NbdExtent[]): void {
    this.events.push(['status', cookie, contextId, [...extents]]);
  }
  onError(cookie: number, errno: number, message: string, offsetBytes: number | undefined): void {
    this.events.push(['error', cookie, errno, message, offsetBytes]);
  }
  onDone(cookie: number): void {
    this.events.push(['done', cookie]);
  }
}
