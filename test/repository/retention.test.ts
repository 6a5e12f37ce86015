import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isoWeekOf, planRetention, type RetentionPoint } from '../../src/repository/index.ts';

const DAY = 86_400_000;
const start = Date.UTC(2026, 0, 1, 12); // a Thursday

function daily(count: number, scheduleId: string | null = 's'): RetentionPoint[] {
  return Array.from({ length: count }, (_, i) => ({
    pointId: `p${String(i).padStart(3, '0')}`,
    createdMs: start + i * DAY,
    scheduleId,
  }));
}

test('keepLast keeps the newest N per schedule, with the reason', () => {
  const points = [
    ...daily(5, 'a'),
    ...daily(3, 'b').map((p) => ({
      ...p,
      pointId: `b${p.pointId}`,
      createdMs: p.createdMs + 1000,
    })),
  ];
  const plan = planRetention(points, { keepLast: 2 });
  const kept = plan.filter((d) => d.keep).map((d) => d.pointId);
  assert.deepEqual(kept.sort(), ['bp001', 'bp002', 'p003', 'p004'].sort());
  assert.deepEqual(plan.find((d) => d.pointId === 'p000')?.reasons, ['not covered by any rule']);
  assert.deepEqual(plan.find((d) => d.pointId === 'p004')?.reasons, ['newest', 'last']);
  assert.deepEqual(plan.find((d) => d.pointId === 'bp002')?.reasons, ['last']);
});

test('calendar buckets keep the newest point of each of the N most recent periods', () => {
  // Two points a day for 40 days.
  const points = Array.from({ length: 80 }, (_, i) => ({
    pointId: `p${String(i).padStart(3, '0')}`,
    createdMs: start + i * (DAY / 2),
    scheduleId: null,
  }));
  const plan = planRetention(points, { daily: 3, weekly: 2, monthly: 2 });
  const reasons = new Map(plan.map((d) => [d.pointId, d.reasons]));
  assert.deepEqual(reasons.get('p079'), ['newest', 'daily', 'weekly', 'monthly']);
  // p079 is Tue Feb 10 00:00, p078 Mon Feb 9 12:00, p077 Feb 9 00:00, p076 Sun Feb 8 12:00.
  assert.deepEqual(reasons.get('p078'), ['daily']); // newest of the previous day
  assert.deepEqual(reasons.get('p077'), ['not covered by any rule']);
  assert.deepEqual(reasons.get('p076'), ['daily', 'weekly']); // newest of the previous ISO week
  // January's newest point (Jan 31 12:00 + ...) is kept as monthly.
  const january = points.filter((p) => new Date(p.createdMs).getUTCMonth() === 0).at(-1);
  assert.ok(reasons.get(january?.pointId ?? '')?.includes('monthly'));
  assert.equal(plan.filter((d) => d.keep).length, 4);
});

test('ISO weeks', () => {
  assert.equal(isoWeekOf(Date.UTC(2021, 0, 3)), '2020-W53');
  assert.equal(isoWeekOf(Date.UTC(2024, 11, 30)), '2025-W01');
});

test('properties: one decision per point, the newest always kept, more rules never remove more', () => {
  const pointsArb = fc.uniqueArray(
    fc.record({
      pointId: fc.stringMatching(/^[a-z0-9]{1,8}$/),
      createdMs: fc.integer({ min: 0, max: 4e12 }),
      scheduleId: fc.constantFrom(null, 'a', 'b'),
    }),
    { selector: (p) => p.pointId, maxLength: 40 },
  );
  const policyArb = fc.record({
    keepLast: fc.nat(5),
    daily: fc.nat(5),
    weekly: fc.nat(3),
    monthly: fc.nat(3),
    yearly: fc.nat(2),
  });
  fc.assert(
    fc.property(pointsArb, policyArb, policyArb, (points, p1, p2) => {
      const plan = planRetention(points, p1);
      assert.equal(plan.length, points.length);
      const newest = [...points].sort(
        (a, b) => b.createdMs - a.createdMs || (a.pointId < b.pointId ? 1 : -1),
      )[0];
      if (newest !== undefined) assert.ok(plan.find((d) => d.pointId === newest.pointId)?.keep);
      const wider = {
        keepLast: Math.max(p1.keepLast, p2.keepLast),
        daily: Math.max(p1.daily, p2.daily),
        weekly: Math.max(p1.weekly, p2.weekly),
        monthly: Math.max(p1.monthly, p2.monthly),
        yearly: Math.max(p1.yearly, p2.yearly),
      };
      const widerPlan = new Map(planRetention(points, wider).map((d) => [d.pointId, d.keep]));
      for (const decision of plan) if (decision.keep) assert.ok(widerPlan.get(decision.pointId));
    }),
  );
});
