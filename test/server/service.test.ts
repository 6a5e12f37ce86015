// The service's moving parts together: a due schedule (fake clock) starts a real run through the
// run queue (per-remote limit: the second job waits), an occurrence due while its job is busy is
// recorded as a 'skipped' run; and `vmdelta serve` at start-up marks runs left 'running' as
// interrupted and reports them, serves HTTPS with a Secure session cookie, and stops on SIGTERM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { App, JobStore } from '../../src/app/index.ts';
import { DemoMachine } from '../../src/cli/demo/demo-machine.ts';
import { ManualClock, MiB, silentLogger } from '../../src/core/index.ts';
import { EventHub, JobRunner, createScheduler } from '../../src/server/index.ts';
import { isAlive, makePki, makeTempDir, requireTool, waitFor } from '../harness/index.ts';
import { PASSWORD, USER, setPassword, startServe } from './serve-harness.ts';

const at = (iso: string): number => Date.parse(iso);

test('a due schedule starts a run through the queue; a busy job’s occurrence is recorded as skipped', async () => {
  requireTool('qemu-storage-daemon');
  const tmp = await makeTempDir('vmd-sched-');
  const machine = await DemoMachine.start(tmp.path, [4 * MiB]);
  const app = App.open({ dataDir: join(tmp.path, 'data') });
  const hub = new EventHub();
  const received: { url: string; body: Record<string, unknown> }[] = [];
  const webhook = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      received.push({ url: req.url ?? '', body: JSON.parse(body) as Record<string, unknown> });
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve));
  try {
    await machine.guestWrites('disk0', 4, 7);
    app.saveRemote({ id: 'r', store: { type: 'local', path: join(tmp.path, 'remote') } });
    app.saveSource({
      type: 'qemu',
      id: 'lab',
      machines: [
        {
          id: machine.id,
          qmpSocket: machine.qmpSocket,
          nbdServer: { transport: 'unix', socketPath: machine.nbdSocket },
        },
      ],
    });
    const job = (
      id: string,
      schedules: { id: string; cron: string; timezone: string }[],
      settings: Record<string, unknown> = {},
    ) =>
      app.saveJob({
        id,
        name: id,
        source: 'lab',
        machines: { ids: [machine.id] },
        remotes: ['r'],
        schedules: schedules.map((s) => ({ ...s, exportRetention: 3 })),
        settings,
      });
    // Two schedules of job "a" due at the same minute: one runs, the other is skipped.
    job('a', [
      { id: 'paris', cron: '0 3 * * *', timezone: 'Europe/Paris' },
      { id: 'utc', cron: '0 2 * * *', timezone: 'UTC' },
    ]);
    // Job "b" uses the same remote: with one run per remote it waits in the queue.
    // Its webhook is called with the run summary ("always"); job a's only on failure.
    job('b', [{ id: 'nightly', cron: '0 2 * * *', timezone: 'UTC' }], {
      reportWhen: 'always',
      webhookUrl: `http://127.0.0.1:${String((webhook.address() as AddressInfo).port)}/hook?token=secret`,
    });

    const clock = new ManualClock(at('2026-11-26T01:59:30Z'));
    const runner = new JobRunner({ app, hub, logger: silentLogger, resourceConcurrency: 1 });
    const scheduler = createScheduler(app, runner, silentLogger, clock);
    assert.equal(scheduler.tick(), 0);
    assert.deepEqual(
      scheduler.upcoming().map((u) => [u.jobId, u.scheduleId, u.nextMs]),
      [
        ['a', 'paris', at('2026-11-26T02:00:00Z')],
        ['a', 'utc', at('2026-11-26T02:00:00Z')],
        ['b', 'nightly', at('2026-11-26T02:00:00Z')],
      ],
    );
    clock.advance(30_000);
    assert.equal(scheduler.tick(), 2, 'a (first schedule) and b start; a/utc is skipped');
    const live = runner.live();
    assert.deepEqual(
      live.map((r) => [r.jobId, r.scheduleId, r.state]),
      [
        ['a', 'paris', 'running'],
        ['b', 'nightly', 'queued'],
      ],
    );
    const skipped = app.store.listRuns({ jobId: 'a' }).filter((r) => r.status === 'skipped');
    assert.equal(skipped.length, 1);
    assert.equal(skipped[0]?.scheduleId, 'utc');
    assert.equal(skipped[0].startedMs, at('2026-11-26T02:00:00Z'));

    await runner.idle();
    for (const jobId of ['a', 'b']) {
      const run = app.store.listRuns({ jobId }).find((r) => r.status !== 'skipped');
      assert.equal(run?.status, 'success', `run of ${jobId}`);
      const log = app.store.getRun(run.runId);
      assert.equal(log?.trigger, 'schedule');
    }
    const logA = app.store.getRun(live[0]?.runId ?? '');
    const logB = app.store.getRun(live[1]?.runId ?? '');
    assert.ok(
      (logB?.startedMs ?? 0) >= (logA?.endedMs ?? Infinity),
      'b started only after a released the remote',
    );
    assert.equal(received.length, 1, 'one webhook call: job b (always); job a succeeded');
    assert.equal(received[0]?.url, '/hook?token=secret');
    assert.equal(received[0].body['event'], 'vmdelta.run.finished');
    assert.equal(received[0].body['jobId'], 'b');
    assert.equal(received[0].body['status'], 'success');
    assert.match(logB?.warnings.join(' ') ?? '', /webhook delivered \(HTTP 200\)/);
  } finally {
    webhook.close();
    hub.close();
    await app.close();
    await machine.stop();
    await tmp.remove();
  }
});

