// The harness itself: each real server starts, answers nbdinfo, and is gone after stop().
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  addBitmap,
  createImage,
  isAlive,
  makePki,
  makeTempDir,
  qemuIo,
  requireTool,
  run,
  startNbdkit,
  startQemuNbd,
  startQsd,
} from '../harness/index.ts';

test('qemu-nbd with a bitmap, nbdkit over TLS and qemu-storage-daemon start and stop by pid', async () => {
  const tmp = await makeTempDir();
  try {
    const image = join(tmp.path, 'd.qcow2');
    await createImage(image, 'qcow2', 64 * 1024 * 1024);
    await addBitmap(image, 'bm0');
    await qemuIo(image, 'qcow2', ['write -P 0xaa 1M 4k']);
    const nbdinfo = requireTool('nbdinfo');

    const qnbd = await startQemuNbd({
      dir: tmp.path,
      image,
      format: 'qcow2',
      readOnly: true,
      bitmaps: ['bm0'],
    });
    const map = await run(nbdinfo, ['--map=qemu:dirty-bitmap:bm0', qnbd.uri]);
    assert.match(map, /1048576\s+65536\s+1\s+dirty/);
    await qnbd.stop();
    assert.equal(isAlive(qnbd.pid), false);

    const pki = await makePki(join(tmp.path, 'pki'));
    const kit = await startNbdkit({
      dir: tmp.path,
      plugin: 'memory',
      args: ['size=16M'],
      listen: { transport: 'tcp', tls: pki },
    });
    const info = await run(nbdinfo, ['--json', `${kit.uri}?tls-certificates=${pki.clientDir}`]);
    assert.equal(
      (JSON.parse(info) as { exports: { 'export-size': number }[] }).exports[0]?.['export-size'],
      16 * 1024 * 1024,
    );
    await kit.stop();
    assert.equal(isAlive(kit.pid), false);

    const qsd = await startQsd({ dir: tmp.path });
    assert.equal(isAlive(qsd.pid), true);
    await qsd.stop();
    assert.equal(isAlive(qsd.pid), false);
  } finally {
    await tmp.remove();
  }
});
