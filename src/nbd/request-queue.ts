/**
 * Requests waiting for room on the wire (a connection sends at most `maxRequestsInFlight`), FIFO.
 * A slot is cleared as soon as its request is taken, so nothing sent stays referenced here (the
 * result buffers of answered requests must be collectable while the queue is still busy).
 */
import type { PendingRequest } from './pending-request.ts';

export class RequestQueue {
  #items: (PendingRequest | undefined)[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(request: PendingRequest): void {
    this.#items.push(request);
  }

  shift(): PendingRequest | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const request = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head += 1;
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head > 1024) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return request;
  }

  /** Removes and returns everything waiting. */
  takeAll(): PendingRequest[] {
    const all: PendingRequest[] = [];
    for (let request = this.shift(); request !== undefined; request = this.shift())
      all.push(request);
    return all;
  }
}
