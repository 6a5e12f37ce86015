import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { hashPassword, verifyPassword } from '../../src/server/auth/password-hash.ts';
import {
  redactUrl,
  sendWebhook,
  shouldNotify,
  summarizeRun,
} from '../../src/server/notify/webhook.ts';
import type { RunLog } from '../../src/jobs/index.ts';

test('scrypt password hashes verify the right password only, and differ per salt', async () => {
  const a = await hashPassword('correct horse');
  const b = await hashPassword('correct horse');
  assert.notEqual(a, b);
  assert.match(a, /^scrypt\$32768\$8\$1\$/);
  assert.equal(await verifyPassword('correct horse', a), true);
  assert.equal(await verifyPassword('correct hors', a), false);
  assert.equal(await verifyPassword('correct horse', 'scrypt$1$1$1$x$y'), false);
  assert.equal(await verifyPassword('correct horse', 'plain'), false);
});

test('webhook: sent on failure by default, payload summarises the run, URL secrets are not echoed', async () => {
  assert.equal(shouldNotify('failure', 'success'), false);
  assert.equal(shouldNotify('failure', 'partial'), true);
  assert.equal(shouldNotify('always', 'success'), true);
  assert.equal(shouldNotify('never', 'failure'), false);
  const received: unknown[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      received.push(JSON.parse(body));
      res.statusCode = req.url === '/hook?token=s3cret' ? 204 : 500;
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  try {
    const log: RunLog = {
      runId: 'r',
      jobId: 'j',
      jobName: 'J',
      trigger: 'manual',
      forceFull: false,
      startedMs: 0,
      endedMs: 1000,
      status: 'failure',
      error: { code: 'JOB_NO_REMOTE_LEFT', message: 'all remotes failed' },
      warnings: ['w'],
      machines: [],
    };
    const ok = await sendWebhook(`http://127.0.0.1:${port}/hook?token=s3cret`, summarizeRun(log));
    assert.deepEqual(ok, { ok: true, status: 204 });
    assert.deepEqual((received[0] as { error: unknown }).error, {
      code: 'JOB_NO_REMOTE_LEFT',
      message: 'all remotes failed',
    });
    const bad = await sendWebhook(`http://127.0.0.1:${port}/other?token=s3cret`, summarizeRun(log));
    assert.equal(bad.ok, false);
    assert.ok(!JSON.stringify(bad).includes('s3cret'));
    assert.equal(redactUrl('https://user:pw@hooks.example/x?t=1'), 'https://hooks.example/…');
  } finally {
    server.close();
  }
});
