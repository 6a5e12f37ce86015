/**
 * Repository benchmarks against reference tools, on a local repository (fsync on):
 *  key:     4 GiB raw file -> key backup, vs `cp file copy && sync` (goal >= 0.6x)
 *  delta:   1 % of blocks changed (known changed set, as a change tracker gives) (goal <= 3 % of key)
 *  restore: newest point of a 10-point chain -> raw file, every block hash-checked, vs cp + sync
 *           of the equivalent raw file (goal >= 0.9x)
 * Run: node --import tsx bench/repository-backup.ts [workdir]   (needs ~20 GiB free)
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { GiB, MiB, formatBytes } from '../src/core/index.ts';
import { BlockSet, type Block, type DiskSource } from '../src/disk/index.ts';
import { openRawFileSource, writeRawFile } from '../src/disk/raw-file-disk.ts';
import { LocalObjectStore } from '../src/storage/index.ts';
import {
  DEFAULT_BLOCK_HASH,
  DEFAULT_ZSTD_LEVEL,
  openPointDisk,
  Repository,
  writeBackup,
} from '../src/repository/index.ts';
import { corpus } from './corpus.ts';

const BLOCK = 2 * MiB;
const SIZE = Number(process.env['BENCH_GIB'] ?? 4) * GiB;
const BLOCKS = SIZE / BLOCK;

function sh(command: string): number {
  const start = performance.now();
  execFileSync('sh', ['-c', command], { stdio: 'inherit' });
  return (performance.now() - start) / 1000;
}

/** The blocks `changed` of a raw file, as a delta source (what a change tracker gives). */
async function rawDelta(path: string, changed: readonly number[]): Promise<DiskSource> {
  const full = await openRawFileSource(path, { blockSizeBytes: BLOCK });
  await full.close();
  const blocks = BlockSet.of(BLOCKS, changed);
  return {
    sizeBytes: full.sizeBytes,
    blockSizeBytes: BLOCK,
    kind: 'delta',
    blocks,
    async *readBlocks(): AsyncIterable<Block> {
      const handle = await open(path, 'r');
      try {
        for (const index of blocks) {
          const data = Buffer.allocUnsafe(BLOCK);
          await handle.read(data, 0, BLOCK, index * BLOCK);
          yield { index, data };
        }
      } finally {
        await handle.close();
      }
    },
    close: () => Promise.resolve(),
  };
}

async function mutate(path: string, changed: readonly number[], round: number): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    for (const index of changed) {
      const stamp = Buffer.alloc(4096, round + 1);
      stamp.writeUInt32LE(index, 0);
      await handle.write(stamp, 0, stamp.length, index * BLOCK + 8192);
    }
  } finally {
    await handle.close();
  }
}

