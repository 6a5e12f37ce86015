/**
 * Progress of long work (copy, verify, restore, checksum) as plain numbers, reported to an optional
 * listener at most every `everyMs`. The meter is mutable and reused: counting a block is two
 * additions and a clock read, never an allocation; only a report builds an object.
 */
import { systemClock, type Clock } from './clock.ts';

export interface WorkProgress {
  /** What is being done now ('plan', 'copy', 'verify', 'restore'...); totals belong to it. */
  readonly phase: string;
  /** The item the phase works on when it goes item by item (a disk id), else absent. */
  readonly item?: string;
  readonly doneBytes: number;
  /** 0 when the phase does not count bytes. */
  readonly totalBytes: number;
  readonly doneObjects: number;
  /** 0 when the phase does not know its object count. */
  readonly totalObjects: number;
}

export type ProgressListener = (progress: WorkProgress) => void;

/** At most ten reports a second by default (what a terminal line redraw needs). */
export const PROGRESS_EVERY_MS = 100;

export class ProgressMeter {
  readonly #listener: ProgressListener | undefined;
  readonly #clock: Clock;
  readonly #everyMs: number;
  #phase = '';
  #item: string | undefined;
  #lastMs = 0;
  doneBytes = 0;
  doneObjects = 0;
  totalBytes = 0;
  totalObjects = 0;

  constructor(
    listener: ProgressListener | undefined,
    options: { clock?: Clock; everyMs?: number } = {},
  ) {
    this.#listener = listener;
    this.#clock = options.clock ?? systemClock;
    this.#everyMs = options.everyMs ?? PROGRESS_EVERY_MS;
  }

  /** Whether anyone listens (callers may skip work done only for progress, such as counting). */
  get listening(): boolean {
    return this.#listener !== undefined;
  }

  /** Starts a phase with its totals (done counters back to 0) and reports it at once. */
  start(
    phase: string,
    totals: { totalBytes?: number; totalObjects?: number; item?: string } = {},
  ): void {
    this.#phase = phase;
    this.#item = totals.item;
    this.totalBytes = totals.totalBytes ?? 0;
    this.totalObjects = totals.totalObjects ?? 0;
    this.doneBytes = 0;
    this.doneObjects = 0;
    this.report();
  }

  /** Counts finished work; reports when the last report is at least `everyMs` old. */
  add(objects: number, bytes: number): void {
    this.doneObjects += objects;
    this.doneBytes += bytes;
    if (this.#listener === undefined) return;
    const nowMs = this.#clock.nowMs();
    if (nowMs - this.#lastMs >= this.#everyMs) this.#emit(nowMs);
  }

  /** Reports now (the end of a phase: its final numbers always reach the listener). */
  report(): void {
    if (this.#listener !== undefined) this.#emit(this.#clock.nowMs());
  }

  #emit(nowMs: number): void {
    this.#lastMs = nowMs;
    this.#listener?.({
      phase: this.#phase,
      ...(this.#item === undefined ? {} : { item: this.#item }),
      doneBytes: this.doneBytes,
      totalBytes: this.totalBytes,
      doneObjects: this.doneObjects,
      totalObjects: this.totalObjects,
    });
  }
}
