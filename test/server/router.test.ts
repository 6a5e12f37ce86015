import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import { z } from 'zod';
import { EventHub, Router } from '../../src/server/index.ts';
import { JobError } from '../../src/jobs/index.ts';

async function withServer(
  router: Router,
  hub: EventHub,
  fn: (base: string) => Promise<void>,
): Promise<void> {
  const server = createServer((req, res) => {
    void router.handle(req, res).then((handled) => {
      if (handled) return;
      if (req.url === '/events') hub.subscribe(res);
      else {
        res.statusCode = 404;
        res.end();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  try {
    await fn(`http://127.0.0.1:${port}`);
  } finally {
    hub.close();
    server.closeAllConnections();
    server.close();
  }
}

test('routes: auth required unless public, bodies validated, typed errors mapped to statuses', async () => {
  const auth = (req: IncomingMessage) =>
    Promise.resolve(req.headers.authorization === 'Bearer t' ? 'admin' : undefined);
  const router = new Router(auth)
    .route('GET', '/api/health', () => Promise.resolve({ json: { ok: true } }), { public: true })
    .route('GET', '/api/jobs/:id', (ctx) => {
      if (ctx.params['id'] !== 'j1')
        throw new JobError('JOB_NOT_FOUND', `no job ${ctx.params['id'] ?? ''}`);
      return Promise.resolve({ json: { id: 'j1', user: ctx.user } });
    })
    .route(
      'POST',
      '/api/jobs',
      (ctx) => Promise.resolve({ status: 201, json: { created: ctx.body.name } }),
      {
        schema: z
          .object({ name: z.string().min(1), fullInterval: z.number().int().min(0).optional() })
          .strict(),
      },
    );
  await withServer(router, new EventHub(), async (base) => {
    const auth = { authorization: 'Bearer t' };
    assert.equal((await fetch(`${base}/api/health`)).status, 200);
    const anonymous = await fetch(`${base}/api/jobs/j1`);
    assert.equal(anonymous.status, 401);
    assert.deepEqual(await anonymous.json(), {
      error: { code: 'UNAUTHORIZED', message: 'log in first' },
    });
    assert.deepEqual(await (await fetch(`${base}/api/jobs/j1`, { headers: auth })).json(), {
      id: 'j1',
      user: 'admin',
    });
    const missing = await fetch(`${base}/api/jobs/nope`, { headers: auth });
    assert.equal(missing.status, 404);
    assert.equal(
      ((await missing.json()) as { error: { code: string } }).error.code,
      'JOB_NOT_FOUND',
    );
    const bad = await fetch(`${base}/api/jobs`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ name: 'x', fullInterval: -2 }),
    });
    assert.equal(bad.status, 400);
    assert.match(
      ((await bad.json()) as { error: { message: string } }).error.message,
      /^fullInterval:/,
    );
    const notJson = await fetch(`${base}/api/jobs`, { method: 'POST', headers: auth, body: '{' });
    assert.equal(notJson.status, 400);
    const created = await fetch(`${base}/api/jobs`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ name: 'x' }),
    });
    assert.equal(created.status, 201);
    assert.equal(
      (await fetch(`${base}/api/jobs/j1`, { method: 'DELETE', headers: auth })).status,
      405,
    );
  });
});

test('server-sent events reach subscribers with their filter', async () => {
  const hub = new EventHub();
  await withServer(new Router(() => Promise.resolve(undefined)), hub, async (base) => {
    const response = await fetch(`${base}/events`);
    assert.equal(response.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    const reader = response.body?.getReader();
    assert.ok(reader);
    while (hub.subscriberCount === 0) await new Promise((r) => setTimeout(r, 5));
    hub.publish({ type: 'progress', data: { runId: 'r1', bytes: 42 } });
    let text = '';
    while (!text.includes('\n\ndata') && !text.includes('bytes')) {
      const chunk = (await reader.read()) as { value?: Uint8Array };
      text += new TextDecoder().decode(chunk.value);
    }
    assert.match(text, /event: progress\ndata: \{"runId":"r1","bytes":42\}/);
    await reader.cancel();
  });
});
