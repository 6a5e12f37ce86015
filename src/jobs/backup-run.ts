/**
 * A whole backup run of a job: select the machines, back them up `concurrency` at a time (each
 * through `backupMachine`), keep the run log current in the store, enforce the job timeout, and
 * finish with the run's status. Never throws for a machine's failure: the log says what failed.
 */
import { randomBytes } from 'node:crypto';
import { Semaphore, type Clock, type EventSink } from '../core/index.ts';
import { RateLimiter } from '../disk/index.ts';
import type { Hypervisor } from '../hypervisor/index.ts';
import type { RetentionPolicy } from '../repository/index.ts';
import { JobError } from './errors.ts';
import type { JobEvent } from './job-events.ts';
import { selectsMachine, type JobDefinition } from './job-definition.ts';
import { backupMachine } from './machine-backup.ts';
import { toLoggedError } from './logged-error.ts';
import type { RemoteTarget } from './remote-state.ts';
import { summarizeStatus, type RunLog } from './run-log.ts';

export interface BackupRunOptions {
  readonly job: JobDefinition;
  readonly scheduleId?: string;
  readonly trigger: 'schedule' | 'manual';
  /** Forces a key backup of every disk (also forced by the schedule's `forceFull`). */
  readonly forceFull?: boolean;
  readonly hypervisor: Hypervisor;
  readonly remotes: readonly RemoteTarget[];
  readonly clock: Clock;
  readonly events: EventSink<JobEvent>;
  /** Called whenever the run log changes enough to be saved (start, each machine, end). */
  readonly save?: (log: RunLog) => void;
  readonly runId?: string;
  readonly holderId?: string;
  readonly signal?: AbortSignal;
  readonly gcSafetyWindowMs?: number;
}

export function newRunId(nowMs: number): string {
  return `${new Date(nowMs)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')}-${randomBytes(3).toString('hex')}`;
}

export function retentionForSchedule(
  job: JobDefinition,
  scheduleId: string | undefined,
): RetentionPolicy | undefined {
  const schedule =
    job.schedules.find((s) => s.id === scheduleId) ??
    (scheduleId === undefined ? job.schedules[0] : undefined);
  if (schedule === undefined) return undefined;
  return { keepLast: schedule.exportRetention, ...(schedule.longTermRetention ?? {}) };
}

export async function runBackup(options: BackupRunOptions): Promise<RunLog> {
  const { job, clock } = options;
  const schedule = job.schedules.find((s) => s.id === options.scheduleId);
  if (options.scheduleId !== undefined && schedule === undefined) {
    throw new JobError('JOB_NOT_FOUND', `job ${job.id} has no schedule ${options.scheduleId}`);
  }
  const forceFull = options.forceFull === true || schedule?.forceFull === true;
  const log: RunLog = {
    runId: options.runId ?? newRunId(clock.nowMs()),
    jobId: job.id,
    jobName: job.name,
    ...(options.scheduleId === undefined ? {} : { scheduleId: options.scheduleId }),
    trigger: options.trigger,
    forceFull,
    startedMs: clock.nowMs(),
    status: 'running',
    machines: [],
    warnings: [],
  };
  options.save?.(log);
  const controller = new AbortController();
  const onAbort = (): void => controller.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const timer =
    job.settings.timeout > 0
      ? setTimeout(
          () =>
            controller.abort(
              new JobError('JOB_TIMEOUT', `the run exceeded ${job.settings.timeout} ms`),
            ),
          job.settings.timeout,
        )
      : undefined;
  try {
    const machines = (await options.hypervisor.listMachines()).filter((m) =>
      selectsMachine(job.machines, { id: m.id, name: m.label, tags: [] }),
    );
    const missing = job.machines.ids.filter((id) => !machines.some((m) => m.id === id));
    for (const id of missing)
      log.warnings.push(`machine ${id} is selected by the job but the source does not list it`);
    options.events.emit({
      type: 'run-started',
      runId: log.runId,
      jobId: job.id,
      machineIds: machines.map((m) => m.id),
    });
    const slots = new Semaphore(
      job.settings.concurrency === 0 ? Math.max(1, machines.length) : job.settings.concurrency,
    );
    const limiter =
      job.settings.maxExportRate > 0
        ? new RateLimiter(job.settings.maxExportRate, clock)
        : undefined;
    const retention = retentionForSchedule(job, options.scheduleId);
    await Promise.all(
      machines.map((machine) =>
        slots.use(async () => {
          const machineLog = await backupMachine({
            runId: log.runId,
            hypervisor: options.hypervisor,
            machine,
            remotes: options.remotes,
            jobId: job.id,
            scheduleId: options.scheduleId,
            forceFull,
            fullInterval: job.settings.fullInterval,
            nbdConcurrency: job.settings.nbdConcurrency,
            diskPerVmConcurrency: job.settings.diskPerVmConcurrency,
            preferNbd: job.settings.preferNbd,
            retention,
            limiter,
            holderId: options.holderId ?? `vmdelta:${process.pid}:${log.runId}`,
            clock,
            events: options.events,
            signal: controller.signal,
            ...(options.gcSafetyWindowMs === undefined
              ? {}
              : { gcSafetyWindowMs: options.gcSafetyWindowMs }),
          });
          log.machines.push(machineLog);
          options.save?.(log);
        }),
      ),
    );
    log.status = controller.signal.aborted ? 'failure' : summarizeStatus(log.machines);
    if (controller.signal.aborted) log.error = toLoggedError(controller.signal.reason);
  } catch (error) {
    log.status = 'failure';
    log.error = toLoggedError(error);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
    log.endedMs = clock.nowMs();
    options.save?.(log);
    options.events.emit({ type: 'run-finished', runId: log.runId, status: log.status });
  }
  return log;
}
