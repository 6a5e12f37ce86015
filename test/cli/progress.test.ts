// Progress lines of long CLI commands: drawn on stderr when it is a TTY (copy, verify, restore,
// restore-into, export-vhd-chain, prune, nbd checksum, job runs), never with --json or on a
// non-TTY, and stdout stays clean. Backups are written straight into a local-folder remote.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MiB } from '../../src/core/index.ts';
import { runCli } from '../../src/cli/run-cli.ts';
import { formatProgressLine, progressRenderer } from '../../src/cli/render/progress.ts';
import { deltaSource, fullSource } from '../repository/helpers.ts';
import { Repository, writeBackup } from '../../src/repository/index.ts';
import { LocalObjectStore } from '../../src/storage/index.ts';
import { createImage, makeTempDir, sha256File, startQemuNbd, toRaw } from '../harness/index.ts';
import { captureIo } from './capture-io.ts';

const FULL_BAR = `\\[${'#'.repeat(20)}\\] 100%`;

test('formatProgressLine: bar, percent, bytes, objects, rate and ETA', () => {
  const line = formatProgressLine(
    {
      phase: 'copy',
      doneBytes: 50 * MiB,
      totalBytes: 200 * MiB,
      doneObjects: 25,
      totalObjects: 100,
    },
    2000,
  );
  assert.equal(
    line,
    'copy [#####---------------] 25% 50 MiB of 200 MiB, 25/100 objects, 25 MiB/s, ETA 6.00 s',
  );
  assert.equal(
    formatProgressLine(
      { phase: 'gc', doneBytes: 0, totalBytes: 0, doneObjects: 0, totalObjects: 0 },
      0,
    ),
    'gc: …',
  );
});

test('job runs: one bar per disk on a TTY, only phases and results elsewhere', () => {
  for (const tty of [true, false]) {
    const c = captureIo(tty);
    const sink = progressRenderer(c.io.stderr);
    sink.emit({ type: 'machine-phase', runId: 'r', machineId: 'vm', phase: 'transfer' });
    sink.emit({
      type: 'disk-progress',
      runId: 'r',
      machineId: 'vm',
      diskId: 'disk0',
      bytesRead: 8 * MiB,
      blocksRead: 4,
      blocksTotal: 8,
      elapsedMs: 1000,
    });
    sink.emit({ type: 'machine-finished', runId: 'r', machineId: 'vm', status: 'success' });
    assert.equal(
      c.err(),
      tty
        ? 'vm: transfer\n\r\x1b[2K  vm/disk0 [##########----------] 50% 8 MiB, 4/8 blocks, 8 MiB/s, ETA 1.00 s\r\x1b[2Kvm: success\n'
        : 'vm: transfer\nvm: success\n',
    );
  }
});

