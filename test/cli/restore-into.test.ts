// A stopped machine (a qcow2 image): backed up through qemu-nbd, damaged, then restored back
// into its own disk with `backup restore-into`; the image reads as it was at the backup.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { runCli } from '../../src/cli/run-cli.ts';
import { createImage, makeTempDir, qemuIo, sha256File, toRaw } from '../harness/index.ts';

const sink = () => new Writable({ write: (_c, _e, cb) => cb() });

test('backup restore-into writes a restore point back into a stopped machine disk', async () => {
  const tmp = await makeTempDir('vmd-rin-');
  try {
    const image = join(tmp.path, 'old.qcow2');
    await createImage(image, 'qcow2', 16 * 1024 * 1024);
    await qemuIo(image, 'qcow2', ['write -P 0x5a 1M 3M', 'write -P 0x17 9M 64k']);
    await toRaw(image, 'qcow2', join(tmp.path, 'before.raw'));
    const before = await sha256File(join(tmp.path, 'before.raw'));
    const dataDir = join(tmp.path, 'data');
    let out = '';
    const io = {
      stdout: new Writable({
        write: (c: Buffer, _e, cb) => {
          out += c.toString();
          cb();
        },
      }),
      stderr: sink(),
      env: {},
    };
    const cli = async (...args: string[]) => {
      out = '';
      const code = await runCli([...args, '--data-dir', dataDir], io);
      process.exitCode = 0;
      return code;
    };
    assert.equal(await cli('remote', 'add', 'nas', '--path', join(tmp.path, 'nas')), 0);
    assert.equal(await cli('source', 'add-qemu', 'offline', '--image', `old:disk0=${image}`), 0);
    assert.equal(
      await cli('job', 'create', 'j', '--source', 'offline', '--machine', 'old', '--remote', 'nas'),
      0,
    );
    assert.equal(await cli('job', 'run', 'j'), 0, out);
    await cli('backup', 'list', '--remote', 'nas', '--json');
    const pointId = (JSON.parse(out) as { pointId: string }[])[0]?.pointId ?? '';
    await qemuIo(image, 'qcow2', ['write -P 0xee 0 8M']);
    await toRaw(image, 'qcow2', join(tmp.path, 'damaged.raw'));
    assert.notEqual(await sha256File(join(tmp.path, 'damaged.raw')), before);
    assert.equal(
      await cli(
        'backup',
        'restore-into',
        '--remote',
        'nas',
        '--vm',
        'old',
        '--point',
        pointId,
        '--source',
        'offline',
      ),
      0,
      out,
    );
    await toRaw(image, 'qcow2', join(tmp.path, 'after.raw'));
    assert.equal(await sha256File(join(tmp.path, 'after.raw')), before);
  } finally {
    await tmp.remove();
  }
});
