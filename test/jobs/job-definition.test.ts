import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JobError, parseJobDefinition, selectsMachine } from '../../src/jobs/index.ts';

const minimal = {
  id: 'nightly',
  name: 'Nightly',
  source: 'lab',
  machines: { ids: ['vm1'] },
  remotes: ['local'],
  schedules: [{ id: 'night', cron: '0 2 * * *', exportRetention: 7 }],
};

test('defaults are filled the way Xen Orchestra users expect, with a sane key interval', () => {
  const job = parseJobDefinition(minimal);
  assert.equal(job.settings.fullInterval, 20);
  assert.equal(job.settings.preferNbd, true);
  assert.equal(job.settings.reportWhen, 'failure');
  const [schedule] = job.schedules;
  assert.ok(schedule);
  assert.equal(schedule.timezone, 'UTC');
  assert.equal(schedule.forceFull, false);
});

test('invalid jobs give JOB_INVALID naming the field', () => {
  const bad = [
    [{ ...minimal, remotes: [] }, /remotes/],
    [{ ...minimal, settings: { fullInterval: -1 } }, /settings\.fullInterval/],
    [{ ...minimal, settings: { nbdConcurrency: 17 } }, /settings\.nbdConcurrency/],
    [{ ...minimal, machines: {} }, /machines/],
    [{ ...minimal, unknownField: 1 }, /unknownField|Unrecognized/],
    [{ ...minimal, schedules: [minimal.schedules[0], minimal.schedules[0]] }, /duplicate schedule/],
    [{ ...minimal, id: '../etc' }, /id/],
  ] as const;
  for (const [value, pattern] of bad) {
    assert.throws(
      () => parseJobDefinition(value),
      (e: unknown) => e instanceof JobError && e.code === 'JOB_INVALID' && pattern.test(e.message),
      JSON.stringify(value),
    );
  }
});

test('machine selectors: ids, name glob, tags, exclusion tags', () => {
  const vm = (id: string, name: string, tags: string[] = []) => ({ id, name, tags });
  const base = { ids: [], tags: [], excludeTags: ['vmdelta:no-bak'] };
  assert.equal(selectsMachine({ ...base, ids: ['a'] }, vm('a', 'x')), true);
  assert.equal(selectsMachine({ ...base, namePattern: 'web-*' }, vm('b', 'web-01')), true);
  assert.equal(selectsMachine({ ...base, namePattern: 'web-?' }, vm('b', 'web-01')), false);
  assert.equal(
    selectsMachine({ ...base, tags: ['prod', 'db'] }, vm('c', 'x', ['db', 'prod'])),
    true,
  );
  assert.equal(selectsMachine({ ...base, tags: ['prod', 'db'] }, vm('c', 'x', ['db'])), false);
  assert.equal(
    selectsMachine({ ...base, namePattern: '*', tags: ['prod'] }, vm('d', 'x', [])),
    false,
  );
  assert.equal(selectsMachine({ ...base, ids: ['e'] }, vm('e', 'x', ['vmdelta:no-bak'])), false);
});