test('backup copy, verify, restore, restore-into, export-vhd-chain, prune and nbd checksum draw progress on a TTY only', async () => {
  const tmp = await makeTempDir('vmd-cli-progress-');
  try {
    const dataDir = join(tmp.path, 'data');
    const cli = async (tty: boolean, ...args: string[]) => {
      const c = captureIo(tty);
      const code = await runCli(args[0] === 'nbd' ? args : [...args, '--data-dir', dataDir], c.io);
      process.exitCode = 0;
      assert.equal(code, 0, c.out() + c.err());
      assert.doesNotMatch(c.out(), /\r/, 'stdout has no progress');
      return { out: c.out(), err: c.err() };
    };
    const nas = join(tmp.path, 'nas');
    await cli(false, 'remote', 'add', 'nas', '--path', nas);
    await cli(false, 'remote', 'add', 'copy', '--path', join(tmp.path, 'copy'));
    await cli(false, 'backup', 'list', '--remote', 'nas'); // creates the repository
    const repo = await Repository.open(new LocalObjectStore(nas, { durable: false }));
    const image = randomBytes(8 * MiB);
    for (let round = 0; round < 3; round += 1) {
      if (round > 0) randomBytes(MiB).copy(image, round * 2 * MiB);
      await writeBackup(repo, {
        vmId: 'old',
        createdMs: 1000 + round,
        disks: [
          {
            diskId: 'disk0',
            mode: round === 0 ? 'key' : 'delta',
            source: round === 0 ? fullSource(image, 2 * MiB) : deltaSource(image, 2 * MiB, [round]),
          },
        ],
      });
    }
    await repo.close();
    const points = JSON.parse(
      (await cli(false, 'backup', 'list', '--remote', 'nas', '--json')).out,
    ) as {
      pointId: string;
    }[];
    const newest = points.at(-1)?.pointId ?? '';

    const copied = await cli(true, 'backup', 'copy', '--from', 'nas', '--to', 'copy');
    assert.match(copied.out, /^copied 3 restore point\(s\)/);
    assert.match(copied.err, new RegExp(`plan ${FULL_BAR} \\d+/\\d+ objects`));
    assert.match(
      copied.err,
      new RegExp(`copy ${FULL_BAR} [\\d.]+ MiB of [\\d.]+ MiB, \\d+/\\d+ objects`),
    );
    assert.ok(copied.err.endsWith('\r\x1b[2K'), 'the line is cleared before results');

    const verified = await cli(true, 'backup', 'verify', '--remote', 'nas', '--sample', '1');
    assert.match(verified.out, /3 restore point\(s\).*0 finding\(s\)/);
    assert.match(verified.err, new RegExp(`scan ${FULL_BAR} 1/1 objects`));
    assert.match(verified.err, new RegExp(`verify ${FULL_BAR} 12 MiB of 12 MiB, 6/6 objects`));

    const restored = await cli(
      true,
      'backup',
      'restore',
      '--remote',
      'nas',
      '--vm',
      'old',
      '--point',
      newest,
      '--to',
      join(tmp.path, 'restore'),
    );
    assert.match(restored.err, new RegExp(`restore disk0 ${FULL_BAR} 8 MiB of 8 MiB, 4/4 objects`));
    const restoredPath = join(tmp.path, 'restore', 'old-disk0.raw');
    const expected = await sha256File(restoredPath);
    await writeFile(join(tmp.path, 'image.raw'), image);
    assert.equal(expected, await sha256File(join(tmp.path, 'image.raw')));

    const exported = await cli(
      true,
      'backup',
      'export-vhd-chain',
      '--remote',
      'nas',
      '--vm',
      'old',
      '--point',
      newest,
      '--disk',
      'disk0',
      '--to',
      join(tmp.path, 'vhd'),
    );
    assert.match(exported.err, new RegExp(`export file 1 of 3 ${FULL_BAR} 8 MiB of 8 MiB`));
    assert.match(exported.err, new RegExp(`export file 3 of 3 ${FULL_BAR} 2 MiB of 2 MiB`));

    const disk = join(tmp.path, 'old.qcow2');
    await createImage(disk, 'qcow2', 8 * MiB);
    await cli(false, 'source', 'add-qemu', 'offline', '--image', `old:disk0=${disk}`);
    const into = await cli(
      true,
      'backup',
      'restore-into',
      '--remote',
      'nas',
      '--vm',
      'old',
      '--point',
      newest,
      '--source',
      'offline',
    );
    assert.match(into.err, new RegExp(`restore disk0 ${FULL_BAR} 8 MiB of 8 MiB`));
    await toRaw(disk, 'qcow2', join(tmp.path, 'into.raw'));
    assert.equal(await sha256File(join(tmp.path, 'into.raw')), expected);

    const server = await startQemuNbd({
      dir: tmp.path,
      image: restoredPath,
      format: 'raw',
      readOnly: true,
    });
    try {
      const sum = await cli(true, 'nbd', 'checksum', server.uri);
      assert.equal(sum.out, `${expected}  ${server.uri}\n`);
      assert.match(sum.err, new RegExp(`checksum ${FULL_BAR} 8 MiB of 8 MiB`));
    } finally {
      await server.stop();
    }

    // --json, or stderr not a TTY: nothing but the results.
    const json = await cli(true, 'backup', 'verify', '--remote', 'copy', '--sample', '1', '--json');
    assert.equal(json.err, '');
    assert.equal((JSON.parse(json.out) as { checkedPoints: number }).checkedPoints, 3);
    assert.equal(
      (await cli(true, 'backup', 'copy', '--from', 'nas', '--to', 'copy', '--json')).err,
      '',
    );
    assert.equal(
      (await cli(false, 'backup', 'verify', '--remote', 'copy', '--sample', '1')).err,
      '',
    );

    const pruned = await cli(
      true,
      'backup',
      'prune',
      '--remote',
      'nas',
      '--vm',
      'old',
      '--keep-last',
      '1',
    );
    assert.match(pruned.err, new RegExp(`merge ${FULL_BAR} 2/2 objects`));
    assert.match(pruned.err, /gc: …/);
    assert.match(pruned.err, /gc: \d+ objects/, 'the sweep counts the objects it examines');
    assert.equal(
      (
        JSON.parse(
          (await cli(false, 'backup', 'list', '--remote', 'nas', '--json')).out,
        ) as unknown[]
      ).length,
      1,
    );
  } finally {
    await tmp.remove();
  }
});
