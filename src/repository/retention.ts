/**
 * Retention as a pure function (docs/design.md §4.9): for each restore point, keep or remove, with
 * the reasons. Points are grouped by schedule (null = manual). Within a group: keep the newest
 * `keepLast`; for each calendar rule (daily, weekly (ISO weeks), monthly, yearly, in UTC) keep the
 * newest point of each of the N most recent periods that have a point. The newest point of the VM
 * is always kept (it is the base of the next delta). Execution (merges) is separate.
 */

export interface RetentionPoint {
  readonly pointId: string;
  readonly createdMs: number;
  readonly scheduleId: string | null;
}

export interface RetentionPolicy {
  readonly keepLast?: number;
  readonly daily?: number;
  readonly weekly?: number;
  readonly monthly?: number;
  readonly yearly?: number;
}

export type RetentionReason =
  'newest' | 'last' | 'daily' | 'weekly' | 'monthly' | 'yearly' | 'not covered by any rule';

export interface RetentionDecision {
  readonly pointId: string;
  readonly keep: boolean;
  readonly reasons: readonly RetentionReason[];
}

type Bucket = 'daily' | 'weekly' | 'monthly' | 'yearly';

function periodOf(bucket: Bucket, createdMs: number): string {
  const date = new Date(createdMs);
  const year = date.getUTCFullYear();
  if (bucket === 'yearly') return String(year);
  if (bucket === 'monthly') return `${year}-${date.getUTCMonth() + 1}`;
  if (bucket === 'daily') return date.toISOString().slice(0, 10);
  // ISO 8601 week: the week's Thursday decides its year.
  const thursday = new Date(Date.UTC(year, date.getUTCMonth(), date.getUTCDate()));
  const dayNumber = thursday.getUTCDay() === 0 ? 7 : thursday.getUTCDay();
  thursday.setUTCDate(thursday.getUTCDate() + 4 - dayNumber);
  const weekYear = thursday.getUTCFullYear();
  const week = Math.ceil(((thursday.getTime() - Date.UTC(weekYear, 0, 1)) / 86_400_000 + 1) / 7);
  return `${weekYear}-W${String(week).padStart(2, '0')}`;
}

export function isoWeekOf(createdMs: number): string {
  return periodOf('weekly', createdMs);
}

export function planRetention(
  points: readonly RetentionPoint[],
  policy: RetentionPolicy,
): RetentionDecision[] {
  const reasons = new Map<string, RetentionReason[]>();
  for (const point of points) reasons.set(point.pointId, []);
  const newestFirst = [...points].sort(
    (a, b) => b.createdMs - a.createdMs || (a.pointId < b.pointId ? 1 : -1),
  );
  const newest = newestFirst[0];
  if (newest !== undefined) reasons.get(newest.pointId)?.push('newest');
  const groups = new Map<string | null, RetentionPoint[]>();
  for (const point of newestFirst) {
    const group = groups.get(point.scheduleId) ?? [];
    group.push(point);
    groups.set(point.scheduleId, group);
  }
  for (const group of groups.values()) {
    group.slice(0, Math.max(0, policy.keepLast ?? 0)).forEach((point) => {
      reasons.get(point.pointId)?.push('last');
    });
    for (const bucket of ['daily', 'weekly', 'monthly', 'yearly'] as const) {
      const count = policy[bucket] ?? 0;
      const seen = new Set<string>();
      for (const point of group) {
        if (seen.size >= count) break;
        const period = periodOf(bucket, point.createdMs);
        if (seen.has(period)) continue;
        seen.add(period);
        reasons.get(point.pointId)?.push(bucket);
      }
    }
  }
  return points.map((point) => {
    const kept = reasons.get(point.pointId) ?? [];
    return kept.length > 0
      ? { pointId: point.pointId, keep: true, reasons: kept }
      : { pointId: point.pointId, keep: false, reasons: ['not covered by any rule'] };
  });
}
