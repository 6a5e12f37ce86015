import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from '../../src/cli/run-cli.ts';
import { writeVhdFile } from '../../src/vhd/index.ts';
import { makeTempDir, qemuIo, requireTool, run } from '../harness/index.ts';
import { MiB, makeDisk, qemuCompare, writeRaw } from './helpers.ts';

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  try {
    const code = await runCli(args, { stdout, stderr, env: {} });
    return { code, stdout: out, stderr: err };
  } finally {
    process.exitCode = undefined; // `vhd check` sets it on findings; keep the test process clean
  }
}

test('vhd convert raw -> VHD, then info and check', async () => {
  const dir = await makeTempDir();
  try {
    const rawPath = join(dir.path, 'disk.raw');
    const vhdPath = join(dir.path, 'disk.vhd');
    await run(requireTool('qemu-img'), [
      'create',
      '-q',
      '-f',
      'raw',
      rawPath,
      String(10 * MiB + 4096),
    ]);
    await qemuIo(rawPath, 'raw', ['write -P 0x41 1M 64k', 'write -P 0x42 10M 4k']);
    const converted = await cli(['vhd', 'convert', rawPath, vhdPath]);
    assert.equal(converted.code, 0, converted.stderr);
    assert.match(converted.stdout, /\(raw\) -> .*\(vhd\).*2 blocks/);
    await qemuCompare(rawPath, vhdPath);
    const info = await cli(['vhd', 'info', vhdPath, '--json']);
    assert.equal(info.code, 0, info.stderr);
    const parsed = JSON.parse(info.stdout) as {
      diskType: string;
      sizeBytes: number;
      allocatedBlocks: number;
      blockCount: number;
    };
    assert.equal(parsed.diskType, 'dynamic');
    assert.equal(parsed.sizeBytes, 10 * MiB + 4096);
    assert.equal(parsed.allocatedBlocks, 2);
    assert.equal(parsed.blockCount, 6);
    const text = await cli(['vhd', 'info', vhdPath]);
    assert.match(text.stdout, /disk type\s+dynamic/);
    const check = await cli(['vhd', 'check', vhdPath]);
    assert.equal(check.code, 0);
    assert.match(check.stdout, /: ok/);
    // And back to raw.
    const back = join(dir.path, 'back.raw');
    assert.equal((await cli(['vhd', 'convert', vhdPath, back])).code, 0);
    assert.ok((await readFile(back)).equals(await readFile(rawPath)));
  } finally {
    await dir.remove();
  }
});

test('vhd convert flattens a differencing chain; info shows the parent', async () => {
  const dir = await makeTempDir();
  try {
    const sizeBytes = 8 * MiB;
    const key = makeDisk({ sizeBytes, blockSizeBytes: 2 * MiB, present: [0, 3], seed: 1 });
    const delta = makeDisk({
      sizeBytes,
      blockSizeBytes: 64 * 1024,
      present: [1, 40, 127],
      seed: 2,
      kind: 'delta',
      base: key.raw,
    });
    const keyPath = join(dir.path, 'key.vhd');
    const childPath = join(dir.path, 'child.vhd');
    const plan = await writeVhdFile(key.disk, keyPath);
    await writeVhdFile(delta.disk, childPath, {
      parent: { uuid: plan.uuid, timestamp: plan.timestamp, fileName: 'key.vhd' },
    });
    const info = await cli(['vhd', 'info', childPath]);
    assert.match(info.stdout, /disk type\s+differencing/);
    assert.match(info.stdout, new RegExp(`parent uuid\\s+${plan.uuid}`));
    assert.match(info.stdout, /locator W2ru\s+\.\/key\.vhd/);
    const flatRaw = join(dir.path, 'flat.raw');
    assert.equal((await cli(['vhd', 'convert', childPath, flatRaw])).code, 0);
    assert.ok((await readFile(flatRaw)).equals(delta.raw));
    const flatVhd = join(dir.path, 'flat.vhd');
    assert.equal((await cli(['vhd', 'convert', childPath, flatVhd])).code, 0);
    const expectedRaw = join(dir.path, 'expected.raw');
    await writeRaw(expectedRaw, delta.raw);
    await qemuCompare(expectedRaw, flatVhd);
    assert.equal((await cli(['vhd', 'check', childPath])).code, 0);
  } finally {
    await dir.remove();
  }
});

test('vhd check exits non-zero listing each violation; bad input is a clear error', async () => {
  const dir = await makeTempDir();
  try {
    const { disk } = makeDisk({
      sizeBytes: 4 * MiB,
      blockSizeBytes: 2 * MiB,
      present: [0, 1],
      seed: 3,
    });
    const path = join(dir.path, 'bad.vhd');
    await writeVhdFile(disk, path);
    const bytes = await readFile(path);
    bytes[bytes.length - 512 + 300] = 1; // reserved byte: checksum and reserved rules break
    bytes.writeUInt32BE(bytes.readUInt32BE(1536), 1540); // block 1 on top of block 0
    await writeFile(path, bytes);
    const check = await cli(['vhd', 'check', path]);
    assert.equal(check.code, 3);
    assert.match(check.stdout, /footer\.checksum/);
    assert.match(check.stdout, /footer\.reserved/);
    assert.match(check.stdout, /bat\[1\]: block 1 overlaps block 0/);
    const json = await cli(['vhd', 'check', path, '--json']);
    assert.equal((JSON.parse(json.stdout) as { ok: boolean }).ok, false);
    const info = await cli(['vhd', 'info', path]);
    assert.equal(info.code, 1);
    assert.match(info.stderr, /\[VHD_BAD_CHECKSUM\].*footer\.checksum/);
  } finally {
    await dir.remove();
  }
});