function httpsJson(
  url: string,
  ca: Buffer,
  options: { method?: string; body?: unknown; cookie?: string } = {},
): Promise<{
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        ca,
        method: options.method ?? 'GET',
        headers: {
          'content-type': 'application/json',
          ...(options.cookie === undefined ? {} : { cookie: options.cookie }),
        },
      },
      (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end(options.body === undefined ? undefined : JSON.stringify(options.body));
  });
}

test('serve: interrupted runs reported at start-up, HTTPS with a Secure cookie, SIGTERM stops it', async () => {
  const tmp = await makeTempDir('vmd-serve-');
  try {
    const dataDir = join(tmp.path, 'data');
    await setPassword(dataDir);
    const store = JobStore.open(join(dataDir, 'vmdelta.db'));
    store.saveRun({
      runId: 'left-running',
      jobId: 'j',
      jobName: 'j',
      trigger: 'schedule',
      forceFull: false,
      startedMs: Date.now() - 60_000,
      status: 'running',
      machines: [],
      warnings: [],
    });
    store.close();
    const pki = await makePki(join(tmp.path, 'pki'));
    const served = await startServe(dataDir, [
      '--tls-cert',
      join(pki.dir, 'server-cert.pem'),
      '--tls-key',
      join(pki.dir, 'server-key.pem'),
    ]);
    try {
      // The report is printed right after the server starts listening.
      await waitFor(
        () => Promise.resolve(/listening on/.test(served.output())),
        'the start-up report',
      );
      assert.match(served.output(), /run left-running was interrupted/);
      assert.match(served.url, /^https:/);
      const ca = await readFile(pki.caCertFile);
      const loginAnswer = await httpsJson(`${served.url}/api/login`, ca, {
        method: 'POST',
        body: { user: USER, password: PASSWORD },
      });
      assert.equal(loginAnswer.status, 200);
      const setCookie = String(loginAnswer.headers['set-cookie']);
      assert.match(setCookie, /; Secure/);
      const cookie = setCookie.split(';')[0] ?? '';
      const runs = await httpsJson(`${served.url}/api/runs/left-running`, ca, { cookie });
      const body = JSON.parse(runs.body) as { log: { status: string; warnings: string[] } };
      assert.equal(body.log.status, 'interrupted');
      assert.match(body.log.warnings.join(' '), /interrupted/);
    } finally {
      process.kill(served.pid, 'SIGTERM');
      for (let i = 0; i < 400 && isAlive(served.pid); i += 1)
        await new Promise((r) => setTimeout(r, 25));
      const stoppedInTime = !isAlive(served.pid);
      await served.stop();
      assert.ok(stoppedInTime, 'vmdelta serve exits within 10 s of SIGTERM');
      assert.match(served.output(), /stopped/);
    }
  } finally {
    await tmp.remove();
  }
});
