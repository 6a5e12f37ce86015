// `vmdelta nbd info|map|checksum` against qemu-nbd: the facts, the maps (equal to nbdinfo's JSON)
// and the sha256 (equal to sha256sum of the image) are printed; failures exit 1 with the code.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { join } from 'node:path';
import {
  addBitmap,
  createImage,
  makePki,
  makeTempDir,
  qemuIo,
  requireTool,
  run,
  sha256File,
  startQemuNbd,
  toRaw,
  type NbdServer,
  type TempDir,
} from '../harness/index.ts';
import { runCli } from '../../src/cli/run-cli.ts';
import type { CliIo } from '../../src/cli/io.ts';

const MiB = 1024 * 1024;
let tmp: TempDir;
let image: string;
let rawPath: string;
let server: NbdServer;

before(async () => {
  tmp = await makeTempDir('vmd-cli-');
  image = join(tmp.path, 'c.qcow2');
  await createImage(image, 'qcow2', 32 * MiB);
  await addBitmap(image, 'bm0');
  await qemuIo(image, 'qcow2', ['write -P 0x31 3M 200k', 'write -P 0x32 17M 1M']);
  rawPath = join(tmp.path, 'c.raw');
  await toRaw(image, 'qcow2', rawPath);
  server = await startQemuNbd({
    dir: tmp.path,
    image,
    format: 'qcow2',
    readOnly: true,
    bitmaps: ['bm0'],
    shared: 4,
  });
});

after(async () => {
  await server.stop();
  await tmp.remove();
});

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => (out += c.toString()));
  stderr.on('data', (c: Buffer) => (err += c.toString()));
  const io: CliIo = { stdout, stderr, env: {} };
  const code = await runCli(args, io);
  return { code, stdout: out, stderr: err };
}

test('nbd info prints size, flags, block sizes and meta contexts (text and JSON)', async () => {
  const text = await cli(['nbd', 'info', server.uri]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /size: 33554432 \(32 MiB\)/);
  assert.match(text.stdout, /read_only/);
  assert.match(text.stdout, /can_multi_conn/);
  assert.match(text.stdout, /maximum payload 33554432/);
  const json = await cli(['nbd', 'info', '--json', server.uri]);
  const info = JSON.parse(json.stdout) as {
    sizeBytes: number;
    metaContexts: string[];
    flags: string[];
  };
  assert.equal(info.sizeBytes, 32 * MiB);
  assert.deepEqual([...info.metaContexts].sort(), ['base:allocation', 'qemu:dirty-bitmap:bm0']);
});

test('nbd map equals nbdinfo --map for base:allocation and the dirty bitmap', async () => {
  for (const context of ['base:allocation', 'qemu:dirty-bitmap:bm0']) {
    const ours = await cli(['nbd', 'map', '--json', '--context', context, server.uri]);
    assert.equal(ours.code, 0, ours.stderr);
    const theirs = JSON.parse(
      await run(requireTool('nbdinfo'), ['--json', `--map=${context}`, server.uri]),
    ) as {
      offset: number;
      length: number;
      type: number;
    }[];
    const merged: { offset: number; length: number; type: number }[] = [];
    for (const e of theirs) {
      const last = merged.at(-1);
      if (last?.type === e.type) last.length += e.length;
      else merged.push({ offset: e.offset, length: e.length, type: e.type });
    }
    const mine = (
      JSON.parse(ours.stdout) as { offset: number; length: number; type: number }[]
    ).map(({ offset, length, type }) => ({
      offset,
      length,
      type,
    }));
    assert.deepEqual(mine, merged, context);
  }
  const text = await cli(['nbd', 'map', '--context', 'qemu:dirty-bitmap:bm0', server.uri]);
  assert.deepEqual(
    text.stdout
      .trim()
      .split('\n')
      .map((line) => line.trim().split(/\s+/)),
    [
      ['0', String(3 * MiB), '0', 'clean'],
      [String(3 * MiB), String(256 * 1024), '1', 'dirty'],
      [String(3 * MiB + 256 * 1024), String(14 * MiB - 256 * 1024), '0', 'clean'],
      [String(17 * MiB), String(MiB), '1', 'dirty'],
      [String(18 * MiB), String(14 * MiB), '0', 'clean'],
    ],
  );
});

test('nbd checksum prints what sha256sum prints, with 1 and 4 connections', async () => {
  const expected = await sha256File(rawPath);
  for (const connections of ['1', '4']) {
    const result = await cli(['nbd', 'checksum', '--connections', connections, server.uri]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, `${expected}  ${server.uri}\n`);
  }
});

test('failures exit 1 with the error code; TLS options are honoured', async () => {
  const missing = await cli(['nbd', 'map', '--context', 'qemu:dirty-bitmap:nope', server.uri]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /\[NBD_META_CONTEXT_UNAVAILABLE\]/);
  const bad = await cli(['nbd', 'info', 'http://nope']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /\[NBD_INVALID_URI\]/);
  const pki = await makePki(join(tmp.path, 'pki'));
  const tlsServer = await startQemuNbd({
    dir: tmp.path,
    image,
    format: 'qcow2',
    readOnly: true,
    listen: { transport: 'tcp', tls: pki },
  });
  try {
    const ok = await cli(['nbd', 'checksum', '--tls-ca', pki.caCertFile, tlsServer.uri]);
    assert.equal(ok.stdout, `${await sha256File(rawPath)}  ${tlsServer.uri}\n`);
    const pinned = await cli([
      'nbd',
      'info',
      '--json',
      '--tls-pin',
      pki.serverCertFile,
      tlsServer.uri,
    ]);
    assert.equal((JSON.parse(pinned.stdout) as { tls: boolean }).tls, true);
    const refused = await cli(['nbd', 'info', tlsServer.uri]);
    assert.match(refused.stderr, /\[NBD_TLS_CONFIG\]/);
  } finally {
    await tlsServer.stop();
  }
});
