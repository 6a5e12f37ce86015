/**
 * NBD read throughput: vmdelta's pool vs `nbdcopy SRC null:` on the same export in the same run.
 * A fully allocated raw export (default 4 GiB; BENCH_SIZE_GIB to change) served by qemu-nbd on a
 * unix socket (warm page cache), read with 1 and 4 connections and 2 MiB requests (into reused
 * buffers as the product does, into a new buffer each, and as the NbdDisk block stream); the same
 * over TLS (TCP 127.0.0.1); then `vmdelta nbd checksum`'s path (read + sha256). Peak RSS is sampled
 * while reading (bounded by the in-flight limit, not the disk size).
 *
 *   node --import tsx bench/nbd-read.ts
 */
import { open } from 'node:fs/promises';
import { randomFillSync } from 'node:crypto';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import {
  makePki,
  makeTempDir,
  requireTool,
  startQemuNbd,
  type NbdServer,
} from '../test/harness/index.ts';
import { openNbdPool, type NbdPool } from '../src/nbd/index.ts';
import { openNbdDisk } from '../src/disk/index.ts';
import { sha256OfNbdExport } from '../src/cli/nbd/checksum.ts';

const execFileAsync = promisify(execFile);
const MiB = 1024 * 1024;
const sizeBytes = Number(process.env['BENCH_SIZE_GIB'] ?? '4') * 1024 * MiB;
const requestBytes = 2 * MiB;
const maxInFlightBytes = 64 * MiB;
const runs = Number(process.env['BENCH_RUNS'] ?? '2');

function mibPerSecond(bytes: number, ms: number): number {
  return bytes / MiB / (ms / 1000);
}

async function sampleRss<T>(work: () => Promise<T>): Promise<{ value: T; peakRssMiB: number }> {
  let peak = process.memoryUsage.rss();
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 20);
  try {
    const value = await work();
    peak = Math.max(peak, process.memoryUsage.rss());
    return { value, peakRssMiB: peak / MiB };
  } finally {
    clearInterval(timer);
  }
}

/**
 * Reads the whole export in 2 MiB requests through a bounded window, discarding the data. With
 * `reuse`, reads go into a ring of buffers as in the product (NbdDisk takes block buffers from
 * BlockBuffers and the backup writer gives them back), like nbdcopy's own buffers; without, each
 * read gets a new buffer (page faults on fresh memory and garbage collection per read).
 */
async function readAll(pool: NbdPool, reuse: boolean): Promise<number> {
  const queue: Promise<Buffer>[] = [];
  let next = 0;
  let total = 0;
  const window = Math.floor(maxInFlightBytes / requestBytes);
  const ring = reuse
    ? Array.from({ length: window + 1 }, () => Buffer.allocUnsafeSlow(requestBytes))
    : [];
  let turn = 0;
  for (;;) {
    while (next < sizeBytes && queue.length < window) {
      const lengthBytes = Math.min(requestBytes, sizeBytes - next);
      const target = ring[turn++ % window]?.subarray(0, lengthBytes);
      queue.push(pool.read(next, lengthBytes, target));
      next += requestBytes;
    }
    const head = queue.shift();
    if (head === undefined) return total;
    total += (await head).length;
  }
}

/** The block stream a backup reads (openNbdDisk), each block released once seen. */
async function readDisk(uri: string, connections: number): Promise<number> {
  const disk = await openNbdDisk({
    uri,
    blockSizeBytes: requestBytes,
    mode: { kind: 'full' },
    connections,
    maxInFlightBytes,
  });
  let total = 0;
  try {
    for await (const block of disk.readBlocks()) {
      total += block.data.length;
      block.release?.();
    }
  } finally {
    await disk.close();
  }
  return total;
}

async function ours(
  uri: string,
  connections: number,
  readRequestBytes: number,
  how: 'reuse' | 'new' | 'disk',
) {
  const started = performance.now();
  if (how === 'disk') {
    const { value: bytes, peakRssMiB } = await sampleRss(() => readDisk(uri, connections));
    if (bytes !== sizeBytes) throw new Error(`read ${bytes} bytes, expected ${sizeBytes}`);
    return { rate: mibPerSecond(bytes, performance.now() - started), peakRssMiB };
  }
  const pool = await openNbdPool({ uri, connections, maxInFlightBytes, readRequestBytes });
  try {
    const { value: bytes, peakRssMiB } = await sampleRss(() => readAll(pool, how === 'reuse'));
    if (bytes !== sizeBytes) throw new Error(`read ${bytes} bytes, expected ${sizeBytes}`);
    return { rate: mibPerSecond(bytes, performance.now() - started), peakRssMiB };
  } finally {
    await pool.close();
  }
}

async function nbdcopy(
  uri: string,
  connections: number,
  requestSizeBytes?: number,
): Promise<number> {
  const started = performance.now();
  const sizeArg = requestSizeBytes === undefined ? [] : [`--request-size=${requestSizeBytes}`];
  await execFileAsync(requireTool('nbdcopy'), [
    `--connections=${connections}`,
    ...sizeArg,
    uri,
    'null:',
  ]);
  return mibPerSecond(sizeBytes, performance.now() - started);
}

