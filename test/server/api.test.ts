// The REST API over HTTP against a real `vmdelta serve` process: real job store, real local-folder
// remotes and a qemu-storage-daemon machine read over NBD. Proves authentication (cookie and
// bearer token), body validation naming the field, secrets redacted, a run watched through
// server-sent events to its end, the run log (JSON and text with the NBD line), restore points
// per machine with key/delta, a bit-exact restore, verify, copy, usage, and the OpenAPI document.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DemoMachine } from '../../src/cli/demo/demo-machine.ts';
import { MiB } from '../../src/core/index.ts';
import { makeTempDir, requireTool } from '../harness/index.ts';
import {
  PASSWORD,
  USER,
  call,
  collectEvents,
  login,
  setPassword,
  startServe,
  type ApiAnswer,
  type SseEvent,
} from './serve-harness.ts';

interface RunAnswer {
  runId: string;
}
interface RunLogAnswer {
  log: {
    status: string;
    machines: {
      disks: { diskId: string; transport: { type: string }; remotes: { kind: string }[] }[];
    }[];
  };
}
interface PointsAnswer {
  remotes: Record<string, { pointId: string; disks: { diskId: string; kind: string }[] }[]>;
}

test('API: auth, validation, config, a run watched by SSE, logs, restore points, restore, verify, copy', async () => {
  requireTool('qemu-storage-daemon');
  requireTool('qemu-img');
  const tmp = await makeTempDir('vmd-api-');
  const machine = await DemoMachine.start(tmp.path, [8 * MiB, 4 * MiB]);
  let served: Awaited<ReturnType<typeof startServe>> | undefined;
  try {
    const dataDir = join(tmp.path, 'data');
    await setPassword(dataDir);
    served = await startServe(dataDir);
    const { url } = served;

    // Every API route and the page need a login.
    assert.equal((await call(url, '', 'GET', '/api/jobs')).status, 401);
    assert.equal((await call(url, '', 'GET', '/api/openapi.json')).status, 401);
    const page = await fetch(`${url}/`, { redirect: 'manual' });
    assert.equal(page.status, 302);
    assert.equal(page.headers.get('location'), '/login.html');
    assert.equal((await call(url, '', 'GET', '/app.js')).status, 401);
    assert.equal((await call(url, '', 'GET', '/login.html')).status, 200);
    const wrong = await call(url, '', 'POST', '/api/login', { user: USER, password: 'nope' });
    assert.equal(wrong.status, 401);
    const loginAnswer = await fetch(`${url}/api/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user: USER, password: PASSWORD }),
    });
    const setCookie = loginAnswer.headers.get('set-cookie') ?? '';
    assert.match(setCookie, /HttpOnly/);
    assert.match(setCookie, /SameSite=Strict/);
    const cookie = await login(url);
    assert.deepEqual((await call(url, cookie, 'GET', '/api/me')).json, { user: USER });
    const formPost = await fetch(`${url}/api/tokens`, {
      method: 'POST',
      headers: { cookie, 'content-type': 'text/plain' },
      body: JSON.stringify({ label: 'csrf' }),
    });
    assert.equal(formPost.status, 415, 'non-JSON bodies are refused');

    // Configuration; bodies validated with the field named; secrets never returned.
    const remotePath = join(tmp.path, 'remote-a');
    assert.equal(
      (
        await call(url, cookie, 'PUT', '/api/remotes/a', {
          id: 'a',
          store: { type: 'local', path: remotePath },
        })
      ).status,
      200,
    );
    const secret = 'very-secret-key-value';
    assert.equal(
      (
        await call(url, cookie, 'PUT', '/api/remotes/s3', {
          id: 's3',
          store: {
            type: 's3',
            endpoint: 'http://127.0.0.1:1',
            region: 'us-east-1',
            bucket: 'bucket',
            accessKeyId: 'AK',
            secretAccessKey: secret,
          },
        })
      ).status,
      200,
    );
    const remotes = await call(url, cookie, 'GET', '/api/remotes');
    assert.ok(!remotes.text.includes(secret), 'the S3 secret never leaves the server');
    assert.match(remotes.text, /\*{8}/);
    const badRemote = await call(url, cookie, 'PUT', '/api/remotes/x', {
      id: 'x',
      store: { type: 'local' },
    });
    assert.equal(badRemote.status, 400);
    assert.match(badRemote.text, /store\.path/);
    assert.equal((await call(url, cookie, 'DELETE', '/api/remotes/s3')).status, 200);

    const source = {
      type: 'qemu',
      id: 'lab',
      machines: [
        {
          id: machine.id,
          label: 'API test machine',
          qmpSocket: machine.qmpSocket,
          nbdServer: { transport: 'unix', socketPath: machine.nbdSocket },
        },
      ],
    };
    assert.equal((await call(url, cookie, 'PUT', '/api/sources/lab', source)).status, 200);
    const machines = await call(url, cookie, 'GET', '/api/sources/lab/machines');
    assert.equal(machines.status, 200);
    const listed = machines.json as { id: string; disks: unknown[] }[];
    assert.equal(listed[0]?.id, machine.id);
    assert.equal(listed[0].disks.length, 2);

    const job = {
      name: 'API nightly',
      source: 'lab',
      machines: { ids: [machine.id] },
      remotes: ['a'],
      schedules: [{ id: 'nightly', cron: '0 2 * * *', exportRetention: 5 }],
      settings: { fullInterval: 10, nbdConcurrency: 2 },
    };
    const badJob = await call(url, cookie, 'PUT', '/api/jobs/j1', {
      ...job,
      settings: { fullInterval: -1 },
    });
    assert.equal(badJob.status, 400);
    assert.match(badJob.text, /settings\.fullInterval/);
    assert.equal((await call(url, cookie, 'PUT', '/api/jobs/j1', job)).status, 200);
    assert.equal((await call(url, cookie, 'POST', '/api/jobs/nope/run', {})).status, 404);
    assert.equal(
      (await call(url, cookie, 'POST', '/api/jobs/j1/run', { forceFull: 'yes' })).status,
      400,
    );

    // Run now, watched through server-sent events until it finishes.
    await machine.guestWrites('disk0', 20, 1);
    await machine.guestWrites('disk1', 10, 2);
    let runId = '';
    const events = await collectEvents(
      url,
      cookie,
      (e) => e.type === 'run-finished' && e.data['runId'] === runId,
      {
        onOpen: async () => {
          const started = await call(url, cookie, 'POST', '/api/jobs/j1/run', {});
          assert.equal(started.status, 202);
          runId = (started.json as RunAnswer).runId;
          const again = await call(url, cookie, 'POST', '/api/jobs/j1/run', {});
          assert.equal(again.status, 409, 'no second run of a job while one is queued/running');
        },
      },
    );
    const ofRun = (type: string): SseEvent[] =>
      events.filter((e) => e.type === type && e.data['runId'] === runId);
    assert.equal(ofRun('run-queued').length, 1);
    assert.equal(ofRun('run-started').length, 1);
    assert.ok(ofRun('machine-phase').some((e) => e.data['phase'] === 'transfer'));
    const progress = ofRun('disk-progress');
    for (const diskId of ['disk0', 'disk1']) {
      const last = progress.filter((e) => e.data['diskId'] === diskId).at(-1);
      assert.ok(last !== undefined, `progress of ${diskId}`);
      assert.equal(last.data['blocksRead'], last.data['blocksTotal']);
      assert.ok((last.data['bytesRead'] as number) > 0);
    }
    assert.equal(ofRun('run-finished')[0]?.data['status'], 'success');

    const runLog = (await call(url, cookie, 'GET', `/api/runs/${runId}`)).json as RunLogAnswer;
    assert.equal(runLog.log.status, 'success');
    for (const disk of runLog.log.machines[0]?.disks ?? []) {
      assert.equal(disk.transport.type, 'nbd');
      assert.equal(disk.remotes[0]?.kind, 'key');
    }
    const text = await call(url, cookie, 'GET', `/api/runs/${runId}/log.txt`);
    assert.match(text.text, /Transfer data using NBD \(2 connections\)/);
    assert.equal((await call(url, cookie, 'GET', '/api/runs/nope')).status, 404);

    // A second run is a delta; restore points per machine show key then delta.
    await machine.guestWrites('disk0', 5, 3);
    const second = await call(url, cookie, 'POST', '/api/jobs/j1/run', {});
    const secondId = (second.json as RunAnswer).runId;
    for (let i = 0; i < 400; i += 1) {
      const r = (await call(url, cookie, 'GET', `/api/runs/${secondId}`)).json as RunLogAnswer & {
        live: unknown;
      };
      if (r.live === null && r.log.status !== 'running') break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const jobs = (await call(url, cookie, 'GET', '/api/jobs')).json as {
      id: string;
      lastRun: { runId: string; status: string } | null;
      nextRun: { scheduleId: string; nextMs: number } | null;
    }[];
    assert.equal(jobs[0]?.lastRun?.runId, secondId);
    assert.equal(jobs[0].lastRun.status, 'success');
    assert.equal(jobs[0].nextRun?.scheduleId, 'nightly');
    assert.ok(jobs[0].nextRun.nextMs > Date.now());

    const points = (await call(url, cookie, 'GET', `/api/machines/${machine.id}/restore-points`))
      .json as PointsAnswer;
    const onA = points.remotes['a'] ?? [];
    assert.equal(onA.length, 2);
    assert.deepEqual(
      onA.map((p) => p.disks.find((d) => d.diskId === 'disk0')?.kind),
      ['key', 'delta'],
    );

    // Restore the newest point to files, bit-exact.
    const restoreDir = join(tmp.path, 'restored');
    const restored = await call(url, cookie, 'POST', '/api/restore', {
      remoteId: 'a',
      vmId: machine.id,
      pointId: onA[1]?.pointId,
      diskIds: ['disk0'],
      dir: restoreDir,
      format: 'raw',
    });
    assert.equal(restored.status, 200, restored.text);
    const file = (restored.json as { files: { path: string }[] }).files[0]?.path ?? '';
    const sha = createHash('sha256')
      .update(await readFile(file))
      .digest('hex');
    assert.equal(sha, machine.checksum('disk0'));
    const badRestore = await call(url, cookie, 'POST', '/api/restore', {
      remoteId: 'a',
      vmId: machine.id,
      pointId: 'x',
      dir: 'relative/dir',
    });
    assert.equal(badRestore.status, 400);
    assert.match(badRestore.text, /dir/);

    // Verify, copy to a second remote, usage, connection test.
    // Live progress of a verify: work-progress events tagged with its progressId; the filter
    // keeps another request's events out.
    let verify: ApiAnswer = { status: 0, json: undefined, text: '' };
    const verifyProgress = await collectEvents(
      url,
      cookie,
      (e) =>
        e.type === 'work-progress' &&
        e.data['phase'] === 'verify' &&
        e.data['doneObjects'] === e.data['totalObjects'],
      {
        query: '?progressId=verify-1',
        onOpen: async () => {
          const other = { remoteId: 'a', dataSample: 0, progressId: 'verify-0' };
          assert.equal((await call(url, cookie, 'POST', '/api/verify', other)).status, 200);
          verify = await call(url, cookie, 'POST', '/api/verify', {
            remoteId: 'a',
            dataSample: 1,
            progressId: 'verify-1',
          });
        },
      },
    );
    assert.equal(verify.status, 200, verify.text);
    const verified = verify.json as {
      findings: unknown[];
      checkedPoints: number;
      checkedBlocks: number;
    };
    assert.deepEqual(verified.findings, []);
    assert.equal(verified.checkedPoints, 2);
    assert.ok(
      verifyProgress.every((e) => e.data['progressId'] === 'verify-1'),
      'filtered by progressId',
    );
    assert.ok(verifyProgress.every((e) => e.data['operation'] === 'verify'));
    assert.deepEqual([...new Set(verifyProgress.map((e) => e.data['phase']))], ['scan', 'verify']);
    assert.equal(verifyProgress.at(-1)?.data['doneObjects'], verified.checkedBlocks);
    const badId = await call(url, cookie, 'POST', '/api/verify', {
      remoteId: 'a',
      progressId: 'no spaces',
    });
    assert.equal(badId.status, 400);
    assert.match(badId.text, /progressId/);
    await call(url, cookie, 'PUT', '/api/remotes/b', {
      id: 'b',
      store: { type: 'local', path: join(tmp.path, 'remote-b') },
    });
    const copied = await call(url, cookie, 'POST', '/api/copy', { from: 'a', to: 'b' });
    assert.equal((copied.json as { copiedPoints: number }).copiedPoints, 2);
    const usage = (await call(url, cookie, 'GET', '/api/remotes/b/usage')).json as {
      restorePoints: number;
      bytes: number;
    };
    assert.equal(usage.restorePoints, 2);
    assert.ok(usage.bytes > 0);
    const tested = (await call(url, cookie, 'POST', '/api/remotes/a/test')).json as { ok: boolean };
    assert.equal(tested.ok, true);
    assert.equal((await call(url, cookie, 'DELETE', '/api/remotes/a')).status, 409);

    // API tokens (bearer); the OpenAPI document lists every route.
    const token = (
      (await call(url, cookie, 'POST', '/api/tokens', { label: 'ci' })).json as { token: string }
    ).token;
    const withToken = await fetch(`${url}/api/jobs`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(withToken.status, 200);
    const badToken = await fetch(`${url}/api/jobs`, {
      headers: { authorization: 'Bearer vmd_wrong' },
    });
    assert.equal(badToken.status, 401);
    const openApi = (await call(url, cookie, 'GET', '/api/openapi.json')).json as {
      openapi: string;
      paths: Record<string, Record<string, { requestBody?: unknown }>>;
    };
    assert.equal(openApi.openapi, '3.1.0');
    for (const path of [
      '/api/jobs/{id}/run',
      '/api/runs/{runId}/log.txt',
      '/api/events',
      '/api/machines/{vmId}/restore-points',
      '/api/restore',
      '/api/copy',
      '/api/verify',
      '/api/remotes/{id}/test',
    ])
      assert.ok(openApi.paths[path] !== undefined, `${path} documented`);
    assert.ok(openApi.paths['/api/jobs/{id}']?.['put']?.requestBody !== undefined);

    // Logout ends the session.
    await call(url, cookie, 'POST', '/api/logout');
    assert.equal((await call(url, cookie, 'GET', '/api/jobs')).status, 401);
  } finally {
    await served?.stop();
    await machine.stop();
    await tmp.remove();
  }
});
