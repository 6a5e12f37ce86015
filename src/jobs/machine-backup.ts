/**
 * One machine's part of a backup run: leases on every remote, key-or-delta per disk and remote,
 * one backup point on the hypervisor, each disk read once and fanned out to every remote (the
 * slowest sets the pace; a failing remote is dropped with a warning), manifests committed, then
 * the point committed (or aborted: nothing lost), then retention (merges) and GC per remote.
 */
import { describeError } from '../core/index.ts';
import type { BackupPoint } from '../hypervisor/index.ts';
import { Lease } from '../repository/index.ts';
import { decideDiskBackup, type DiskDecision } from './backup-decision.ts';
import { transfer } from './disk-transfer.ts';
import { JobError } from './errors.ts';
import type { MachinePhase } from './job-events.ts';
import { toLoggedError } from './logged-error.ts';
import { maintain } from './machine-maintenance.ts';
import {
  diskStateOn,
  newestReference,
  readRemoteState,
  type RemoteMachineState,
  type RemoteTarget,
} from './remote-state.ts';
import type { MachineLog } from './run-log.ts';
import type { MachineBackupOptions } from './machine-backup-options.ts';

export type { MachineBackupOptions } from './machine-backup-options.ts';

/** The scope of a job's references on the hypervisor: [A-Za-z0-9_-]{1,40}. */
export function scopeForJob(jobId: string): string {
  return jobId.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 40) || 'job';
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
