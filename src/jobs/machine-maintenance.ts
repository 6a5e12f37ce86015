/** After a committed point: retention (merges), then GC where retention removed points. */
import { describeError } from '../core/index.ts';
import { applyRetention, collectGarbage } from '../repository/index.ts';
import type { MachinePhase } from './job-events.ts';
import type { MachineBackupOptions } from './machine-backup-options.ts';
import type { RemoteTarget } from './remote-state.ts';
import type { MachineLog } from './run-log.ts';

export async function maintain(
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
  // GC sweeps what merges and crashed runs left behind; a merge already deletes the blocks it
  // superseded, so the full mark-and-sweep runs only on remotes where retention removed a point.
  const swept = remotes.filter((remote) =>
    log.retention.some((r) => r.remoteId === remote.id && r.removed > 0),
  );
  if (swept.length === 0) return;
  phase('gc');
  const gcStartMs = clock.nowMs();
  for (const remote of swept) {
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
