import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openVhdFileDisk, openVhdStreamDisk } from '../../src/disk/index.ts';
import { writeVhdFile } from '../../src/vhd/index.ts';
import { makeTempDir, qemuIo, requireTool, run } from '../harness/index.ts';
import { MiB, assertVhdUtilRules, makeDisk, qemuCompare, writeRaw } from './helpers.ts';
import type { DiskSource } from '../../src/disk/index.ts';

async function materialise(disk: DiskSource): Promise<Buffer> {
  const raw = Buffer.alloc(disk.sizeBytes);
  for await (const { index, data } of disk.readBlocks())
    data.copy(raw, index * disk.blockSizeBytes);
  return raw;
}

test('qemu-img reads our dynamic VHDs identically to the raw source', async () => {
  const dir = await makeTempDir();
  try {
    const shapes = [
      { sizeBytes: 16 * MiB, blockSizeBytes: 2 * MiB, present: [0, 1, 5, 7] },
      { sizeBytes: 11 * MiB + 3 * 512, blockSizeBytes: 2 * MiB, present: [2, 5] }, // partial last block
      { sizeBytes: 6 * MiB, blockSizeBytes: 64 * 1024, present: [0, 7, 31, 32, 95] },
      { sizeBytes: 3 * 1024 * MiB, blockSizeBytes: 2 * MiB, present: [0, 700, 1535] }, // 3 GiB: CHS size below the virtual size
    ];
    for (const [n, shape] of shapes.entries()) {
      const { disk, raw } = makeDisk({ ...shape, seed: 10 + n });
      const rawPath = join(dir.path, `s${n}.raw`);
      const vhdPath = join(dir.path, `s${n}.vhd`);
      await writeRaw(rawPath, raw);
      await writeVhdFile(disk, vhdPath);
      await assertVhdUtilRules(vhdPath);
      await qemuCompare(rawPath, vhdPath);
      const info = JSON.parse(
        await run(requireTool('qemu-img'), ['info', '--output=json', '-f', 'vpc', vhdPath]),
      ) as { 'virtual-size': number };
      assert.equal(info['virtual-size'], shape.sizeBytes, `virtual size of shape ${n}`);
    }
  } finally {
    await dir.remove();
  }
});

test('we read dynamic VHDs written by qemu-img convert (stream and random access)', async () => {
  const dir = await makeTempDir();
  try {
    const rawPath = join(dir.path, 'src.raw');
    const vhdPath = join(dir.path, 'qemu.vhd');
    await run(requireTool('qemu-img'), [
      'create',
      '-q',
      '-f',
      'raw',
      rawPath,
      String(24 * MiB + 4096),
    ]);
    await qemuIo(rawPath, 'raw', [
      'write -P 0x61 0 1M',
      'write -P 0x62 3M 4k',
      'write -P 0x63 10M 2M',
      'write -P 0x64 24M 4k',
    ]);
    await run(requireTool('qemu-img'), [
      'convert',
      '-f',
      'raw',
      '-O',
      'vpc',
      '-o',
      'subformat=dynamic,force_size=on',
      rawPath,
      vhdPath,
    ]);
    const raw = await readFile(rawPath);
    const streamed = await openVhdStreamDisk(createReadStream(vhdPath));
    assert.equal(streamed.sizeBytes, raw.length);
    assert.equal(streamed.kind, 'full');
    assert.equal(streamed.footer.creatorApplication, 'qem2');
    assert.deepEqual(streamed.blocks.toArray(), [0, 1, 5, 12]);
    assert.ok((await materialise(streamed)).equals(raw));
    const file = await openVhdFileDisk(vhdPath);
    try {
      assert.ok((await materialise(file)).equals(raw));
    } finally {
      await file.close();
    }
    // A fixed VHD (raw data + footer) reads through the random-access reader.
    const fixedPath = join(dir.path, 'fixed.vhd');
    await run(requireTool('qemu-img'), [
      'convert',
      '-f',
      'raw',
      '-O',
      'vpc',
      '-o',
      'subformat=fixed,force_size=on',
      rawPath,
      fixedPath,
    ]);
    const fixed = await openVhdFileDisk(fixedPath);
    try {
      assert.equal(fixed.footer.diskType, 2);
      assert.equal(fixed.blocks.count, 13);
      assert.ok((await materialise(fixed)).equals(raw));
    } finally {
      await fixed.close();
    }
    // And a sparse image written in place by qemu-io on a qemu-img create'd VHD.
    const created = join(dir.path, 'created.vhd');
    await run(requireTool('qemu-img'), [
      'create',
      '-q',
      '-f',
      'vpc',
      '-o',
      'subformat=dynamic,force_size=on',
      created,
      String(64 * MiB),
    ]);
    await run(requireTool('qemu-io'), [
      '-f',
      'vpc',
      '-c',
      'write -P 0x71 63M 1M',
      '-c',
      'write -P 0x72 0 512',
      created,
    ]);
    const expected = Buffer.alloc(64 * MiB);
    expected.fill(0x71, 63 * MiB);
    expected.fill(0x72, 0, 512);
    const disk = await openVhdStreamDisk(createReadStream(created));
    assert.deepEqual(disk.blocks.toArray(), [0, 31]);
    assert.ok((await materialise(disk)).equals(expected));
  } finally {
    await dir.remove();
  }
});
