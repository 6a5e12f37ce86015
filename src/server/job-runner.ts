/**
 * Runs jobs for the service: "run now" and due schedules go through the RunQueue (global limit,
 * per-remote and per-source limits), progress events are published to the event hub (disk
 * progress throttled) and kept as a live snapshot for pages that connect mid-run, skipped
 * schedule occurrences are recorded as runs with status 'skipped', and the job's webhook is
 * called with the run summary when `reportWhen` says so.
 */
import type { App } from '../app/index.ts';
import type { Logger } from '../core/index.ts';
import { newRunId, type JobEvent, type RunLog } from '../jobs/index.ts';
import type { EventHub } from './http/event-hub.ts';
import { HttpError } from './http/router.ts';
import { sendWebhook, shouldNotify, summarizeRun } from './notify/webhook.ts';
import { RunQueue } from './scheduler/run-queue.ts';

const PROGRESS_INTERVAL_MS = 200;

export interface LiveDisk {
  diskId: string;
  bytesRead: number;
  blocksRead: number;
  blocksTotal: number;
  elapsedMs: number;
}

export interface LiveMachine {
  machineId: string;
  phase: string;
  status: string | undefined;
  disks: Record<string, LiveDisk>;
}

export interface LiveRun {
  readonly runId: string;
  readonly jobId: string;
  readonly scheduleId: string | undefined;
  state: 'queued' | 'running';
  readonly queuedMs: number;
  machines: Record<string, LiveMachine>;
  warnings: string[];
  cancelled: boolean;
}

export interface JobRunnerOptions {
  readonly app: App;
  readonly hub: EventHub;
  readonly logger: Logger;
  /** Runs at once (default 2). */
  readonly globalConcurrency?: number;
  /** Runs at once per remote and per source (default 1). */
  readonly resourceConcurrency?: number;
}

export class JobRunner {
  readonly #app: App;
  readonly #hub: EventHub;
  readonly #logger: Logger;
  readonly #queue: RunQueue;
  readonly #live = new Map<string, LiveRun>();
  /** runId → "machine/disk" → elapsedMs of the last published disk-progress event. */
  readonly #publishedMs = new Map<string, Map<string, number>>();

