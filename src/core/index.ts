/**
 * src/core — the bottom layer: errors with stable codes, units, the Clock, Logger and EventSink
 * seams, a semaphore and a progress meter. Node builtins only; every other layer may import it.
 */
export * from './errors.ts';
export * from './units.ts';
export * from './clock.ts';
export * from './logger.ts';
export * from './event-sink.ts';
export * from './semaphore.ts';
export * from './progress.ts';
