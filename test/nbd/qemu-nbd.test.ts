// The client against real qemu-nbd and qemu-storage-daemon: data read back equals the image
// (sha256), allocation and dirty-bitmap maps equal what was written (granule-rounded) and what
// nbdinfo reports, writes/zeroes/trim/flush land, and refusals are typed errors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  addBitmap,
  createImage,
  makeTempDir,
  qemuIo,
  requireTool,
  run,
  sha256File,
  startQemuNbd,
  startQsd,
  toRaw,
  type TempDir,
} from '../harness/index.ts';
import {
  NBD_FLAG_CAN_MULTI_CONN,
  NBD_FLAG_READ_ONLY,
  NbdError,
  iterateNbdExtents,
  openNbdClient,
  openNbdPool,
  type NbdMappedExtent,
} from '../../src/nbd/index.ts';

const MiB = 1024 * 1024;
let tmp: TempDir;
let image: string;
let rawCopy: string;

before(async () => {
  tmp = await makeTempDir('vmd-nbd-');
  image = join(tmp.path, 'd.qcow2');
  await createImage(image, 'qcow2', 64 * MiB);
  await qemuIo(image, 'qcow2', ['write -P 0x11 0 4M']); // before the bitmap: clean in bm0
  await addBitmap(image, 'bm0');
  await qemuIo(image, 'qcow2', [
    'write -P 0xaa 1M 4k',
    'write -P 0xbb 10M 100k',
    'write -P 0xcc 40M 64k',
    'write -P 0xdd 63M 1',
    'write -z 20M 1M',
  ]);
  rawCopy = join(tmp.path, 'd.raw');
  await toRaw(image, 'qcow2', rawCopy);
});

after(async () => {
  await tmp.remove();
});

function isCode(code: string) {
  return (error: unknown) => error instanceof NbdError && error.code === code;
}

async function collect(
  iterable: AsyncIterable<NbdMappedExtent>,
): Promise<[number, number, number][]> {
  const out: [number, number, number][] = [];
  for await (const e of iterable) out.push([e.offsetBytes, e.lengthBytes, e.flags]);
  return out;
}

async function nbdinfoMap(uri: string, context: string): Promise<[number, number, number][]> {
  const json = await run(requireTool('nbdinfo'), ['--json', `--map=${context}`, uri]);
  const entries = JSON.parse(json) as { offset: number; length: number; type: number }[];
  const merged: [number, number, number][] = [];
  for (const e of entries) {
    const last = merged.at(-1);
    if (last !== undefined && last[2] === e.type) last[1] += e.length;
    else merged.push([e.offset, e.length, e.type]);
  }
  return merged;
}

test('whole export read with 256 requests in flight hashes like the image; maps match nbdinfo', async (t) => {
  const server = await startQemuNbd({
    dir: tmp.path,
    image,
    format: 'qcow2',
    readOnly: true,
    bitmaps: ['bm0'],
    shared: 4,
  });
  try {
    const client = await openNbdClient({
      uri: server.uri,
      metaContexts: ['base:allocation', 'qemu:dirty-bitmap:bm0'],
      listMetaContexts: ['base:', 'qemu:'],
    });
    assert.equal(client.info.sizeBytes, 64 * MiB);
    assert.ok(client.hasFlag(NBD_FLAG_READ_ONLY));
    assert.ok(client.hasFlag(NBD_FLAG_CAN_MULTI_CONN));
    assert.equal(client.info.structuredReplies, true);
    assert.equal(client.info.blockSizes.maximumPayloadBytes, 32 * MiB);
    assert.deepEqual([...(client.info.availableMetaContexts ?? [])].sort(), [
      'base:allocation',
      'qemu:dirty-bitmap:bm0',
    ]);

    const requestBytes = 256 * 1024;
    const reads: Promise<Buffer>[] = [];
    const order: number[] = [];
    for (let i = 0; i < (64 * MiB) / requestBytes; i += 1)
      reads.push(client.read(i * requestBytes, requestBytes).then((b) => (order.push(i), b)));
    const hash = createHash('sha256');
    for (const read of reads) hash.update(await read);
    assert.equal(hash.digest('hex'), await sha256File(rawCopy));
    const outOfOrder = order.filter((value, index) => value !== index).length;
    t.diagnostic(`replies completed out of order: ${outOfOrder} of ${order.length}`);

    // One read spanning data and holes, larger than nothing in particular, odd offset.
    const span = await client.read(10 * MiB - 4096, 200 * 1024);
    const raw = await readFile(rawCopy);
    assert.ok(span.equals(raw.subarray(10 * MiB - 4096, 10 * MiB - 4096 + 200 * 1024)));

    const allocation = await collect(iterateNbdExtents(client, 'base:allocation'));
    assert.deepEqual(allocation, await nbdinfoMap(server.uri, 'base:allocation'));
    // Data where written; the rest reads as zeros (flags 3 = hole|zero, 2 = zero).
    assert.deepEqual(allocation[0], [0, 4 * MiB, 0]);
    const dirty = await collect(iterateNbdExtents(client, 'qemu:dirty-bitmap:bm0'));
    assert.deepEqual(dirty, await nbdinfoMap(server.uri, 'qemu:dirty-bitmap:bm0'));
    const G = 65536;
    assert.deepEqual(
      dirty.filter((e) => e[2] === 1).map((e) => [e[0], e[1]]),
      [
        [1 * MiB, G], // 4 KiB -> one granule
        [10 * MiB, 2 * G], // 100 KiB -> two granules
        [20 * MiB, 1 * MiB], // write -z 1M
        [40 * MiB, G],
        [63 * MiB, G], // 1 byte -> one granule
      ],
    );
    // A range inside the disk, windowed.
    const part = await collect(
      iterateNbdExtents(client, 'qemu:dirty-bitmap:bm0', {
        offsetBytes: 10 * MiB,
        lengthBytes: 1 * MiB,
      }),
    );
    assert.deepEqual(part, [
      [10 * MiB, 2 * G, 1],
      [10 * MiB + 2 * G, MiB - 2 * G, 0],
    ]);
    await client.disconnect();

    // Unknown bitmap, and an export name the server does not have.
    await assert.rejects(
      openNbdClient({ uri: server.uri, metaContexts: ['qemu:dirty-bitmap:nope'] }),
      isCode('NBD_META_CONTEXT_UNAVAILABLE'),
    );
    await assert.rejects(
      openNbdClient({ uri: server.uri.replace(':///', ':///other') }),
      isCode('NBD_EXPORT_UNKNOWN'),
    );
  } finally {
    await server.stop();
  }
});

