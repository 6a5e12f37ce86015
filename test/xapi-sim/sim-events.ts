/**
 * XAPI-simulator side: event.from for tasks (xapi.md §4). Every task creation, change and
 * destruction gets the next event id; event.from(classes, token, timeout) answers the events
 * after `token` for matching classes ("task", "task/<ref>", "*"), waiting up to `timeout`
 * seconds when there are none; token "" gives the current state as "add" events.
 */
import type { SimRecord } from './pool-db.ts';

export interface SimEvent {
  readonly id: number;
  readonly timestamp: string;
  readonly class: string;
  readonly operation: 'add' | 'mod' | 'del';
  readonly ref: string;
  readonly snapshot: SimRecord | undefined;
}

export class SimEventLog {
  readonly #events: SimEvent[] = [];
  readonly #waiters = new Set<() => void>();
  #lastId = 0;

  add(
    cls: string,
    operation: SimEvent['operation'],
    ref: string,
    snapshot: SimRecord | undefined,
  ): void {
    this.#lastId += 1;
    this.#events.push({
      id: this.#lastId,
      timestamp: String(Date.now() / 1000),
      class: cls,
      operation,
      ref,
      snapshot: snapshot === undefined ? undefined : { ...snapshot },
    });
    if (this.#events.length > 10_000) this.#events.splice(0, 5_000);
    for (const wake of this.#waiters) wake();
  }

  get lastId(): number {
    return this.#lastId;
  }

  /** Oldest id still kept (older tokens get EVENTS_LOST). */
  get firstId(): number {
    return this.#events[0]?.id ?? this.#lastId + 1;
  }

  matching(classes: readonly string[], afterId: number): SimEvent[] {
    return this.#events.filter(
      (event) =>
        event.id > afterId &&
        classes.some(
          (c) =>
            c === '*' || c.toLowerCase() === event.class || c === `${event.class}/${event.ref}`,
        ),
    );
  }

  /** Resolves when a new event arrives or after `timeoutMs`. */
  waitForNext(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.#waiters.add(done);
    });
  }
}
