/** Executing a retention plan on one VM: remove (merge away) the points to remove, oldest first. */
import { ProgressMeter, type ProgressListener } from '../core/index.ts';
import { planRetention, type RetentionDecision, type RetentionPolicy } from './retention.ts';
import { removePoint, type RemovalResult } from './point-removal.ts';
import type { Repository } from './repository.ts';

export interface RetentionRun {
  readonly decisions: readonly RetentionDecision[];
  readonly removals: readonly RemovalResult[];
}

/** Plans and applies retention for `vmId`. Run it under the VM's lease. */
export async function applyRetention(
  repository: Repository,
  vmId: string,
  policy: RetentionPolicy,
  options: {
    dryRun?: boolean;
    /** Phase 'merge': points removed (merged into their successors) of those to remove. */
    onProgress?: ProgressListener;
  } = {},
): Promise<RetentionRun> {
  const points = await repository.listPoints(vmId);
  const decisions = planRetention(points, policy);
  const removals: RemovalResult[] = [];
  if (options.dryRun === true) return { decisions, removals };
  const meter = new ProgressMeter(options.onProgress, { everyMs: 0 });
  meter.start('merge', { totalObjects: decisions.filter((d) => !d.keep).length });
  for (const decision of decisions) {
    if (decision.keep) continue;
    removals.push(await removePoint(repository, vmId, decision.pointId));
    meter.add(1, 0);
  }
  return { decisions, removals };
}
