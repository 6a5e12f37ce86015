/**
 * The transfer phase of a machine's backup: open each disk of the backup point once, rate-limit
 * and count it, fan it out to one repository writer per remote (DiskTee), and record per disk
 * what was read, how, and what each remote stored. A remote that fails is dropped with a warning;
 * all of them failing is JOB_NO_REMOTE_LEFT.
 */
import { describeError } from '../core/index.ts';
import { DiskTee, throttleDisk, type DiskSource } from '../disk/index.ts';
import type { BackupPoint, OpenedPointSource } from '../hypervisor/index.ts';
import { writeBackup, type DiskBackupRequest } from '../repository/index.ts';
import type { DiskDecision, RemoteDecision } from './backup-decision.ts';
import { countDisk, type ReadCounters } from './counting-disk.ts';
import { JobError } from './errors.ts';
import type { MachinePhase } from './job-events.ts';
import type { MachineBackupOptions } from './machine-backup-options.ts';
import { toLoggedError } from './logged-error.ts';
import { readRemoteState, type RemoteTarget } from './remote-state.ts';
import type { MachineLog, RemoteWriteLog, TransportLog } from './run-log.ts';

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

export async function transfer(
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
            vm: {
              label: machine.label,
              hypervisor: machine.kind,
              references,
              ...(machine.metadata === undefined ? {} : { metadata: machine.metadata }),
            },
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