  constructor(options: JobRunnerOptions) {
    this.#app = options.app;
    this.#hub = options.hub;
    this.#logger = options.logger;
    const perResource = options.resourceConcurrency ?? 1;
    this.#queue = new RunQueue({
      globalLimit: options.globalConcurrency ?? 2,
      resourceLimit: () => perResource,
    });
  }

  /** True while a run of the job is queued or running (the no-overlap rule). */
  isBusy(jobId: string): boolean {
    return (
      this.#app.isRunning(jobId) || [...this.#live.values()].some((run) => run.jobId === jobId)
    );
  }

  live(): LiveRun[] {
    return [...this.#live.values()];
  }

  liveRun(runId: string): LiveRun | undefined {
    return this.#live.get(runId);
  }

  /** Queues a run; answers at once with its id. A job already queued or running is a 409. */
  start(
    jobId: string,
    options: { scheduleId?: string; forceFull?: boolean; trigger: 'schedule' | 'manual' },
  ): LiveRun {
    const job = this.#app.jobs().find((j) => j.id === jobId);
    if (job === undefined) throw new HttpError(404, 'JOB_NOT_FOUND', `no job ${jobId}`);
    if (this.isBusy(jobId))
      throw new HttpError(409, 'JOB_ALREADY_RUNNING', `job ${jobId} is already queued or running`);
    const runId = newRunId(this.#app.clock.nowMs());
    const live: LiveRun = {
      runId,
      jobId,
      scheduleId: options.scheduleId,
      state: 'queued',
      queuedMs: this.#app.clock.nowMs(),
      machines: {},
      warnings: [],
      cancelled: false,
    };
    this.#live.set(runId, live);
    this.#hub.publish({ type: 'run-queued', data: { runId, jobId } });
    this.#queue.enqueue({
      id: runId,
      resources: [...job.remotes.map((r) => `remote:${r}`), `source:${job.source}`],
      start: () => this.#execute(live, options),
    });
    return live;
  }

  /** Cancels a queued or running run; false if it is not live. */
  cancel(runId: string): boolean {
    const live = this.#live.get(runId);
    if (live === undefined) return false;
    live.cancelled = true;
    if (live.state === 'running') this.#app.cancel(live.jobId);
    return true;
  }

  /** Records a schedule occurrence that did not start because the job was still busy. */
  recordSkipped(jobId: string, scheduleId: string, dueMs: number, reason: string): RunLog {
    const log: RunLog = {
      runId: newRunId(dueMs),
      jobId,
      jobName: this.#app.jobs().find((j) => j.id === jobId)?.name ?? jobId,
      scheduleId,
      trigger: 'schedule',
      forceFull: false,
      startedMs: dueMs,
      endedMs: dueMs,
      status: 'skipped',
      machines: [],
      warnings: [`skipped: ${reason}`],
    };
    this.#app.store.saveRun(log);
    this.#hub.publish({ type: 'run-skipped', data: { runId: log.runId, jobId, scheduleId } });
    this.#logger.log('warn', 'scheduled run skipped', { jobId, scheduleId, reason });
    return log;
  }

  /** Resolves when no run is queued or running. */
  idle(): Promise<void> {
    return this.#queue.idle();
  }

  async #execute(
    live: LiveRun,
    options: { scheduleId?: string; forceFull?: boolean; trigger: 'schedule' | 'manual' },
  ): Promise<void> {
    let log: RunLog;
    try {
      if (live.cancelled) throw new HttpError(409, 'RUN_CANCELLED', 'cancelled before it started');
      live.state = 'running';
      log = await this.#app.runJob(live.jobId, {
        runId: live.runId,
        trigger: options.trigger,
        ...(options.scheduleId === undefined ? {} : { scheduleId: options.scheduleId }),
        ...(options.forceFull === true ? { forceFull: true } : {}),
        events: { emit: (event) => this.#onEvent(live, event) },
      });
    } catch (error) {
      log = this.#failedRun(live, options, error);
      this.#hub.publish({ type: 'run-finished', data: { runId: live.runId, status: log.status } });
    } finally {
      this.#live.delete(live.runId);
      this.#publishedMs.delete(live.runId);
    }
    this.#logger.log('info', 'run finished', { runId: log.runId, status: log.status });
    await this.#notify(log);
  }

  #failedRun(
    live: LiveRun,
    options: { scheduleId?: string; forceFull?: boolean; trigger: 'schedule' | 'manual' },
    error: unknown,
  ): RunLog {
    const existing = this.#app.store.getRun(live.runId);
    const code =
      typeof (error as { code?: unknown }).code === 'string'
        ? (error as { code: string }).code
        : 'INTERNAL';
    const log: RunLog = existing ?? {
      runId: live.runId,
      jobId: live.jobId,
      jobName: live.jobId,
      ...(live.scheduleId === undefined ? {} : { scheduleId: live.scheduleId }),
      trigger: options.trigger,
      forceFull: options.forceFull === true,
      startedMs: live.queuedMs,
      status: 'failure',
      machines: [],
      warnings: [],
    };
    log.status = live.cancelled ? 'interrupted' : 'failure';
    log.endedMs = this.#app.clock.nowMs();
    log.error = { code, message: (error as Error).message };
    this.#app.store.saveRun(log);
    return log;
  }

  #onEvent(live: LiveRun, event: JobEvent): void {
    if (event.type === 'disk-progress') {
      const machine = this.#machine(live, event.machineId);
      machine.disks[event.diskId] = {
        diskId: event.diskId,
        bytesRead: event.bytesRead,
        blocksRead: event.blocksRead,
        blocksTotal: event.blocksTotal,
        elapsedMs: event.elapsedMs,
      };
      const key = `${event.machineId}/${event.diskId}`;
      const published = this.#publishedMs.get(live.runId) ?? new Map<string, number>();
      this.#publishedMs.set(live.runId, published);
      const lastMs = published.get(key);
      const due =
        lastMs === undefined ||
        event.elapsedMs - lastMs >= PROGRESS_INTERVAL_MS ||
        event.blocksRead >= event.blocksTotal;
      if (!due) return;
      published.set(key, event.elapsedMs);
    } else if (event.type === 'machine-phase') {
      this.#machine(live, event.machineId).phase = event.phase;
    } else if (event.type === 'machine-finished') {
      const machine = this.#machine(live, event.machineId);
      machine.status = event.status;
      machine.phase = 'done';
    } else if (event.type === 'warning') {
      live.warnings.push(event.message);
    } else if (event.type === 'run-started') {
      for (const id of event.machineIds) this.#machine(live, id);
    }
    this.#hub.publish({ type: event.type, data: { ...event, jobId: live.jobId } });
  }

  #machine(live: LiveRun, machineId: string): LiveMachine {
    let machine = live.machines[machineId];
    if (machine === undefined) {
      machine = { machineId, phase: 'waiting', status: undefined, disks: {} };
      live.machines[machineId] = machine;
    }
    return machine;
  }

  async #notify(log: RunLog): Promise<void> {
    const job = this.#app.jobs().find((j) => j.id === log.jobId);
    const url = job?.settings.webhookUrl;
    if (job === undefined || url === undefined) return;
    if (!shouldNotify(job.settings.reportWhen, log.status)) return;
    const outcome = await sendWebhook(url, summarizeRun(log));
    log.warnings.push(
      outcome.ok
        ? `webhook delivered (HTTP ${outcome.status})`
        : `webhook failed: ${outcome.reason}`,
    );
    this.#app.store.saveRun(log);
  }
}
