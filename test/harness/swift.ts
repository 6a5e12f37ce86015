/**
 * OpenStack Swift with the s3api middleware (Debian packages), the "real S3" test tier, per
 * /work/shared/reference/s3.md §2: memcached + account, container, object and proxy servers in a
 * temporary folder, on free 127.0.0.1 ports, one replica, rings built per run (through Swift's
 * own RingBuilder, in one Python process: much faster than three swift-ring-builder runs each).
 * Ready when /healthcheck answers OK and an S3 request authenticates; stopped by pid.
 * Credentials come from tempauth: access key `test:tester`, secret `testing`.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { userInfo } from 'node:os';
import { requireTool } from './tools.ts';
import { freePort, run, startChild, stopPid, waitFor, type Daemon } from './process.ts';
import { makeTempDir } from './tmp.ts';

export interface SwiftServer {
  /** S3 endpoint, e.g. http://127.0.0.1:PORT. */
  readonly endpoint: string;
  readonly region: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly pids: readonly number[];
  /** Log lines of every server, for failure messages. */
  logs(): string;
  stop(): Promise<void>;
}

const ringScript = `
import sys, os
from swift.common.ring import RingBuilder
out = sys.argv[1]
for spec in sys.argv[2:]:
    name, port = spec.split(':')
    builder = RingBuilder(8, 1, 1)
    builder.add_dev({'id': 0, 'region': 1, 'zone': 1, 'ip': '127.0.0.1', 'port': int(port), 'device': 'd1', 'weight': 1})
    builder.rebalance()
    builder.get_ring().save(os.path.join(out, name + '.ring.gz'))
`;

async function swiftPython(): Promise<string> {
  // The Python that has the swift package: the interpreter of swift's own scripts.
  const firstLine =
    (await readFile(requireTool('swift-ring-builder'), 'utf8')).split('\n')[0] ?? '';
  const match = /^#!\s*(\S+)/.exec(firstLine);
  return match?.[1] ?? '/usr/bin/python3';
}

function backendConfig(root: string, name: string, port: number): string {
  return [
    '[DEFAULT]',
    `devices = ${root}/srv`,
    'mount_check = false',
    'bind_ip = 127.0.0.1',
    `bind_port = ${port}`,
    'workers = 0',
    `user = ${userInfo().username}`,
    `swift_dir = ${root}/etc`,
    `log_name = ${name}`,
    '[pipeline:main]',
    `pipeline = ${name}-server`,
    `[app:${name}-server]`,
    `use = egg:swift#${name}`,
    // Update container listings synchronously even on a loaded CI machine (default 1 s, after
    // which the update is deferred and a listing right after a put could miss the object).
    ...(name === 'object' ? ['container_update_timeout = 30'] : []),
    '',
  ].join('\n');
}

function proxyConfig(root: string, port: number, memcachedPort: number): string {
  const simpleFilters = [
    'catch_errors',
    'gatekeeper',
    'healthcheck',
    'proxy-logging',
    'listing_formats',
    'copy',
    'slo',
    'dlo',
  ];
  return [
    '[DEFAULT]',
    'bind_ip = 127.0.0.1',
    `bind_port = ${port}`,
    'workers = 0',
    `user = ${userInfo().username}`,
    `swift_dir = ${root}/etc`,
    '[pipeline:main]',
    'pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy slo dlo proxy-logging proxy-server',
    '[app:proxy-server]',
    'use = egg:swift#proxy',
    'node_timeout = 60',
    'account_autocreate = true',
    'allow_account_management = true',
    '[filter:tempauth]',
    'use = egg:swift#tempauth',
    'user_test_tester = testing .admin',
    '[filter:s3api]',
    'use = egg:swift#s3api',
    'location = us-east-1',
    '[filter:cache]',
    'use = egg:swift#memcache',
    `memcache_servers = 127.0.0.1:${memcachedPort}`,
    ...simpleFilters.map((f) => `[filter:${f}]\nuse = egg:swift#${f.replace('-', '_')}`),
    '',
  ].join('\n');
}

async function httpOk(url: string): Promise<boolean> {
  const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
  const body = await response.text();
  return response.ok && body.trim() === 'OK';
}

