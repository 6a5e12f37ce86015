/**
 * Server-sent events: clients subscribe to a stream (optionally filtered, e.g. one run), every
 * published event is written as `event:`/`data:` lines, a comment heartbeat keeps proxies from
 * closing idle streams, and closed connections are dropped.
 */
import type { ServerResponse } from 'node:http';

export interface HubEvent {
  readonly type: string;
  readonly data: unknown;
}

interface Subscriber {
  readonly res: ServerResponse;
  readonly accepts: (event: HubEvent) => boolean;
}

export class EventHub {
  readonly #subscribers = new Set<Subscriber>();
  readonly #heartbeat: NodeJS.Timeout;

  constructor(heartbeatMs = 15_000) {
    this.#heartbeat = setInterval(() => {
      for (const s of this.#subscribers) s.res.write(': heartbeat\n\n');
    }, heartbeatMs);
    this.#heartbeat.unref();
  }

  get subscriberCount(): number {
    return this.#subscribers.size;
  }

  subscribe(res: ServerResponse, accepts: (event: HubEvent) => boolean = () => true): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write(': connected\n\n');
    const subscriber = { res, accepts };
    this.#subscribers.add(subscriber);
    res.on('close', () => this.#subscribers.delete(subscriber));
  }

  publish(event: HubEvent): void {
    const frame = `event: ${event.type}\ndata: ${JSON.stringify(event.data)}\n\n`;
    for (const s of this.#subscribers) if (s.accepts(event)) s.res.write(frame);
  }

  close(): void {
    clearInterval(this.#heartbeat);
    for (const s of this.#subscribers) s.res.end();
    this.#subscribers.clear();
  }
}
