/**
 * One machine's part of a backup run: leases on every remote, key-or-delta per disk and remote,
 * one backup point on the hypervisor, each disk read once and fanned out to every remote (the
 * slowest sets the pace; a failing remote is dropped with a warning), manifests committed, then
 * the point committed (or aborted: nothing lost), then retention (merges) and GC per remote.
 */
import { describeError, isVmdeltaError, type Clock, type EventSink } from '../core/index.ts';
import { DiskTee, throttleDisk, type DiskSource, type RateLimiter } from '../disk/index.ts';
import type {
  BackupPoint,
  Hypervisor,
  MachineInfo,
  OpenedPointSource,
} from '../hypervisor/index.ts';
import {
  Lease,
  applyRetention,
  collectGarbage,
  writeBackup,
  type DiskBackupRequest,
  type RetentionPolicy,
} from '../repository/index.ts';
import { decideDiskBackup, type DiskDecision, type RemoteDecision } from './backup-decision.ts';
import { countDisk, type ReadCounters } from './counting-disk.ts';
import { JobError } from './errors.ts';
import type { JobEvent, MachinePhase } from './job-events.ts';
import type { LoggedError, MachineLog, RemoteWriteLog, TransportLog } from './run-log.ts';
import {
  diskStateOn,
  newestReference,
  readRemoteState,
  type RemoteMachineState,
  type RemoteTarget,
} from './remote-state.ts';

export interface MachineBackupOptions {
  readonly runId: string;
  readonly hypervisor: Hypervisor;
  readonly machine: MachineInfo;
  readonly remotes: readonly RemoteTarget[];
  readonly jobId: string;
  readonly scheduleId: string | undefined;
  readonly forceFull: boolean;
  readonly fullInterval: number;
  readonly nbdConcurrency: number;
  /** Disks read at once (0 = all). */
  readonly diskPerVmConcurrency: number;
  readonly preferNbd: boolean;
  readonly retention: RetentionPolicy | undefined;
  readonly limiter: RateLimiter | undefined;
  readonly holderId: string;
  readonly clock: Clock;
  readonly events: EventSink<JobEvent>;
  readonly signal?: AbortSignal;
  readonly gcSafetyWindowMs?: number;
}

export function toLoggedError(error: unknown): LoggedError {
  return { code: isVmdeltaError(error) ? error.code : 'INTERNAL', message: describeError(error) };
}

/** The scope of a job's references on the hypervisor: [A-Za-z0-9_-]{1,40}. */
export function scopeForJob(jobId: string): string {
  return jobId.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 40) || 'job';
}

function referenceField(reference: { token: string } | undefined): { sourceReferenceId?: string } {
  return reference === undefined ? {} : { sourceReferenceId: reference.token };
}

function transportLog(opened: OpenedPointSource): TransportLog {
  const t = opened.transport;
  if (t.protocol === 'nbd') return { type: 'nbd', connections: t.connections, tls: t.tls };
  if (t.protocol === 'stream') return { type: 'stream', format: t.format };
  return { type: 'stream', format: 'file' };
}

/**
 * After the source opened: a planned tracker delta on a full source becomes a delta by hashes,
 * because another remote needed the whole disk or because the source could not give a delta.
 */
function finalDecisions(decision: DiskDecision, opened: OpenedPointSource): RemoteDecision[] {
  if (opened.source.kind === 'delta') return [...decision.remotes];
  const reason =
    decision.read === 'full'
      ? 'FULL_READ_FOR_ANOTHER_REMOTE'
      : (opened.fullReason?.code ?? 'FULL_READ');
  return decision.remotes.map((r) =>
    r.kind === 'delta' && r.method === 'tracker'
      ? { remoteId: r.remoteId, kind: 'delta', method: 'hash-compare', reason }
      : r,
  );
}

