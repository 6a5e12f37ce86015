/**
 * The scheduler: fires each enabled schedule at its cron times (in its time zone), never starts a
 * second run of a job whose previous run is still going (that occurrence is reported as skipped),
 * and hands due runs to a RunQueue. Time comes from a Clock, so tests drive it with ManualClock.
 */
import type { Clock } from '../../core/index.ts';
import { nextRunMs } from './next-run.ts';

export interface ScheduleEntry {
  readonly jobId: string;
  readonly scheduleId: string;
  readonly cron: string;
  readonly timezone: string;
  readonly enabled: boolean;
}

export interface SchedulerHooks {
  /** The schedules to run (read again at every tick, so edits apply without restart). */
  readonly listSchedules: () => readonly ScheduleEntry[];
  readonly isJobRunning: (jobId: string) => boolean;
  /** Starts (enqueues) a run; the scheduler does not wait for it. */
  readonly startRun: (entry: ScheduleEntry, dueMs: number) => void;
  readonly onSkipped: (entry: ScheduleEntry, dueMs: number, reason: string) => void;
  readonly onError?: (entry: ScheduleEntry, error: unknown) => void;
}

const MAX_SLEEP_MS = 60_000;

export class Scheduler {
  readonly #clock: Clock;
  readonly #hooks: SchedulerHooks;
  /** key "job/schedule" → next due time and the cron it was computed from. */
  readonly #next = new Map<string, { dueMs: number | undefined; signature: string }>();
  #stopped = true;
  #loop: Promise<void> | undefined;
  #wake: AbortController | undefined;

  constructor(clock: Clock, hooks: SchedulerHooks) {
    this.#clock = clock;
    this.#hooks = hooks;
  }

  /** Next due time per schedule (for the API and the web page). */
  upcoming(): { jobId: string; scheduleId: string; nextMs: number | undefined }[] {
    this.#refresh();
    return this.#hooks.listSchedules().map((entry) => ({
      jobId: entry.jobId,
      scheduleId: entry.scheduleId,
      nextMs: this.#next.get(`${entry.jobId}/${entry.scheduleId}`)?.dueMs,
    }));
  }

  /** Fires every schedule due at the clock's current time. Returns how many runs were started. */
  tick(): number {
    this.#refresh();
    const nowMs = this.#clock.nowMs();
    let started = 0;
    for (const entry of this.#hooks.listSchedules()) {
      const key = `${entry.jobId}/${entry.scheduleId}`;
      const state = this.#next.get(key);
      if (state?.dueMs === undefined || state.dueMs > nowMs) continue;
      const dueMs = state.dueMs;
      try {
        state.dueMs = nextRunMs(entry.cron, entry.timezone, nowMs);
      } catch (error) {
        state.dueMs = undefined;
        this.#hooks.onError?.(entry, error);
        continue;
      }
      if (this.#hooks.isJobRunning(entry.jobId)) {
        this.#hooks.onSkipped(entry, dueMs, 'the previous run of this job is still running');
        continue;
      }
      this.#hooks.startRun(entry, dueMs);
      started += 1;
    }
    return started;
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#loop = this.#run();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wake?.abort();
    await this.#loop;
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      this.tick();
      const nowMs = this.#clock.nowMs();
      const dues = [...this.#next.values()]
        .map((s) => s.dueMs)
        .filter((d): d is number => d !== undefined);
      const sleepMs = Math.min(
        MAX_SLEEP_MS,
        Math.max(0, Math.min(...dues, nowMs + MAX_SLEEP_MS) - nowMs),
      );
      this.#wake = new AbortController();
      await this.#clock.sleep(sleepMs, this.#wake.signal).catch(() => undefined);
    }
  }

  /** Computes due times for new or edited schedules; forgets removed ones. */
  #refresh(): void {
    const nowMs = this.#clock.nowMs();
    const seen = new Set<string>();
    for (const entry of this.#hooks.listSchedules()) {
      const key = `${entry.jobId}/${entry.scheduleId}`;
      seen.add(key);
      const signature = `${entry.cron}|${entry.timezone}|${entry.enabled}`;
      if (this.#next.get(key)?.signature === signature) continue;
      let dueMs: number | undefined;
      try {
        dueMs = entry.enabled ? nextRunMs(entry.cron, entry.timezone, nowMs) : undefined;
      } catch (error) {
        this.#hooks.onError?.(entry, error);
      }
      this.#next.set(key, { dueMs, signature });
    }
    for (const key of this.#next.keys()) if (!seen.has(key)) this.#next.delete(key);
  }
}
