// The QMP client against a real qemu-storage-daemon (greeting, errors, events, reconnect) and
// against hand-made peers for what QEMU never does (garbage, silence); parsers fuzzed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import fc from 'fast-check';
import {
  QmpClient,
  QmpError,
  QmpSession,
  parseBlockExports,
  parseBlockNodes,
  parseJobs,
} from '../../src/hypervisor/index.ts';
import {
  canConnect,
  createImage,
  makeTempDir,
  requireTool,
  startDaemon,
  startQsd,
  type Daemon,
} from '../harness/index.ts';

function code(expected: string) {
  return (error: unknown): boolean => error instanceof QmpError && error.code === expected;
}

test('greeting, capabilities, command ids, typed command errors, events before replies', async () => {
  const tmp = await makeTempDir('vmd-qmp-');
  const image = join(tmp.path, 'd.qcow2');
  await createImage(image, 'qcow2', 1024 * 1024);
  const qsd = await startQsd({
    dir: tmp.path,
    args: [
      '--blockdev',
      `driver=file,node-name=f0,filename=${image}`,
      '--blockdev',
      'driver=qcow2,node-name=d0,file=f0',
      '--nbd-server',
      `addr.type=unix,addr.path=${join(tmp.path, 'n.sock')}`,
    ],
  });
  const client = await QmpClient.connect({ socketPath: qsd.qmpSocketPath });
  try {
    assert.ok(client.greeting.version.major >= 7);
    assert.ok(Array.isArray(client.greeting.capabilities));
    const version = (await client.execute('query-version')) as { qemu: { major: number } };
    assert.equal(version.qemu.major, client.greeting.version.major);
    // Several commands in flight at once are matched to their replies by id.
    const [nodes, jobs, exports] = await Promise.all([
      client.execute('query-named-block-nodes', { flat: true }),
      client.execute('query-jobs'),
      client.execute('query-block-exports'),
    ]);
    assert.ok(parseBlockNodes(nodes).some((n) => n.nodeName === 'd0'));
    assert.deepEqual(parseJobs(jobs), []);
    assert.deepEqual(parseBlockExports(exports), []);
    await assert.rejects(
      client.execute('no-such-command'),
      (error: unknown) =>
        error instanceof QmpError &&
        error.code === 'QMP_COMMAND_FAILED' &&
        error.details['class'] === 'CommandNotFound' &&
        !error.retryable,
    );
    await client.execute('block-export-add', {
      type: 'nbd',
      id: 'e1',
      'node-name': 'd0',
      name: 'e1',
      writable: false,
    });
    const cursor = client.eventCursor();
    await client.execute('block-export-del', { id: 'e1' });
    // The event may come before the reply: the cursor taken before the command still sees it.
    const event = await client.waitForEvent(
      (e) => e.event === 'BLOCK_EXPORT_DELETED' && e.data['id'] === 'e1',
      { afterSeq: cursor, timeoutMs: 5000 },
    );
    assert.ok(event.seq > cursor);
    await assert.rejects(
      client.waitForEvent((e) => e.event === 'NEVER', { timeoutMs: 50 }),
      code('QMP_TIMEOUT'),
    );
  } finally {
    await client.close();
    await qsd.stop();
    await tmp.remove();
  }
});

async function qsdAt(dir: string, socketPath: string): Promise<Daemon> {
  const pidFile = join(dir, `qsd-${Date.now()}.pid`);
  return startDaemon({
    command: requireTool('qemu-storage-daemon'),
    args: [
      '--chardev',
      `socket,path=${socketPath},server=on,wait=off,id=m0`,
      '--monitor',
      'chardev=m0',
      '--pidfile',
      pidFile,
      '--daemonize',
    ],
    pidFile,
    ready: () => canConnect({ path: socketPath }),
    what: 'qemu-storage-daemon',
  });
}

test('a session reconnects after QEMU restarts; commands in flight fail as retryable', async () => {
  const tmp = await makeTempDir('vmd-qmp-');
  const socketPath = join(tmp.path, 'm.sock');
  let qsd = await qsdAt(tmp.path, socketPath);
  const session = new QmpSession({ socketPath }, { retryDelayMs: 50, connectAttempts: 5 });
  try {
    await session.execute('query-version');
    assert.equal(session.connections, 1);
    const client = await session.client();
    const pending = client
      .execute('query-version', undefined, { timeoutMs: 5000 })
      .catch((e: unknown) => e);
    await client.execute('quit').catch(() => undefined);
    await qsd.stop();
    const outcome = await pending;
    // quit may be answered before the socket closes; if not, the failure is typed and retryable.
    if (outcome instanceof Error) {
      assert.ok(
        outcome instanceof QmpError && outcome.code === 'QMP_DISCONNECTED' && outcome.retryable,
      );
    }
    await assert.rejects(session.execute('query-version'), code('QMP_CONNECT_FAILED'));
    qsd = await qsdAt(tmp.path, socketPath);
    await session.execute('query-version');
    assert.equal(session.connections, 2);
  } finally {
    await session.close();
    await qsd.stop();
    await tmp.remove();
  }
});