export async function backupMachine(options: MachineBackupOptions): Promise<MachineLog> {
  const { machine, clock, runId } = options;
  const log: MachineLog = {
    machineId: machine.id,
    name: machine.label,
    status: 'running',
    startedMs: clock.nowMs(),
    phases: {},
    disks: [],
    warnings: [],
    retention: [],
  };
  const phase = (p: MachinePhase): void =>
    options.events.emit({ type: 'machine-phase', runId, machineId: machine.id, phase: p });
  const warn = (message: string): void => {
    log.warnings.push(message);
    options.events.emit({ type: 'warning', runId, machineId: machine.id, message });
  };

  phase('lease');
  const leases = new Map<string, Lease>();
  let remotes: RemoteTarget[] = [];
  for (const remote of options.remotes) {
    try {
      leases.set(
        remote.id,
        await Lease.acquire(remote.repository, machine.id, { holderId: options.holderId }),
      );
      remotes.push(remote);
    } catch (error) {
      warn(`remote ${remote.id} dropped: ${describeError(error)}`);
    }
  }
  const renew = setInterval(() => {
    for (const lease of leases.values())
      void lease
        .renew()
        .catch((error: unknown) => warn(`lease renewal failed: ${describeError(error)}`));
  }, 60_000);
  renew.unref();
  try {
    if (remotes.length === 0)
      throw new JobError('JOB_NO_REMOTE_LEFT', 'no remote could be locked for this machine');
    const states: RemoteMachineState[] = [];
    for (const remote of remotes) {
      try {
        states.push(await readRemoteState(remote, machine.id));
      } catch (error) {
        warn(
          `remote ${remote.id} dropped: cannot read its restore points: ${describeError(error)}`,
        );
      }
    }
    remotes = states.map((s) => s.remote);
    if (remotes.length === 0) throw new JobError('JOB_NO_REMOTE_LEFT', 'no remote could be read');
    const blockSizes = new Set(remotes.map((r) => r.repository.config.blockSizeBytes));
    const [blockSizeBytes] = blockSizes;
    if (blockSizes.size !== 1 || blockSizeBytes === undefined) {
      throw new JobError('JOB_INVALID', 'the remotes of a job must share one block size');
    }

    const decisions = new Map<string, DiskDecision>();
    const requests = machine.disks.map((disk) => {
      const previous = newestReference(states, disk.id);
      const decision = decideDiskBackup({
        fullInterval: options.fullInterval,
        forceFull: options.forceFull,
        source: { sizeBytes: disk.sizeBytes, deltaBase: previous?.token },
        remotes: states.map((s) => diskStateOn(s, disk.id)),
      });
      decisions.set(disk.id, decision);
      return {
        diskId: disk.id,
        ...(previous === undefined ? {} : { previous }),
        mode: decision.read === 'full' ? ('key' as const) : ('auto' as const),
      };
    });

    phase('snapshot');
    const snapshotStartMs = clock.nowMs();
    const point: BackupPoint = await options.hypervisor.startBackupPoint(machine.id, {
      scope: scopeForJob(options.jobId),
      disks: requests,
      blockSizeBytes,
      connections: options.nbdConcurrency,
      preferNbd: options.preferNbd,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
    log.phases.snapshotMs = clock.nowMs() - snapshotStartMs;
    try {
      await transfer(options, point, remotes, decisions, log, warn, phase);
      phase('commit');
      const commitStartMs = clock.nowMs();
      await point.commit();
      log.phases.commitMs = clock.nowMs() - commitStartMs;
    } catch (error) {
      await point
        .abort()
        .catch((abortError: unknown) =>
          warn(`abort of the backup point failed: ${describeError(abortError)}`),
        );
      throw error;
    }
    const succeeded = new Set(
      log.disks.flatMap((d) =>
        d.remotes.filter((r) => r.status === 'success').map((r) => r.remoteId),
      ),
    );
    await maintain(
      options,
      remotes.filter((r) => succeeded.has(r.id)),
      log,
      warn,
      phase,
    );
    log.status = log.disks.every((d) => d.remotes.every((r) => r.status === 'success'))
      ? 'success'
      : 'partial';
  } catch (error) {
    log.status = 'failure';
    log.error = toLoggedError(error);
  } finally {
    clearInterval(renew);
    for (const [remoteId, lease] of leases) {
      await lease
        .release()
        .catch((error: unknown) =>
          warn(`lease release on ${remoteId} failed: ${describeError(error)}`),
        );
    }
    log.endedMs = clock.nowMs();
    phase('done');
    options.events.emit({
      type: 'machine-finished',
      runId,
      machineId: machine.id,
      status: log.status,
    });
  }
  return log;
}

async function transfer(
  options: MachineBackupOptions,
  point: BackupPoint,
  remotes: readonly RemoteTarget[],
  decisions: ReadonlyMap<string, DiskDecision>,
  log: MachineLog,
  warn: (message: string) => void,
  phase: (p: MachinePhase) => void,
): Promise<void> {
  const { clock, machine, runId } = options;
  phase('transfer');
  const transferStartMs = clock.nowMs();
  const opened: {
    diskId: string;
    label: string;
    opened: OpenedPointSource;
    counters: ReadCounters;
    tee: DiskTee;
    finals: RemoteDecision[];
  }[] = [];
  try {
    for (const pointDisk of point.disks) {
      const decision = decisions.get(pointDisk.disk.id);
      if (decision === undefined) continue;
      const source = await pointDisk.openSource(
        options.signal === undefined ? {} : { signal: options.signal },
      );
      const counters: ReadCounters = { bytesRead: 0, blocksRead: 0 };
      let disk: DiskSource = source.source;
      if (options.limiter !== undefined) disk = throttleDisk(disk, options.limiter);
      const startMs = clock.nowMs();
      disk = countDisk(disk, counters, () =>
        options.events.emit({
          type: 'disk-progress',
          runId,
          machineId: machine.id,
          diskId: pointDisk.disk.id,
          bytesRead: counters.bytesRead,
          blocksRead: counters.blocksRead,
          blocksTotal: source.source.blocks.count,
          elapsedMs: clock.nowMs() - startMs,
        }),
      );
      opened.push({
        diskId: pointDisk.disk.id,
        label: pointDisk.disk.label,
        opened: source,
        counters,
        tee: new DiskTee(
          disk,
          remotes.length,
          options.signal === undefined ? {} : { signal: options.signal },
        ),
        finals: finalDecisions(decision, source),
      });
    }
    const references = Object.fromEntries(point.disks.map((d) => [d.disk.id, d.reference]));
    const outcomes = await Promise.allSettled(
      remotes.map(async (remote, remoteIndex) => {
        const disks: DiskBackupRequest[] = opened.map((o) => {
          const final = o.finals.find((f) => f.remoteId === remote.id);
          const view = o.tee.views[remoteIndex];
          if (final === undefined || view === undefined)
            throw new JobError('JOB_INVALID', `no plan for ${o.diskId} on ${remote.id}`);
          return {
            diskId: o.diskId,
            name: o.label,
            source: view,
            mode: final.kind,
            ...referenceField(references[o.diskId]),
            transport: {
              ...o.opened.transport,
              changeTracker: o.opened.changeTracker.kind,
              ...(o.opened.fullReason === undefined
                ? {}
                : { fullReason: o.opened.fullReason.code }),
            },
          };
        });
        try {
          const states = await readRemoteState(remote, machine.id);
          return await writeBackup(remote.repository, {
            vmId: machine.id,
            jobId: options.jobId,
            ...(options.scheduleId === undefined ? {} : { scheduleId: options.scheduleId }),
            ...(states.last === undefined ? {} : { basePointId: states.last.pointId }),
            vm: { label: machine.label, hypervisor: machine.kind, references },
            diskConcurrency:
              options.diskPerVmConcurrency === 0 ? disks.length : options.diskPerVmConcurrency,
            disks,
            ...(options.signal === undefined ? {} : { signal: options.signal }),
          });
        } finally {
          for (const o of opened) await o.tee.views[remoteIndex]?.close();
        }
      }),
    );
    for (const [i, outcome] of outcomes.entries()) {
      if (outcome.status === 'rejected')
        warn(`remote ${remotes[i]?.id ?? '?'} dropped: ${describeError(outcome.reason)}`);
    }
    if (outcomes.every((o) => o.status === 'rejected')) {
      const first = outcomes[0];
      throw new JobError('JOB_NO_REMOTE_LEFT', 'every remote failed to store the backup', {
        cause: first?.status === 'rejected' ? first.reason : undefined,
      });
    }
    for (const o of opened) {
      const remoteLogs: RemoteWriteLog[] = remotes.map((remote, i) => {
        const outcome = outcomes[i];
        const final = o.finals.find((f) => f.remoteId === remote.id);
        const base = {
          remoteId: remote.id,
          kind: final?.kind ?? 'key',
          ...(final?.kind === 'key' ? { reason: final.reason } : {}),
          ...(final?.kind === 'delta'
            ? {
                method: final.method,
                ...(final.reason === undefined ? {} : { reason: final.reason }),
              }
            : {}),
        };
        if (outcome?.status !== 'fulfilled') {
          return {
            ...base,
            status: 'failure',
            bytesWritten: 0,
            blocksWritten: 0,
            error: toLoggedError(outcome?.reason),
          };
        }
        const entry = outcome.value.disks.find((d) => d.diskId === o.diskId);
        return {
          ...base,
          status: 'success',
          bytesWritten: entry?.storedBytes ?? 0,
          blocksWritten: entry?.storedBlockCount ?? 0,
          restorePointId: outcome.value.pointId,
        };
      });
      const source = o.opened;
      log.disks.push({
        diskId: o.diskId,
        name: o.label,
        sizeBytes: source.source.sizeBytes,
        read: source.source.kind === 'delta' ? 'delta' : 'full',
        transport: transportLog(source),
        changeTracker: source.changeTracker.kind,
        bytesRead: o.counters.bytesRead,
        blocksRead: o.counters.blocksRead,
        blocksChanged:
          source.source.kind === 'delta'
            ? source.source.blocks.count
            : Math.max(0, ...remoteLogs.map((r) => r.blocksWritten)),
        durationMs: clock.nowMs() - transferStartMs,
        remotes: remoteLogs,
        fallbacks: [
          ...(source.transportFallback === undefined
            ? []
            : [
                {
                  from: 'nbd',
                  to: source.transport.protocol,
                  reason: source.transportFallback.message,
                },
              ]),
          ...(source.fullReason === undefined || decisions.get(o.diskId)?.read !== 'delta'
            ? []
            : [
                {
                  from: 'delta',
                  to: 'full read',
                  reason: `${source.fullReason.code}: ${source.fullReason.message}`,
                },
              ]),
        ],
      });
    }
  } finally {
    for (const o of opened) await o.tee.close().catch(() => undefined);
    log.phases.transferMs = clock.nowMs() - transferStartMs;
  }
}

async function maintain(
  options: MachineBackupOptions,
  remotes: readonly RemoteTarget[],
  log: MachineLog,
  warn: (message: string) => void,
  phase: (p: MachinePhase) => void,
): Promise<void> {
  const { clock, machine } = options;
  if (options.retention !== undefined) {
    phase('merge');
    const startMs = clock.nowMs();
    for (const remote of remotes) {
      try {
        const run = await applyRetention(remote.repository, machine.id, options.retention);
        log.retention.push({
          remoteId: remote.id,
          merged: run.removals.filter((r) => r.foldedIndexes > 0).length,
          removed: run.removals.length,
        });
      } catch (error) {
        warn(`retention on ${remote.id} failed: ${describeError(error)}`);
      }
    }
    log.phases.mergeMs = clock.nowMs() - startMs;
  }
  phase('gc');
  const gcStartMs = clock.nowMs();
  for (const remote of remotes) {
    try {
      await collectGarbage(
        remote.repository,
        options.gcSafetyWindowMs === undefined ? {} : { safetyWindowMs: options.gcSafetyWindowMs },
      );
    } catch (error) {
      warn(`garbage collection on ${remote.id} failed: ${describeError(error)}`);
    }
  }
  log.phases.gcMs = clock.nowMs() - gcStartMs;
}
