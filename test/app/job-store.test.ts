import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { statSync } from 'node:fs';
import { JobStore } from '../../src/app/index.ts';
import type { RunLog } from '../../src/jobs/index.ts';
import { makeTempDir } from '../harness/index.ts';

const run = (runId: string, startedMs: number, status: RunLog['status']): RunLog => ({
  runId,
  jobId: 'j',
  jobName: 'J',
  trigger: 'manual',
  forceFull: false,
  startedMs,
  status,
  machines: [],
  warnings: [],
});

test('documents and runs survive reopening the store file, which only root can read', async () => {
  const tmp = await makeTempDir();
  try {
    const path = join(tmp.path, 'data', 'vmdelta.db');
    let store = JobStore.open(path);
    store.putDocument('job', 'j', { id: 'j', name: 'first' });
    store.putDocument('job', 'j', { id: 'j', name: 'second' });
    store.putDocument('remote', 'r', { id: 'r' });
    store.saveRun(run('run-1', 1000, 'success'));
    store.saveRun(run('run-2', 2000, 'running'));
    store.close();
    assert.equal(statSync(path).mode & 0o077, 0, 'no access for group or others');

    store = JobStore.open(path);
    assert.deepEqual(store.getDocument('job', 'j'), { id: 'j', name: 'second' });
    assert.equal(store.listDocuments('remote').length, 1);
    assert.deepEqual(
      store.listRuns().map((r) => r.runId),
      ['run-2', 'run-1'],
    );
    assert.deepEqual(store.markInterruptedRuns(5000), ['run-2']);
    const interrupted = store.getRun('run-2');
    assert.ok(interrupted);
    assert.equal(interrupted.status, 'interrupted');
    assert.equal(interrupted.endedMs, 5000);
    assert.match(interrupted.warnings[0] ?? '', /interrupted/);
    assert.deepEqual(store.markInterruptedRuns(6000), [], 'only once');
    assert.equal(store.deleteDocument('job', 'j'), true);
    assert.equal(store.getDocument('job', 'j'), undefined);
    store.close();
  } finally {
    await tmp.remove();
  }
});
