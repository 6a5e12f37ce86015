import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/core/index.ts';
import { JobError } from '../../src/jobs/index.ts';
import {
  RunQueue,
  Scheduler,
  nextRunMs,
  type ScheduleEntry,
} from '../../src/server/scheduler/index.ts';

const HOUR = 3_600_000;
const at = (iso: string) => Date.parse(iso);

test('cron times follow the schedule time zone, across a DST change', () => {
  // 02:30 in Paris is 01:30 UTC in winter (CET) and 00:30 UTC in summer (CEST).
  assert.equal(
    nextRunMs('30 2 * * *', 'Europe/Paris', at('2026-11-26T00:00:00Z')),
    at('2026-11-26T01:30:00Z'),
  );
  assert.equal(
    nextRunMs('30 2 * * *', 'Europe/Paris', at('2026-07-01T00:00:00Z')),
    at('2026-07-01T00:30:00Z'),
  );
  assert.equal(
    nextRunMs('0 9 * * 1', 'America/New_York', at('2026-11-26T00:00:00Z')),
    at('2026-11-30T14:00:00Z'),
  );
  assert.throws(
    () => nextRunMs('not a cron', 'UTC', 0),
    (e: unknown) => e instanceof JobError && e.code === 'JOB_INVALID',
  );
});

test('due schedules fire once per occurrence; a run still going makes the next one skipped', () => {
  const clock = new ManualClock(at('2026-11-26T00:59:00Z'));
  const schedules: ScheduleEntry[] = [
    { jobId: 'a', scheduleId: 'hourly', cron: '0 * * * *', timezone: 'UTC', enabled: true },
    { jobId: 'b', scheduleId: 'off', cron: '* * * * *', timezone: 'UTC', enabled: false },
  ];
  const running = new Set<string>();
  const started: string[] = [];
  const skipped: string[] = [];
  const scheduler = new Scheduler(clock, {
    listSchedules: () => schedules,
    isJobRunning: (jobId) => running.has(jobId),
    startRun: (entry, dueMs) => {
      started.push(`${entry.jobId}@${new Date(dueMs).toISOString()}`);
      running.add(entry.jobId);
    },
    onSkipped: (entry, dueMs, reason) =>
      skipped.push(`${entry.jobId}@${new Date(dueMs).toISOString()}: ${reason}`),
  });
  assert.equal(scheduler.tick(), 0);
  assert.deepEqual(scheduler.upcoming(), [
    { jobId: 'a', scheduleId: 'hourly', nextMs: at('2026-11-26T01:00:00Z') },
    { jobId: 'b', scheduleId: 'off', nextMs: undefined },
  ]);
  clock.advance(60_000);
  assert.equal(scheduler.tick(), 1);
  assert.equal(scheduler.tick(), 0, 'not twice for the same occurrence');
  clock.advance(HOUR);
  assert.equal(scheduler.tick(), 0);
  assert.deepEqual(started, ['a@2026-11-26T01:00:00.000Z']);
  assert.match(
    skipped[0] ?? '',
    /^a@2026-11-26T02:00:00.000Z: the previous run of this job is still running/,
  );
  running.clear();
  clock.advance(HOUR);
  assert.equal(scheduler.tick(), 1);
  assert.equal(started.length, 2);
});

test('an edited schedule takes effect without a restart', () => {
  const clock = new ManualClock(at('2026-11-26T00:00:00Z'));
  const entry = { jobId: 'a', scheduleId: 's', cron: '0 5 * * *', timezone: 'UTC', enabled: true };
  const schedules = [entry];
  const scheduler = new Scheduler(clock, {
    listSchedules: () => schedules,
    isJobRunning: () => false,
    startRun: () => undefined,
    onSkipped: () => undefined,
  });
  assert.equal(scheduler.upcoming()[0]?.nextMs, at('2026-11-26T05:00:00Z'));
  schedules[0] = { ...entry, cron: '0 3 * * *' };
  assert.equal(scheduler.upcoming()[0]?.nextMs, at('2026-11-26T03:00:00Z'));
});

test('the run queue honours the global limit and per-resource limits', async () => {
  const queue = new RunQueue({
    globalLimit: 2,
    resourceLimit: (r) => (r.startsWith('remote:') ? 1 : 10),
  });
  const active = new Set<string>();
  const log: string[] = [];
  let peak = 0;
  const release = new Map<string, () => void>();
  const enqueue = (id: string, resources: string[]) =>
    queue.enqueue({
      id,
      resources,
      start: async () => {
        active.add(id);
        peak = Math.max(peak, active.size);
        log.push(`start ${id}`);
        await new Promise<void>((resolve) => release.set(id, resolve));
        active.delete(id);
      },
    });
  enqueue('r1', ['remote:nas']);
  enqueue('r2', ['remote:nas']);
  enqueue('r3', ['remote:s3']);
  enqueue('r4', ['remote:s3']);
  assert.deepEqual(queue.activeIds, ['r1', 'r3']);
  assert.deepEqual(queue.waitingIds, ['r2', 'r4']);
  release.get('r3')?.();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(queue.activeIds, ['r1', 'r4'], 'r2 still waits for the nas remote');
  release.get('r1')?.();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(queue.activeIds.sort(), ['r2', 'r4']);
  release.get('r2')?.();
  release.get('r4')?.();
  await queue.idle();
  assert.equal(peak, 2);
  assert.deepEqual(log, ['start r1', 'start r3', 'start r4', 'start r2']);
});
