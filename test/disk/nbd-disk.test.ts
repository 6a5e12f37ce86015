// NbdDisk and NbdSink against real servers: the block set is what base:allocation or the dirty
// bitmap says (rounded to blocks), blocks arrive in index order with the image's bytes over 1 and
// 4 connections, a server without block status still gives a full disk, and restoring through
// NbdSink reproduces the image exactly.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  addBitmap,
  createImage,
  makeTempDir,
  qemuIo,
  sha256File,
  startNbdkit,
  startQemuNbd,
  toRaw,
  type NbdServer,
  type TempDir,
} from '../harness/index.ts';
import {
  openNbdDisk,
  openNbdSink,
  zeroBlock,
  blockLengthBytes,
  type DiskSource,
} from '../../src/disk/index.ts';
import { NbdError } from '../../src/nbd/index.ts';
import { CoreError } from '../../src/core/index.ts';

const MiB = 1024 * 1024;
const BLOCK = 2 * MiB;
let tmp: TempDir;
let image: string;
let raw: Buffer;
let rawPath: string;
let server: NbdServer;

before(async () => {
  tmp = await makeTempDir('vmd-disk-');
  image = join(tmp.path, 'd.qcow2');
  await createImage(image, 'qcow2', 63 * MiB + 512 * 1024); // partial last block
  await qemuIo(image, 'qcow2', ['write -P 0x11 0 4M']);
  await addBitmap(image, 'bm0');
  await qemuIo(image, 'qcow2', [
    'write -P 0xaa 1M 4k',
    'write -P 0xbb 10M 100k',
    'write -P 0xcc 40M 64k',
    'write -P 0xdd 63M 1',
    'write -z 20M 1M',
  ]);
  rawPath = join(tmp.path, 'd.raw');
  await toRaw(image, 'qcow2', rawPath);
  raw = await readFile(rawPath);
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

async function readAll(disk: DiskSource): Promise<number[]> {
  const seen: number[] = [];
  for await (const block of disk.readBlocks()) {
    const start = block.index * disk.blockSizeBytes;
    assert.equal(
      block.data.length,
      blockLengthBytes(block.index, disk.sizeBytes, disk.blockSizeBytes),
    );
    assert.ok(
      block.data.equals(raw.subarray(start, start + block.data.length)),
      `block ${block.index}`,
    );
    // Private memory: the client copies reply bytes into blocks (slow into shared memory).
    assert.ok(!(block.data.buffer instanceof SharedArrayBuffer), 'NBD blocks use private memory');
    seen.push(block.index);
  }
  return seen;
}

test('full mode: blocks with data per base:allocation, in order, over 1 and 4 connections', async () => {
  for (const connections of [1, 4]) {
    const disk = await openNbdDisk({
      uri: server.uri,
      blockSizeBytes: BLOCK,
      mode: { kind: 'full' },
      connections,
      maxInFlightBytes: 8 * MiB,
    });
    try {
      assert.equal(disk.kind, 'full');
      assert.equal(disk.sizeBytes, 63 * MiB + 512 * 1024);
      assert.equal(disk.blocks.blockCount, 32);
      // 0-4M data; 10M (block 5); 40M (block 20); 63M (block 31, partial). 20M was zeroed: absent.
      assert.deepEqual(disk.blocks.toArray(), [0, 1, 5, 20, 31]);
      assert.deepEqual(await readAll(disk), [0, 1, 5, 20, 31]);
      assert.deepEqual(disk.transport, {
        protocol: 'nbd',
        connections,
        tls: false,
        uri: server.uri,
        exportSizeBytes: 63 * MiB + 512 * 1024,
        multiConn: true,
      });
    } finally {
      await disk.close();
    }
  }
});

test('delta mode: blocks touched by the dirty bitmap (a zeroed range is a change too)', async () => {
  const disk = await openNbdDisk({
    uri: server.uri,
    blockSizeBytes: BLOCK,
    mode: { kind: 'delta', dirtyBitmap: 'bm0' },
    connections: 2,
  });
  try {
    assert.equal(disk.kind, 'delta');
    assert.deepEqual(disk.blocks.toArray(), [0, 5, 10, 20, 31]);
    assert.deepEqual(await readAll(disk), [0, 5, 10, 20, 31]);
  } finally {
    await disk.close();
  }
  await assert.rejects(
    openNbdDisk({
      uri: server.uri,
      blockSizeBytes: BLOCK,
      mode: { kind: 'delta', dirtyBitmap: 'missing' },
    }),
    (e: unknown) => e instanceof NbdError && e.code === 'NBD_META_CONTEXT_UNAVAILABLE',
  );
});

test('a server without structured replies: full mode reads every block', async () => {
  // nbdkit --no-sr: no structured replies, hence no block status.
  const kit = await startNbdkit({
    dir: tmp.path,
    plugin: '--no-sr',
    args: ['file', rawPath],
    readOnly: true,
  });
  try {
    const disk = await openNbdDisk({ uri: kit.uri, blockSizeBytes: BLOCK, mode: { kind: 'full' } });
    assert.equal(disk.blocks.count, 32);
    assert.equal((await readAll(disk)).length, 32);
    await disk.close();
  } finally {
    await kit.stop();
  }
});

test('readBlocks stops with CANCELLED when its signal aborts', async () => {
  const disk = await openNbdDisk({
    uri: server.uri,
    blockSizeBytes: BLOCK,
    mode: { kind: 'full' },
  });
  const controller = new AbortController();
  try {
    await assert.rejects(
      (async () => {
        for await (const block of disk.readBlocks({ signal: controller.signal })) {
          if (block.index === 1) controller.abort();
        }
      })(),
      (e: unknown) => e instanceof CoreError && e.code === 'CANCELLED',
    );
  } finally {
    await disk.close();
  }
});

test('NbdSink: restoring every block (zeros as WRITE_ZEROES) reproduces the image', async () => {
  const target = join(tmp.path, 'restore.raw');
  await createImage(target, 'raw', 63 * MiB + 512 * 1024);
  await qemuIo(target, 'raw', ['write -P 0xee 0 63M']); // stale data the restore must overwrite
  const writable = await startQemuNbd({ dir: tmp.path, image: target, format: 'raw', shared: 1 });
  try {
    const source = await openNbdDisk({
      uri: server.uri,
      blockSizeBytes: BLOCK,
      mode: { kind: 'full' },
      connections: 2,
    });
    const sink = await openNbdSink({
      uri: writable.uri,
      connections: 4,
      maxInFlightBytes: 8 * MiB,
    });
    assert.equal(sink.transport.connections, 1, 'writable export without CAN_MULTI_CONN');
    let next = 0;
    const fill = async (until: number) => {
      for (; next < until; next += 1)
        await sink.writeBlock(
          next,
          zeroBlock(blockLengthBytes(next, source.sizeBytes, BLOCK)),
          BLOCK,
        );
    };
    for await (const block of source.readBlocks()) {
      await fill(block.index);
      await sink.writeBlock(block.index, block.data, BLOCK);
      next = block.index + 1;
    }
    await fill(source.blocks.blockCount);
    await sink.close();
    await source.close();
    await assert.rejects(sink.writeBlock(0, Buffer.alloc(BLOCK), BLOCK), NbdError);
  } finally {
    await writable.stop();
  }
  assert.equal(await sha256File(target), await sha256File(rawPath));
});
