// The CLI as a user drives it: remote, source, job create/edit/run, backup list/restore/verify/
// prune/copy, logs, with --json for scripts and clear errors, against a real qemu-storage-daemon.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MiB } from '../../src/core/index.ts';
import { DemoMachine } from '../../src/cli/demo/demo-machine.ts';
import { makeTempDir } from '../harness/index.ts';
import { cliInDataDir } from './capture-io.ts';

test('CLI: configure, run twice, list, restore bit-exact, verify, prune, copy, logs', async () => {
  const tmp = await makeTempDir('vmd-cli-');
  const machine = await DemoMachine.start(tmp.path, [8 * MiB]);
  try {
    const dataDir = join(tmp.path, 'data');
    const cli = cliInDataDir(dataDir);
    assert.equal((await cli('remote', 'add', 'nas', '--path', join(tmp.path, 'nas'))).code, 0);
    assert.equal((await cli('remote', 'add', 'copy', '--path', join(tmp.path, 'copy'))).code, 0);
    assert.match((await cli('remote', 'test', 'nas')).out, /remote nas: OK/);
    assert.equal(
      (await cli('source', 'add-qemu', 'lab', '--machine', `${machine.id}=${machine.qmpSocket}`))
        .code,
      0,
    );
    assert.equal(
      (
        await cli(
          'job',
          'create',
          'probe',
          '--source',
          'lab',
          '--machine',
          machine.id,
          '--remote',
          'nas',
        )
      ).code,
      0,
    );
    const unknownServer = await cli('job', 'run', 'probe');
    assert.equal(unknownServer.code, 1);
    assert.match(unknownServer.out, /HYPERVISOR_NBD_SERVER_UNKNOWN/);
    assert.equal(
      (
        await cli(
          'source',
          'add-qemu',
          'lab',
          '--machine',
          `${machine.id}=${machine.qmpSocket},nbd=${machine.nbdSocket}`,
        )
      ).code,
      0,
    );
    const machines = JSON.parse((await cli('source', 'machines', 'lab', '--json')).out) as {
      id: string;
      disks: unknown[];
    }[];
    assert.equal(machines[0]?.id, machine.id);
    assert.equal(machines[0].disks.length, 1);

    const bad = await cli(
      'job',
      'create',
      'nightly',
      '--source',
      'lab',
      '--machine',
      machine.id,
      '--remote',
      'nowhere',
    );
    assert.equal(bad.code, 1);
    assert.match(bad.err, /\[APP_REMOTE_NOT_FOUND\].*nowhere/);
    assert.equal(
      (
        await cli(
          'job',
          'create',
          'nightly',
          '--source',
          'lab',
          '--machine',
          machine.id,
          '--remote',
          'nas',
          '--retention',
          '5',
        )
      ).code,
      0,
    );
    assert.equal((await cli('job', 'edit', 'nightly', '--full-interval', '3')).code, 0);
    assert.equal(
      (
        JSON.parse((await cli('job', 'show', 'nightly')).out) as {
          settings: { fullInterval: number };
        }
      ).settings.fullInterval,
      3,
    );

    await machine.guestWrites('disk0', 10, 1);
    const first = await cli('job', 'run', 'nightly');
    assert.equal(first.code, 0, first.out + first.err);
    assert.match(first.out, /Transfer data using NBD/);
    assert.match(first.out, /→ nas: key \(the remote holds no earlier backup of this disk\)/);
    const firstSum = machine.checksum('disk0');
    await machine.guestWrites('disk0', 3, 2);
    const second = JSON.parse((await cli('job', 'run', 'nightly', '--json')).out) as {
      status: string;
      runId: string;
      machines: { disks: { read: string }[] }[];
    };
    assert.equal(second.status, 'success');
    assert.equal(second.machines[0]?.disks[0]?.read, 'delta');

    const points = JSON.parse((await cli('backup', 'list', '--remote', 'nas', '--json')).out) as {
      pointId: string;
      disks: { kind: string }[];
    }[];
    assert.deepEqual(
      points.map((p) => p.disks[0]?.kind),
      ['key', 'delta'],
    );
    const restoreDir = join(tmp.path, 'restore');
    const restored = await cli(
      'backup',
      'restore',
      '--remote',
      'nas',
      '--vm',
      machine.id,
      '--point',
      points[0]?.pointId ?? '',
      '--to',
      restoreDir,
    );
    assert.equal(restored.code, 0, restored.err);
    const bytes = await readFile(join(restoreDir, `${machine.id}-disk0.raw`));
    assert.equal(
      createHash('sha256').update(bytes).digest('hex'),
      firstSum,
      'the older point restores bit-exact',
    );

    assert.match(
      (await cli('backup', 'verify', '--remote', 'nas', '--sample', '1')).out,
      /2 restore point\(s\).*0 finding\(s\)/,
    );
    assert.match(
      (
        await cli(
          'backup',
          'prune',
          '--remote',
          'nas',
          '--vm',
          machine.id,
          '--keep-last',
          '1',
          '--dry-run',
        )
      ).out,
      /remove/,
    );
    assert.match(
      (await cli('backup', 'copy', '--from', 'nas', '--to', 'copy')).out,
      /copied 2 restore point/,
    );
    const logs = await cli('logs', '--job', 'nightly');
    assert.match((await cli('logs', '--job', 'probe')).out, /failure/);
    assert.match((await cli('logs', '--job', 'probe')).out, /failure/);
    assert.equal(logs.out.trim().split('\n').length, 2);
    assert.match((await cli('logs', second.runId)).out, /read changed blocks/);
    const missing = await cli('logs', 'no-such-run');
    assert.equal(missing.code, 1);
  } finally {
    await machine.stop();
    await tmp.remove();
  }
});
