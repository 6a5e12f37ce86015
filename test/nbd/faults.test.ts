// Faults from real servers: nbdkit's error filter gives typed, retryable NBD_EIO (and reads are
// retried until the fault clears); a server killed mid-read is survived by reconnecting when it
// comes back, and gives a clean typed error when it does not; a slow server hits the timeout.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { rm, writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  canConnect,
  createImage,
  fileExists,
  isAlive,
  makeTempDir,
  qemuIo,
  requireTool,
  run,
  sha256File,
  startNbdkit,
  stopPid,
  waitFor,
  type TempDir,
} from '../harness/index.ts';
import { NbdError, openNbdClient, openNbdPool } from '../../src/nbd/index.ts';

const MiB = 1024 * 1024;
let tmp: TempDir;
let image: string;

before(async () => {
  tmp = await makeTempDir('vmd-flt-');
  image = join(tmp.path, 'f.raw');
  await createImage(image, 'raw', 16 * MiB);
  await qemuIo(image, 'raw', ['write -P 0x71 0 6M', 'write -P 0x72 9M 7M']);
});

after(async () => {
  await tmp.remove();
});

function isCode(...codes: string[]) {
  return (error: unknown) => error instanceof NbdError && codes.includes(error.code);
}

test('nbdkit error filter: typed retryable NBD_EIO; reads retried until the fault clears', async () => {
  const inject = join(tmp.path, 'inject');
  const kit = await startNbdkit({
    dir: tmp.path,
    plugin: 'file',
    args: [image, 'error-rate=100%', `error-file=${inject}`],
    filters: ['error'],
    readOnly: true,
  });
  try {
    const once = await openNbdPool({ uri: kit.uri, retries: 0 });
    await writeFile(inject, '');
    await assert.rejects(
      once.read(0, MiB),
      (e: unknown) => isCode('NBD_EIO')(e) && (e as NbdError).retryable,
    );
    await assert.rejects(
      openNbdPool({ uri: kit.uri, retries: 2 }).then((p) => p.read(0, MiB)),
      isCode('NBD_EIO'),
    );
    // The connection survives a server errno: the next read works once the fault is gone.
    await rm(inject);
    assert.ok((await once.read(0, MiB)).equals(Buffer.alloc(MiB, 0x71)));
    // Fault present when the read starts, cleared while it is being retried.
    await writeFile(inject, '');
    const pool = await openNbdPool({ uri: kit.uri, retries: 6 });
    const reading = pool.read(9 * MiB, MiB);
    await sleep(40);
    await rm(inject);
    assert.ok((await reading).equals(Buffer.alloc(MiB, 0x72)));
    await Promise.all([once.close(), pool.close()]);
  } finally {
    await kit.stop();
  }
});

test('write errors (ENOSPC) are typed and not retried', async () => {
  const kit = await startNbdkit({
    dir: tmp.path,
    plugin: 'memory',
    args: ['size=4M', 'error-pwrite-rate=100%', 'error=ENOSPC'],
    filters: ['error'],
  });
  try {
    const client = await openNbdClient({ uri: kit.uri });
    await assert.rejects(
      client.write(0, Buffer.alloc(4096, 1)),
      (e: unknown) => isCode('NBD_ENOSPC')(e) && !(e as NbdError).retryable,
    );
    await client.disconnect();
  } finally {
    await kit.stop();
  }
});

/** nbdkit on a fixed unix socket (so it can come back at the same address), slowed by a delay. */
async function startSlowKit(socketPath: string, pidFile: string): Promise<number> {
  await run(requireTool('nbdkit'), [
    '-U',
    socketPath,
    '-P',
    pidFile,
    '-r',
    '--filter=delay',
    'file',
    image,
    'delay-read=30ms',
  ]);
  await waitFor(() => fileExists(pidFile), 'nbdkit pid file');
  const pid = Number((await readFile(pidFile, 'utf8')).trim());
  await waitFor(() => canConnect({ path: socketPath }), 'nbdkit socket');
  return pid;
}

test('server killed mid-read and restarted: reads retried on new connections, data intact', async () => {
  const socketPath = join(tmp.path, 'kill.sock');
  const pidFile = join(tmp.path, 'kill.pid');
  let pid = await startSlowKit(socketPath, pidFile);
  try {
    const reconnects: string[] = [];
    const pool = await openNbdPool({
      uri: `nbd+unix:///?socket=${socketPath}`,
      connections: 2,
      maxInFlightBytes: 2 * MiB, // two 1 MiB reads at a time: the read lasts ~250 ms
      retries: 8,
      onReconnect: (slot, error) => reconnects.push(`${slot}:${error.code}`),
    });
    assert.equal(pool.connections, 2);
    const reads = [];
    for (let offset = 0; offset < 16 * MiB; offset += MiB) reads.push(pool.read(offset, MiB));
    await sleep(60);
    process.kill(pid, 'SIGKILL');
    await waitFor(async () => !isAlive(pid), 'nbdkit to die');
    await rm(pidFile, { force: true });
    await rm(socketPath, { force: true });
    pid = await startSlowKit(socketPath, pidFile);
    const hash = createHash('sha256');
    for (const read of reads) hash.update(await read);
    assert.equal(hash.digest('hex'), await sha256File(image));
    assert.ok(pool.reconnects >= 1, 'at least one connection was replaced');
    assert.ok(
      reconnects.every((r) => r.endsWith('NBD_CONNECTION_LOST')),
      reconnects.join(),
    );
    await pool.close();
  } finally {
    await stopPid(pid);
  }
});

test('server killed for good: a clean typed error, no hang', async () => {
  const socketPath = join(tmp.path, 'dead.sock');
  const pidFile = join(tmp.path, 'dead.pid');
  const pid = await startSlowKit(socketPath, pidFile);
  try {
    const pool = await openNbdPool({
      uri: `nbd+unix:///?socket=${socketPath}`,
      connections: 2,
      retries: 2,
      maxInFlightBytes: 2 * MiB,
    });
    const reads = [];
    for (let offset = 0; offset < 8 * MiB; offset += MiB) reads.push(pool.read(offset, MiB));
    await sleep(40);
    process.kill(pid, 'SIGKILL');
    const results = await Promise.allSettled(reads);
    const failures = results.filter((r) => r.status === 'rejected');
    assert.ok(failures.length > 0);
    for (const failure of failures)
      assert.ok(
        isCode('NBD_CONNECT', 'NBD_CONNECTION_LOST')(failure.reason),
        String(failure.reason),
      );
    await pool.close();
  } finally {
    await stopPid(pid);
  }
});

test('a server slower than the request timeout: NBD_TIMEOUT', async () => {
  const kit = await startNbdkit({
    dir: tmp.path,
    plugin: 'file',
    args: [image, 'delay-read=3000ms'],
    filters: ['delay'],
    readOnly: true,
  });
  try {
    const client = await openNbdClient({ uri: kit.uri, requestTimeoutMs: 300 });
    await assert.rejects(
      client.read(0, 4096),
      (e: unknown) => isCode('NBD_TIMEOUT')(e) && (e as NbdError).retryable,
    );
  } finally {
    await kit.stop();
  }
});
