// TLS direct reads (src/nbd/tls-direct-reads.ts): on this Node the TLS socket decrypts straight
// into the client's buffers; data read that way equals the image for every read shape (pipelined,
// split, into given buffers, across connections), equals what the 'data' path reads, a server
// killed mid-read gives typed errors, and a socket already read through 'data' is left alone.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Duplex } from 'node:stream';
import { TLSSocket } from 'node:tls';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makePki, makeTempDir, startQemuNbd, type Pki, type TempDir } from '../harness/index.ts';
import { NbdError, openNbdClient, openNbdPool } from '../../src/nbd/index.ts';
import { SocketInput } from '../../src/nbd/socket-input.ts';
import { attachTlsDirectReads } from '../../src/nbd/tls-direct-reads.ts';

const MiB = 1024 * 1024;
const sizeBytes = 24 * MiB;
let tmp: TempDir;
let pki: Pki;
let image: string;
let content: Buffer;

before(async () => {
  tmp = await makeTempDir('vmd-tls-direct-');
  pki = await makePki(join(tmp.path, 'pki'));
  image = join(tmp.path, 'random.raw');
  content = randomBytes(sizeBytes);
  await writeFile(image, content);
});

after(async () => {
  await tmp.remove();
});

async function withServer<T>(work: (uri: string, stop: () => Promise<void>) => Promise<T>) {
  const server = await startQemuNbd({
    dir: tmp.path,
    image,
    format: 'raw',
    readOnly: true,
    shared: 4,
    listen: { transport: 'tcp', tls: pki },
  });
  try {
    return await work(`${server.uri}?tls-certificates=${pki.clientDir}`, () => server.stop());
  } finally {
    await server.stop();
  }
}

function sha(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

test('TLS replies are decrypted into the client buffers, and read back intact in every shape', async () => {
  await withServer(async (uri) => {
    const direct = await openNbdClient({ uri, readRequestBytes: 256 * 1024 });
    const classic = await openNbdClient({ uri, directReads: false });
    try {
      assert.equal(direct.directReads, true, 'Node 20 exposes the onread internals');
      assert.equal(classic.directReads, false);
      // Pipelined whole-disk reads into given buffers (2 MiB, split into 256 KiB requests).
      const targets = Array.from({ length: sizeBytes / (2 * MiB) }, () => Buffer.alloc(2 * MiB));
      await Promise.all(targets.map((target, i) => direct.read(i * 2 * MiB, 2 * MiB, target)));
      assert.equal(sha(Buffer.concat(targets)), sha(content));
      // Odd offsets and lengths, many in flight, against the 'data' path and the file.
      const shapes = Array.from({ length: 64 }, (_, i) => ({
        offset: (i * 7919 * 512) % (sizeBytes - MiB),
        length: 512 * (1 + ((i * 31) % 700)),
      }));
      const [fromDirect, fromClassic] = await Promise.all(
        [direct, classic].map((client) =>
          Promise.all(shapes.map(({ offset, length }) => client.read(offset, length))),
        ),
      );
      shapes.forEach(({ offset, length }, i) => {
        const expected = sha(content.subarray(offset, offset + length));
        assert.equal(sha(fromDirect?.[i] ?? Buffer.alloc(0)), expected, `read ${i}`);
        assert.equal(sha(fromClassic?.[i] ?? Buffer.alloc(0)), expected, `classic read ${i}`);
      });
    } finally {
      await direct.disconnect();
      await classic.disconnect();
    }
    // A pool of 3 TLS connections reading the whole export.
    const pool = await openNbdPool({ uri, connections: 3 });
    try {
      const reads = [];
      for (let offset = 0; offset < sizeBytes; offset += MiB) reads.push(pool.read(offset, MiB));
      assert.equal(sha(Buffer.concat(await Promise.all(reads))), sha(content));
    } finally {
      await pool.close();
    }
  });
});

test('a TLS server killed mid-read: every pending read fails with a typed error, no hang', async () => {
  await withServer(async (uri, stop) => {
    const client = await openNbdClient({ uri });
    assert.equal(client.directReads, true);
    const reads = [];
    for (let round = 0; round < 8; round += 1)
      for (let offset = 0; offset < sizeBytes; offset += 2 * MiB)
        reads.push(client.read(offset, 2 * MiB));
    const settled = Promise.allSettled(reads);
    await stop();
    const results = await settled;
    const failures = results.filter((result) => result.status === 'rejected');
    assert.ok(failures.length > 0, 'some reads were still pending when the server died');
    for (const failure of failures) {
      assert.ok(failure.reason instanceof NbdError, String(failure.reason));
      assert.equal(failure.reason.code, 'NBD_CONNECTION_LOST');
    }
    client.destroy();
  });
});

test('a TLS socket already read through data events is left alone', () => {
  const socket = new TLSSocket(new Duplex({ read() {}, write(_chunk, _encoding, _done) {} }));
  try {
    socket.on('data', () => undefined);
    assert.equal(attachTlsDirectReads(socket, new SocketInput()), false);
  } finally {
    socket.destroy();
  }
});