function pick(count: number, seed: number): number[] {
  const set = new Set<number>();
  let state = seed;
  while (set.size < count) {
    state = (state * 1664525 + 1013904223) >>> 0;
    set.add(state % BLOCKS);
  }
  return [...set].sort((a, b) => a - b);
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(process.argv[2] ?? '/var/tmp', 'vmdelta-bench-'));
  try {
    const image = join(work, 'disk.raw');
    const data = await corpus(256 * MiB);
    const handle = await open(image, 'w');
    for (let offset = 0; offset < SIZE; offset += data.length) {
      const chunk = Buffer.from(data);
      for (let at = 0; at < chunk.length; at += BLOCK) chunk.writeUInt32LE(offset + at, at); // every block unique
      await handle.write(chunk, 0, chunk.length, offset);
    }
    await handle.close();
    sh('sync');
    console.log(
      `image: ${formatBytes(SIZE)} of /usr/lib content (${formatBytes(data.length)} corpus, blocks made unique)`,
    );

    // `cp` + `sync` varies by ±30 % from run to run on this guest's disk (ours repeats within a
    // few %): the reference is the median of REFERENCE_RUNS runs (default 3), all printed.
    const referenceRuns = Number(process.env['REFERENCE_RUNS'] ?? 3);
    const cpSync = async (): Promise<{ seconds: number; all: string }> => {
      const times: number[] = [];
      for (let run = 0; run < referenceRuns; run += 1) {
        sh('sync');
        times.push(sh(`cp ${image} ${join(work, 'copy.raw')} && sync`));
        await rm(join(work, 'copy.raw'));
      }
      sh('sync');
      const sorted = [...times].sort((a, b) => a - b);
      return {
        seconds: sorted[Math.floor(sorted.length / 2)] ?? 0,
        all: times.map((t) => t.toFixed(2)).join(' '),
      };
    };
    const cpKey = await cpSync();
    const cpSeconds = cpKey.seconds;

    const store = new LocalObjectStore(join(work, 'repo'), {
      syncMethod: process.env['SYNC_METHOD'] === 'syncfs' ? 'syncfs' : 'fsync',
    });
    const blockWorkers = Number(process.env['BLOCK_WORKERS'] ?? 2);
    // COMPRESSION=none | zstd:<level> (default: the repository default); HASH=sha256 | blake3
    const compressionEnv = process.env['COMPRESSION'] ?? `zstd:${DEFAULT_ZSTD_LEVEL}`;
    const hash = process.env['HASH'] === 'sha256' ? 'sha256' : DEFAULT_BLOCK_HASH;
    const compression =
      compressionEnv === 'none'
        ? ({ codec: 'none' } as const)
        : ({ codec: 'zstd', level: Number(compressionEnv.split(':')[1] ?? 1) } as const);
    const repo = await Repository.init(store, { blockWorkers, compression, hash });
    console.log(
      `compression ${compressionEnv}; hash ${hash}; block workers: ${blockWorkers}; sync ${process.env['SYNC_METHOD'] ?? 'fsync'}; load average ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}`,
    );
    let start = performance.now();
    let cpu = process.cpuUsage();
    const cpuSeconds = (): string => {
      const used = process.cpuUsage(cpu);
      return ((used.user + used.system) / 1e6).toFixed(1);
    };
    const source = await openRawFileSource(image, { blockSizeBytes: BLOCK });
    const key = await writeBackup(repo, {
      vmId: 'vm',
      concurrency: Number(process.env['PUT_CONCURRENCY'] ?? 8),
      disks: [{ diskId: 'd', mode: 'key', source }],
    });
    await source.close();
    const keySeconds = (performance.now() - start) / 1000;
    console.log(
      `key backup: ${keySeconds.toFixed(2)} s, ${cpuSeconds()} CPU-s (${formatBytes(SIZE / keySeconds)}/s, stored ${formatBytes(key.disks[0]?.storedBytes ?? 0)}) vs cp+sync median ${cpSeconds.toFixed(2)} s (${cpKey.all}) -> ratio ${(cpSeconds / keySeconds).toFixed(2)}x (goal >= 0.6x)`,
    );

    const deltaSeconds: number[] = [];
    for (let round = 0; round < 9; round += 1) {
      const changed = pick(Math.round(BLOCKS / 100), round + 1);
      await mutate(image, changed, round);
      start = performance.now();
      await writeBackup(repo, {
        vmId: 'vm',
        disks: [{ diskId: 'd', mode: 'delta', source: await rawDelta(image, changed) }],
      });
      deltaSeconds.push((performance.now() - start) / 1000);
    }
    const delta = deltaSeconds[0] ?? 0;
    console.log(
      `delta backup (1 % = ${Math.round(BLOCKS / 100)} blocks): ${delta.toFixed(3)} s = ${((100 * delta) / keySeconds).toFixed(2)} % of key (goal <= 3 %); 9 deltas: ${deltaSeconds.map((s) => s.toFixed(3)).join(' ')}`,
    );

    const cpRestore = await cpSync();
    const cpRestoreSeconds = cpRestore.seconds;
    const points = await repo.listPoints('vm');
    const newest = points.at(-1);
    if (newest === undefined) throw new Error('no points');
    start = performance.now();
    cpu = process.cpuUsage();
    const readAhead = Number(process.env['READ_AHEAD'] ?? 8);
    const disk = await openPointDisk(repo, 'vm', newest.pointId, 'd', { readAhead });
    const out = join(work, 'restored.raw');
    await writeRawFile(disk, out); // the loop of restores to a file or QEMU raw image
    const restoreSeconds = (performance.now() - start) / 1000;
    console.log(
      `restore of a ${points.length}-point chain (read-ahead ${readAhead}): ${restoreSeconds.toFixed(2)} s, ${cpuSeconds()} CPU-s (${formatBytes(SIZE / restoreSeconds)}/s) vs cp+sync median ${cpRestoreSeconds.toFixed(2)} s (${cpRestore.all}) -> ratio ${(cpRestoreSeconds / restoreSeconds).toFixed(2)}x (goal >= 0.9x)`,
    );
    execFileSync('cmp', [image, out]);
    console.log('restored image equals the source (cmp)');
    await repo.close();
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