async function fakePeer(path: string, onConnection: (socket: Socket) => void): Promise<Server> {
  const server = createServer(onConnection);
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return server;
}

test('typed errors for a missing socket, a non-QMP peer, a silent peer and a dropped connection', async () => {
  const tmp = await makeTempDir('vmd-qmp-');
  const servers: Server[] = [];
  try {
    await assert.rejects(
      QmpClient.connect({ socketPath: join(tmp.path, 'absent.sock') }),
      code('QMP_CONNECT_FAILED'),
    );
    const http = join(tmp.path, 'http.sock');
    servers.push(await fakePeer(http, (s) => s.end('HTTP/1.1 400 Bad Request\r\n\r\n')));
    await assert.rejects(QmpClient.connect({ socketPath: http }), code('QMP_PROTOCOL'));
    const mute = join(tmp.path, 'mute.sock');
    servers.push(await fakePeer(mute, () => undefined));
    await assert.rejects(
      QmpClient.connect({ socketPath: mute }, { connectTimeoutMs: 100 }),
      code('QMP_TIMEOUT'),
    );
    // Greets, accepts capabilities, then never answers; then garbage; then hangs up.
    const odd = join(tmp.path, 'odd.sock');
    const sockets: Socket[] = [];
    servers.push(
      await fakePeer(odd, (s) => {
        sockets.push(s);
        s.write(
          '{"QMP":{"version":{"qemu":{"major":9,"minor":1,"micro":0},"package":""},"capabilities":[]}}\r\n',
        );
        s.on('data', (chunk: Buffer) => {
          const text = chunk.toString();
          if (text.includes('qmp_capabilities')) {
            const id = /"id":\s*(\d+)/.exec(text)?.[1] ?? '0';
            s.write(`{"return": {}, "id": ${id}}\r\n`);
          }
        });
      }),
    );
    const client = await QmpClient.connect({ socketPath: odd }, { commandTimeoutMs: 100 });
    assert.equal(client.greeting.version.major, 9);
    await assert.rejects(client.execute('query-version'), code('QMP_TIMEOUT'));
    const waiting = client.execute('query-version', undefined, { timeoutMs: 5000 });
    sockets[0]?.write('this is not json\r\n');
    await assert.rejects(waiting, code('QMP_PROTOCOL'));
    assert.equal(client.closed, true);
    await assert.rejects(client.execute('query-version'), code('QMP_PROTOCOL'));
    await client.close();
    const again = await QmpClient.connect({ socketPath: odd });
    const cut = again.execute('query-version', undefined, { timeoutMs: 5000 });
    sockets[1]?.destroy();
    await assert.rejects(
      cut,
      (e: unknown) => e instanceof QmpError && e.code === 'QMP_DISCONNECTED' && e.retryable,
    );
    await again.close();
  } finally {
    for (const server of servers) server.close();
    await tmp.remove();
  }
});

test('query parsers: arbitrary JSON gives values or QMP_UNEXPECTED_REPLY, never another failure', () => {
  fc.assert(
    fc.property(fc.jsonValue(), (value) => {
      for (const parse of [parseBlockNodes, parseJobs, parseBlockExports]) {
        try {
          const result = parse(value);
          assert.ok(Array.isArray(result));
        } catch (error) {
          assert.ok(
            error instanceof QmpError && error.code === 'QMP_UNEXPECTED_REPLY',
            String(error),
          );
        }
      }
    }),
    { numRuns: 500 },
  );
  // Shapes close to real ones, with fields missing or mistyped.
  const node = { 'node-name': 'd0', drv: 'qcow2', file: '/x', image: { 'virtual-size': 1 } };
  fc.assert(
    fc.property(
      fc.subarray(Object.keys(node)),
      fc.constantFrom(null, 1, 'x', [], {}),
      (drop, junk) => {
        const broken: Record<string, unknown> = { ...node };
        for (const key of drop) broken[key] = junk;
        try {
          parseBlockNodes([broken]);
        } catch (error) {
          assert.ok(error instanceof QmpError && error.code === 'QMP_UNEXPECTED_REPLY');
        }
      },
    ),
  );
});
