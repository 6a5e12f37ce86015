/** Typed events flow from the core to renderers (CLI progress, server-sent events, run logs). */

export interface EventSink<TEvent> {
  emit(event: TEvent): void;
}

export function nullSink<TEvent>(): EventSink<TEvent> {
  return { emit: () => undefined };
}

/** Collects events in memory; useful for tests and for building run logs. */
export class CollectingSink<TEvent> implements EventSink<TEvent> {
  readonly events: TEvent[] = [];
  emit(event: TEvent): void {
    this.events.push(event);
  }
}