async function best(times: number, measure: () => Promise<number>): Promise<number> {
  let top = 0;
  for (let i = 0; i < times; i += 1) top = Math.max(top, await measure());
  return top;
}

async function makeImage(path: string): Promise<void> {
  const file = await open(path, 'w');
  const chunk = Buffer.allocUnsafe(64 * MiB);
  randomFillSync(chunk);
  for (let at = 0; at < sizeBytes; at += chunk.length) {
    chunk.writeUInt32BE(at / chunk.length, 0);
    await file.write(chunk, 0, Math.min(chunk.length, sizeBytes - at), at);
  }
  await file.close();
  await execFileAsync('sh', ['-c', `cat '${path}' > /dev/null`]);
}

const baselineRssMiB = process.memoryUsage.rss() / MiB;
const tmp = await makeTempDir('vmd-bench-');
const servers: NbdServer[] = [];
try {
  const image = join(tmp.path, 'bench.raw');
  console.log(`creating a ${sizeBytes / MiB / 1024} GiB fully allocated raw image...`);
  await makeImage(image);
  const pki = await makePki(join(tmp.path, 'pki'));
  const plain = await startQemuNbd({
    dir: tmp.path,
    image,
    format: 'raw',
    readOnly: true,
    shared: 8,
  });
  servers.push(plain);
  const tls = await startQemuNbd({
    dir: tmp.path,
    image,
    format: 'raw',
    readOnly: true,
    shared: 8,
    listen: { transport: 'tcp', tls: pki },
  });
  servers.push(tls);
  const tlsUri = `${tls.uri}?tls-certificates=${pki.clientDir}`;

  const rows: string[] = [];
  const row = (label: string, mine: number, reference: number, reference2M: number, rss: number) =>
    rows.push(
      `${label.padEnd(62)} vmdelta ${mine.toFixed(0).padStart(5)} MiB/s | nbdcopy ${reference.toFixed(0).padStart(5)} (ratio ${(mine / reference).toFixed(2)}) | nbdcopy 2M ${reference2M.toFixed(0).padStart(5)} (ratio ${(mine / reference2M).toFixed(2)}) | peak RSS ${rss.toFixed(0)} MiB`,
    );
  for (const [label, uri] of [
    ['unix socket', plain.uri],
    ['TLS (TCP 127.0.0.1)', tlsUri],
  ] as const) {
    for (const connections of [1, 4]) {
      const reference = await best(runs, () => nbdcopy(uri, connections));
      const reference2M = await best(runs, () => nbdcopy(uri, connections, requestBytes));
      for (const [wire, how] of [
        [256 * 1024, 'reuse'],
        [requestBytes, 'reuse'],
        [256 * 1024, 'disk'],
        [256 * 1024, 'new'],
      ] as const) {
        let mine = 0;
        let rss = 0;
        for (let i = 0; i < runs; i += 1) {
          const result = await ours(uri, connections, wire, how);
          mine = Math.max(mine, result.rate);
          rss = Math.max(rss, result.peakRssMiB);
        }
        const what = { reuse: 'reused buffers', disk: 'NbdDisk blocks', new: 'new buffer each' }[
          how
        ];
        row(
          `${label}, ${connections} conn, wire ${wire / 1024}K, ${what}`,
          mine,
          reference,
          reference2M,
          rss,
        );
        console.log(rows.at(-1));
      }
    }
  }
  // The checksum path (read + sha256 in order), hashing on this thread or on a worker.
  const reference = await best(runs, () => nbdcopy(plain.uri, 1));
  const reference2M = await best(runs, () => nbdcopy(plain.uri, 1, requestBytes));
  for (const hashOn of ['main', 'worker'] as const) {
    let rate = 0;
    let rss = 0;
    for (let i = 0; i < runs; i += 1) {
      const pool = await openNbdPool({ uri: plain.uri, connections: 1, maxInFlightBytes });
      const started = performance.now();
      const { peakRssMiB } = await sampleRss(() => sha256OfNbdExport(pool, { hashOn }));
      rate = Math.max(rate, mibPerSecond(sizeBytes, performance.now() - started));
      rss = Math.max(rss, peakRssMiB);
      await pool.close();
    }
    row(`checksum, sha256 on ${hashOn}, 1 conn`, rate, reference, reference2M, rss);
    console.log(rows.at(-1));
  }
  console.log(
    `\nexport ${sizeBytes / MiB} MiB, in-flight limit ${maxInFlightBytes / MiB} MiB, RSS before reading ${baselineRssMiB.toFixed(0)} MiB, best of ${runs} runs; every read is 2 MiB (one block), sent as 256 KiB or 2 MiB requests\n${rows.join('\n')}`,
  );
} finally {
  for (const server of servers) await server.stop();
  await tmp.remove();
}