test('pool of 4 connections over a read-only export spreads reads and hashes like the image', async () => {
  const server = await startQemuNbd({
    dir: tmp.path,
    image,
    format: 'qcow2',
    readOnly: true,
    shared: 4,
  });
  try {
    const pool = await openNbdPool({ uri: server.uri, connections: 4, maxInFlightBytes: 8 * MiB });
    assert.equal(pool.connections, 4);
    assert.equal(pool.multiConn, true);
    const reads: Promise<Buffer>[] = [];
    for (let offset = 0; offset < 64 * MiB; offset += 2 * MiB)
      reads.push(pool.read(offset, 2 * MiB));
    const hash = createHash('sha256');
    for (const read of reads) hash.update(await read);
    assert.equal(hash.digest('hex'), await sha256File(rawCopy));
    await pool.close();
    // The classic 'data'-event path (used under TLS) on a plain socket reads the same bytes, and
    // reads split into many small requests land in one buffer.
    const classic = await openNbdClient({
      uri: server.uri,
      directReads: false,
      readRequestBytes: 96 * 1024,
    });
    const parts = [];
    for (let offset = 0; offset < 64 * MiB; offset += 4 * MiB)
      parts.push(classic.read(offset, 4 * MiB));
    const again = createHash('sha256');
    for (const part of parts) again.update(await part);
    assert.equal(again.digest('hex'), await sha256File(rawCopy));
    await classic.disconnect();
  } finally {
    await server.stop();
  }
});

test('writable export without multi-conn: one connection; write, zeroes, trim, flush land', async () => {
  const target = join(tmp.path, 'w.raw');
  await createImage(target, 'raw', 8 * MiB);
  const server = await startQemuNbd({
    dir: tmp.path,
    image: target,
    format: 'raw',
    shared: 1,
    extraArgs: ['--discard=unmap'],
  });
  try {
    const pool = await openNbdPool({ uri: server.uri, connections: 4, access: 'write' });
    assert.equal(pool.connections, 1, 'no CAN_MULTI_CONN: a single connection');
    const pattern = Buffer.alloc(3 * MiB, 0x5a);
    await pool.write(1 * MiB, pattern);
    await pool.writeZeroes(2 * MiB, 64 * 1024);
    await pool.trim(3 * MiB + 512 * 1024, 512 * 1024);
    await pool.flush();
    const back = await pool.read(1 * MiB, 3 * MiB);
    const want = Buffer.from(pattern);
    want.fill(0, 1 * MiB, 1 * MiB + 64 * 1024);
    assert.ok(back.subarray(0, 2.5 * MiB).equals(want.subarray(0, 2.5 * MiB)));
    await pool.close();
    const file = await readFile(target);
    assert.ok(file.subarray(1 * MiB, 3.5 * MiB).equals(want.subarray(0, 2.5 * MiB)));
    assert.ok(file.subarray(0, 1 * MiB).equals(Buffer.alloc(1 * MiB)));
  } finally {
    await server.stop();
  }
});

test('qemu-storage-daemon export with a dirty bitmap: same map as nbdinfo, same data', async () => {
  const qsdImage = join(tmp.path, 'q.qcow2');
  await createImage(qsdImage, 'qcow2', 16 * MiB);
  await addBitmap(qsdImage, 'bm1M', 1 * MiB);
  await qemuIo(qsdImage, 'qcow2', ['write -P 0x42 5M 8k', 'write -P 0x43 9M 2M']);
  const socketPath = join(tmp.path, 'qsd-nbd.sock');
  const qsd = await startQsd({
    dir: tmp.path,
    args: [
      '--blockdev',
      `driver=file,node-name=f0,filename=${qsdImage}`,
      '--blockdev',
      'driver=qcow2,node-name=d0,file=f0,read-only=on',
      '--nbd-server',
      `addr.type=unix,addr.path=${socketPath}`,
      '--export',
      'type=nbd,id=e0,node-name=d0,name=disk,writable=off,bitmaps.0=bm1M',
    ],
  });
  try {
    const uri = `nbd+unix:///disk?socket=${socketPath}`;
    const client = await openNbdClient({ uri, metaContexts: ['qemu:dirty-bitmap:bm1M'] });
    const dirty = await collect(iterateNbdExtents(client, 'qemu:dirty-bitmap:bm1M'));
    assert.deepEqual(dirty, await nbdinfoMap(uri, 'qemu:dirty-bitmap:bm1M'));
    assert.deepEqual(
      dirty.filter((e) => e[2] === 1).map((e) => [e[0], e[1]]),
      [
        [5 * MiB, 1 * MiB],
        [9 * MiB, 2 * MiB],
      ],
    );
    const data = await client.read(9 * MiB, 2 * MiB);
    assert.ok(data.equals(Buffer.alloc(2 * MiB, 0x43)));
    await client.disconnect();
  } finally {
    await qsd.stop();
  }
});
