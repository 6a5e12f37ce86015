// The progress meter: counts always, reports at most once per interval while counting, and the
// start and end of a phase always reach the listener.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock, ProgressMeter, type WorkProgress } from '../../src/core/index.ts';

test('ProgressMeter throttles reports to one per interval, phase starts and ends always report', () => {
  const clock = new ManualClock(10_000);
  const reports: WorkProgress[] = [];
  const meter = new ProgressMeter((p) => reports.push(p), { clock, everyMs: 100 });
  assert.equal(meter.listening, true);
  meter.start('copy', { totalObjects: 1000, totalBytes: 1000 * 4096, item: 'disk0' });
  assert.deepEqual(reports, [
    {
      phase: 'copy',
      item: 'disk0',
      doneBytes: 0,
      totalBytes: 4_096_000,
      doneObjects: 0,
      totalObjects: 1000,
    },
  ]);
  for (let i = 0; i < 1000; i += 1) {
    meter.add(1, 4096);
    if (i % 10 === 9) clock.advance(5); // 1000 blocks over 500 ms
  }
  assert.equal(meter.doneObjects, 1000);
  assert.equal(meter.doneBytes, 4_096_000);
  // Counting reports at 100, 200, 300 and 400 ms (the clock reaches 500 ms after the last add).
  assert.equal(reports.length, 1 + 4);
  assert.deepEqual(
    reports.map((r) => r.doneObjects),
    [0, 201, 401, 601, 801],
  );
  meter.report();
  const last = reports.at(-1);
  assert.deepEqual([last?.doneObjects, last?.doneBytes], [1000, 4_096_000]);
  meter.start('verify');
  assert.deepEqual(reports.at(-1), {
    phase: 'verify',
    doneBytes: 0,
    totalBytes: 0,
    doneObjects: 0,
    totalObjects: 0,
  });
});

test('ProgressMeter without a listener still counts', () => {
  const meter = new ProgressMeter(undefined);
  assert.equal(meter.listening, false);
  meter.start('copy', { totalObjects: 2 });
  meter.add(1, 10);
  meter.add(1, 5);
  meter.report();
  assert.deepEqual([meter.doneObjects, meter.doneBytes, meter.totalObjects], [2, 15, 2]);
});