/**
 * Starts Swift + s3api on free ports; call stop() in `after`/`finally`. A second attempt on new
 * ports covers the rare case of a free port taken by someone else before Swift binds it.
 */
export async function startSwift(): Promise<SwiftServer> {
  try {
    return await startSwiftOnce();
  } catch {
    return startSwiftOnce();
  }
}

async function startSwiftOnce(): Promise<SwiftServer> {
  const memcachedTool = requireTool('memcached');
  const tools = {
    account: requireTool('swift-account-server'),
    container: requireTool('swift-container-server'),
    object: requireTool('swift-object-server'),
    proxy: requireTool('swift-proxy-server'),
  };
  const tmp = await makeTempDir('vmdelta-swift-');
  const root = tmp.path;
  await Promise.all(['etc', 'srv/d1', 'run'].map((d) => mkdir(join(root, d), { recursive: true })));
  const ports = {
    account: await freePort(),
    container: await freePort(),
    object: await freePort(),
    proxy: await freePort(),
    memcached: await freePort(),
  };
  await writeFile(
    join(root, 'etc', 'swift.conf'),
    '[swift-hash]\nswift_hash_path_suffix = vmdelta-test-suffix\nswift_hash_path_prefix = vmdelta-test-prefix\n[swift-constraints]\n',
  );
  await run(await swiftPython(), [
    '-c',
    ringScript,
    join(root, 'etc'),
    `account:${ports.account}`,
    `container:${ports.container}`,
    `object:${ports.object}`,
  ]);
  for (const name of ['account', 'container', 'object'] as const) {
    await writeFile(
      join(root, 'etc', `${name}-server.conf`),
      backendConfig(root, name, ports[name]),
    );
  }
  await writeFile(
    join(root, 'etc', 'proxy-server.conf'),
    proxyConfig(root, ports.proxy, ports.memcached),
  );

  const daemons: (Daemon & { output?: () => string })[] = [];
  // If the test process exits without stop() (a crash, an uncaught error), kill what we started.
  const killOnExit = (): void => {
    for (const daemon of daemons) {
      try {
        process.kill(daemon.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  };
  process.once('exit', killOnExit);
  const stopAll = async (): Promise<void> => {
    process.removeListener('exit', killOnExit);
    await Promise.all(daemons.map((d) => d.stop()));
  };
  const logs = (): string =>
    daemons.map((d) => (d.output === undefined ? '' : d.output())).join('\n');
  const user = process.getuid?.() === 0 ? ['-u', 'root'] : [];
  try {
    const memcachedPid = join(root, 'run', 'memcached.pid');
    await run(memcachedTool, [
      ...user,
      '-l',
      '127.0.0.1',
      '-p',
      String(ports.memcached),
      '-U',
      '0',
      '-m',
      '64',
      '-d',
      '-P',
      memcachedPid,
    ]);
    await waitFor(async () => (await readFile(memcachedPid, 'utf8')).trim() !== '', 'memcached');
    const pid = Number((await readFile(memcachedPid, 'utf8')).trim());
    daemons.push({ pid, stop: () => stopPid(pid) });
    const started = await Promise.all(
      (['account', 'container', 'object', 'proxy'] as const).map((name) =>
        startChild({
          command: tools[name],
          args: [join(root, 'etc', `${name}-server.conf`)],
          what: `swift-${name}-server`,
          ready: async () => {
            if (name === 'proxy') return httpOk(`http://127.0.0.1:${ports.proxy}/healthcheck`);
            const response = await fetch(`http://127.0.0.1:${ports[name]}/healthcheck`, {
              signal: AbortSignal.timeout(2000),
            });
            await response.arrayBuffer();
            return true; // any HTTP answer: the server listens
          },
        }),
      ),
    );
    daemons.push(...started);
  } catch (error) {
    const text = logs();
    await stopAll();
    await tmp.remove();
    throw new Error(`Swift did not start: ${String(error)}\n${text.slice(-4000)}`, {
      cause: error,
    });
  }
  return {
    endpoint: `http://127.0.0.1:${ports.proxy}`,
    region: 'us-east-1',
    accessKeyId: 'test:tester',
    secretAccessKey: 'testing',
    pids: daemons.map((d) => d.pid),
    logs,
    stop: async () => {
      await stopAll();
      await tmp.remove();
    },
  };
}
