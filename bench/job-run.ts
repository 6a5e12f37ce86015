/**
 * Issue 7 benchmark: a job on a two-disk qemu-storage-daemon machine, through the whole product
 * (QMP point in time, NBD with 4 connections per disk, local repository with fsync).
 *  key:   the first run vs `nbdcopy --connections=4` of both disks to files + `sync` (goal >= 0.6x)
 *  delta: 1 % of the disk rewritten (whole 2 MiB blocks chosen at random), the next run (goal <= 3 %
 *         of the key run); also 1 % of the 64 KiB granules scattered at random, which touches most
 *         2 MiB blocks (the repository's block size), for comparison
 *  merge: the merge phase of later runs (retention 2), for two disk sizes (goal: independent of size)
 * Run: node --import tsx bench/job-run.ts [diskGiB=2] [workdir=/var/tmp]
 */
import { execFileSync } from 'node:child_process';
import { randomBytes, randomFillSync } from 'node:crypto';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { App } from '../src/app/index.ts';
import { GiB, KiB, MiB, formatBytes } from '../src/core/index.ts';
import { openNbdSink } from '../src/disk/index.ts';
import { startQsd } from '../test/harness/index.ts';

const diskGiB = Number(process.argv[2] ?? 2);
const root = process.argv[3] ?? '/var/tmp';

async function makeImage(dir: string, name: string, sizeBytes: number): Promise<string> {
  // Like real disks: half of each 2 MiB block incompressible, half text-like (about 2:1 overall),
  // unique per block (the block index is stamped in).
  const raw = join(dir, `${name}.raw`);
  const handle = await open(raw, 'w');
  const chunk = Buffer.alloc(2 * MiB);
  const words = Buffer.from(
    'vmdelta incremental backup of virtual machine disks over NBD with merges ',
  );
  for (let i = MiB; i < chunk.length; i += 1)
    chunk[i] = (words[i % words.length] ?? 32) ^ (i % 7 === 0 ? (i >> 8) & 0x3f : 0);
  for (let offset = 0; offset < sizeBytes; offset += chunk.length) {
    randomFillSync(chunk, 0, MiB);
    chunk.writeUInt32BE(offset / chunk.length, MiB);
    await handle.write(chunk, 0, chunk.length, offset);
  }
  await handle.close();
  const image = join(dir, `${name}.qcow2`);
  execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, image]);
  await rm(raw);
  return image;
}

async function scenario(sizeBytes: number): Promise<void> {
  const dir = await mkdtemp(join(root, 'vmdelta-bench-job-'));
  const images = [
    await makeImage(dir, 'disk0', sizeBytes),
    await makeImage(dir, 'disk1', sizeBytes),
  ];
  const nbdSocket = join(dir, 'nbd.sock');
  const args = ['--nbd-server', `addr.type=unix,addr.path=${nbdSocket}`];
  images.forEach((image, i) =>
    args.push(
      '--blockdev',
      `driver=file,node-name=f${i},filename=${image}`,
      '--blockdev',
      `driver=qcow2,node-name=disk${i},file=f${i}`,
      '--export',
      `type=nbd,id=live${i},node-name=disk${i},name=live${i},writable=on`,
    ),
  );
  const qsd = await startQsd({ dir, args });
  try {
    // Reference: nbdcopy of both live disks to files, then sync.
    let t = performance.now();
    for (let i = 0; i < 2; i += 1) {
      execFileSync('nbdcopy', [
        '--connections=4',
        `nbd+unix:///live${i}?socket=${nbdSocket}`,
        join(dir, `copy${i}.raw`),
      ]);
    }
    execFileSync('sync');
    const nbdcopyMs = performance.now() - t;
    await rm(join(dir, 'copy0.raw'));
    await rm(join(dir, 'copy1.raw'));

    const dataDir = join(dir, 'data');
    const configFile = join(dir, 'config.json');
    await writeFile(
      configFile,
      JSON.stringify({
        remotes: [{ id: 'local', store: { type: 'local', path: join(dir, 'remote') } }],
        sources: [
          {
            type: 'qemu',
            id: 'bench',
            machines: [
              {
                id: 'vm',
                qmpSocket: qsd.qmpSocketPath,
                nbdServer: { transport: 'unix', socketPath: nbdSocket },
              },
            ],
          },
        ],
        jobs: [
          {
            id: 'bench',
            name: 'bench',
            source: 'bench',
            machines: { ids: ['vm'] },
            remotes: ['local'],
            schedules: [{ id: 's', cron: '0 2 * * *', exportRetention: 2 }],
            settings: { nbdConcurrency: 4, fullInterval: 0 },
          },
        ],
      }),
    );
    const app = App.open({ dataDir, configFile });
    try {
      t = performance.now();
      const key = await app.runJob('bench', { scheduleId: 's' });
      const keyMs = performance.now() - t;
      if (key.status !== 'success') throw new Error(JSON.stringify(key.machines[0]?.error));
      const rewrite = async (unitBytes: number, fraction: number): Promise<void> => {
        const units = sizeBytes / unitBytes;
        for (let i = 0; i < 2; i += 1) {
          const sink = await openNbdSink({ uri: `nbd+unix:///live${i}?socket=${nbdSocket}` });
          for (let u = 0; u < Math.max(1, Math.round(units * fraction)); u += 1) {
            await sink.writeBlock(
              Math.floor(Math.random() * units),
              randomBytes(unitBytes),
              unitBytes,
            );
          }
          await sink.close();
        }
      };
      const merges: number[] = [];
      const deltas: { ms: number; phases: string }[] = [];
      for (let run = 0; run < 4; run += 1) {
        await rewrite(run === 3 ? 64 * KiB : 2 * MiB, 0.01);
        t = performance.now();
        const delta = await app.runJob('bench', { scheduleId: 's' });
        const machine = delta.machines[0];
        deltas.push({ ms: performance.now() - t, phases: JSON.stringify(machine?.phases) });
        merges.push(machine?.phases.mergeMs ?? NaN);
      }
      const deltaMs = deltas[0]?.ms ?? NaN;
      const scatteredMs = deltas[3]?.ms ?? NaN;
      const total = 2 * sizeBytes;
      console.log(`disks 2 x ${formatBytes(sizeBytes)}`);
      console.log(`  key run     ${keyMs.toFixed(0)} ms  ${formatBytes((total * 1000) / keyMs)}/s`);
      console.log(
        `  nbdcopy+sync ${nbdcopyMs.toFixed(0)} ms  ${formatBytes((total * 1000) / nbdcopyMs)}/s  -> key/nbdcopy throughput ratio ${(nbdcopyMs / keyMs).toFixed(2)}x (goal >= 0.6)`,
      );
      console.log(
        `  delta run (1 % of the disk) ${deltaMs.toFixed(0)} ms = ${((100 * deltaMs) / keyMs).toFixed(1)} % of the key run (goal <= 3 %), phases ${deltas[0]?.phases ?? ''}`,
      );
      console.log(
        `  delta run (1 % of 64 KiB granules, scattered) ${scatteredMs.toFixed(0)} ms = ${((100 * scatteredMs) / keyMs).toFixed(1)} % of the key run`,
      );
      console.log(`  merge phase per run (ms): ${merges.map((m) => m.toFixed(0)).join(', ')}`);
    } finally {
      await app.close();
    }
  } finally {
    await qsd.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await scenario(diskGiB * GiB);
await scenario((diskGiB * GiB) / 4);
