/**
 * The demo (the README's first Quick start command), on embedded defaults: a qemu-storage-daemon
 * machine with two generated disks; a job to a local-folder remote run several times (one key
 * backup, then deltas read over NBD with two connections per disk); retention merging the oldest
 * delta into the key; restores of every kept point proven bit-exact by checksums; a
 * second remote seeded by copying the first, on which the next run is a delta; the run logs; and
 * clean-up. test/e2e runs the same scenario and asserts on the returned result.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, copyBackups, listBackups, restoreToFiles } from '../../app/index.ts';
import { MiB, formatBytes, formatDurationMs } from '../../core/index.ts';
import type { RunLog } from '../../jobs/index.ts';
import { formatRunLogText } from '../render/run-log-text.ts';
import type { CliIo } from '../io.ts';
import { DemoMachine } from './demo-machine.ts';

export interface DemoOptions {
  readonly keep: boolean;
  /** Quiet: no run logs printed (the end-to-end test). */
  readonly quiet?: boolean;
  readonly diskSizesBytes?: readonly number[];
}

export interface DemoRestoreCheck {
  readonly pointId: string;
  readonly diskId: string;
  readonly remoteId: string;
  readonly expectedSha256: string;
  readonly restoredSha256: string;
}

export interface DemoResult {
  readonly runs: readonly RunLog[];
  readonly restores: readonly DemoRestoreCheck[];
  readonly pointsOnFirstRemote: number;
  readonly seededRun: RunLog;
  readonly dir: string;
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export async function runDemo(io: CliIo, options: DemoOptions): Promise<DemoResult> {
  const say = (text: string): void => {
    if (options.quiet !== true) io.stdout.write(`${text}\n`);
  };
  const dir = await mkdtemp(join(tmpdir(), 'vmdelta-demo-'));
  const machine = await DemoMachine.start(dir, options.diskSizesBytes ?? [96 * MiB, 48 * MiB]);
  let app: App | undefined;
  // Interrupted (Ctrl-C, kill): stop the demo machine and remove its folder before leaving.
  const onSignal = (signal: NodeJS.Signals): void => {
    void machine
      .stop()
      .then(() => rm(dir, { recursive: true, force: true }))
      .finally(() => process.kill(process.pid, signal));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const dataDir = join(dir, 'data');
    await mkdir(dataDir, { recursive: true });
    const config = {
      remotes: [
        {
          id: 'local',
          name: 'first remote (local folder)',
          store: { type: 'local', path: join(dir, 'remote-local') },
        },
        {
          id: 'seeded',
          name: 'second remote, seeded by copy',
          store: { type: 'local', path: join(dir, 'remote-seeded') },
        },
      ],
      sources: [
        {
          type: 'qemu',
          id: 'demo',
          machines: [
            {
              id: machine.id,
              label: 'demo machine',
              qmpSocket: machine.qmpSocket,
              nbdServer: { transport: 'unix', socketPath: machine.nbdSocket },
            },
          ],
        },
      ],
      jobs: [
        {
          id: 'demo-job',
          name: 'Demo incremental backup',
          source: 'demo',
          machines: { ids: [machine.id] },
          remotes: ['local'],
          schedules: [{ id: 'nightly', cron: '0 2 * * *', exportRetention: 3 }],
          settings: { fullInterval: 20, nbdConcurrency: 2 },
        },
      ],
    };
    const configFile = join(dataDir, 'config.json');
    await writeFile(configFile, JSON.stringify(config, null, 2));
    app = App.open({ dataDir, configFile });
    say(`vmdelta demo in ${dir}`);
    say(
      `machine ${machine.id}: qemu-storage-daemon with ${machine.disks.map((d) => `${d.id} (${formatBytes(d.sizeBytes)})`).join(' and ')}`,
    );

    const expected = new Map<string, Map<string, string>>();
    const runs: RunLog[] = [];
    const backup = async (label: string, writes: number, seed: number): Promise<RunLog> => {
      if (app === undefined) throw new Error('app closed');
      let written = 0;
      for (const disk of machine.disks)
        written += await machine.guestWrites(disk.id, writes, seed + disk.sizeBytes);
      say(`\n== ${label}: the guest wrote ${formatBytes(written)}; running the job`);
      const log = await app.runJob('demo-job', { scheduleId: 'nightly' });
      if (log.status !== 'success')
        throw new Error(
          `run ${log.runId} ended ${log.status}: ${log.error?.message ?? log.machines[0]?.error?.message ?? ''}`,
        );
      for (const disk of log.machines[0]?.disks ?? []) {
        for (const remote of disk.remotes) {
          if (remote.restorePointId === undefined) continue;
          const sums = expected.get(remote.restorePointId) ?? new Map<string, string>();
          sums.set(disk.diskId, machine.checksum(disk.diskId));
          expected.set(remote.restorePointId, sums);
        }
      }
      say(formatRunLogText(log).trimEnd());
      runs.push(log);
      return log;
    };

    await backup('run 1 (first backup: a key backup)', 40, 1);
    for (let i = 2; i <= 5; i += 1) await backup(`run ${i}`, 6, i);

    const points = await listBackups(app, 'local', machine.id);
    say(
      `\n== remote "local" keeps ${points.length} restore points (retention 3: older deltas were merged into the key)`,
    );
    for (const p of points)
      say(`  ${p.pointId}  ${p.disks.map((d) => `${d.diskId}:${d.kind}`).join(' ')}`);

    const restores: DemoRestoreCheck[] = [];
    const restoreAndCheck = async (remoteId: string, pointId: string): Promise<void> => {
      if (app === undefined) throw new Error('app closed');
      const startMs = Date.now();
      const files = await restoreToFiles(app, {
        remoteId,
        vmId: machine.id,
        pointId,
        dir: join(dir, 'restore', remoteId, pointId),
        format: 'raw',
      });
      for (const file of files) {
        const restoredSha256 = await sha256File(file.path);
        const expectedSha256 = expected.get(pointId)?.get(file.diskId) ?? '(unknown)';
        restores.push({ pointId, diskId: file.diskId, remoteId, expectedSha256, restoredSha256 });
        say(
          `restore ${remoteId} ${pointId} ${file.diskId}: sha256 ${restoredSha256.slice(0, 16)}… ${restoredSha256 === expectedSha256 ? 'matches the disk at backup time' : 'DIFFERS'}`,
        );
      }
      say(`  (restored in ${formatDurationMs(Date.now() - startMs)})`);
    };
    // Every restore point still kept, newest first: the newest and the older ones (merged).
    for (const point of [...points].reverse()) await restoreAndCheck('local', point.pointId);

    say('\n== initial seed: copy the backups to a second remote, point the job at it, run again');
    const copied = await copyBackups(app, { from: 'local', to: 'seeded', vmId: machine.id });
    say(
      `copied ${copied.copiedPoints} restore points (${copied.copiedObjects} objects, ${formatBytes(copied.copiedBytes)})`,
    );
    app.saveJob({ ...config.jobs[0], remotes: ['seeded'] });
    const seededRun = await backup('run 6, on the seeded remote', 6, 6);
    const seededNewest = (await listBackups(app, 'seeded', machine.id)).at(-1);
    if (seededNewest !== undefined) await restoreAndCheck('seeded', seededNewest.pointId);
    const ok = restores.every((r) => r.expectedSha256 === r.restoredSha256);
    say(ok ? '\nEvery restore is bit-exact. Demo finished.' : '\nSome restores differ!');
    return { runs, restores, pointsOnFirstRemote: points.length, seededRun, dir };
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    await app?.close();
    await machine.stop();
    if (!options.keep) await rm(dir, { recursive: true, force: true, maxRetries: 5 });
    else say(`kept ${dir}`);
  }
}
