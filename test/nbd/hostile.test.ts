// A hostile or odd server (a scripted node `net` server): out-of-order replies are matched by
// cookie; the EXPORT_NAME fallback works; bad magics, oversize lengths, unknown cookies, silence
// and early close all end in a typed error for every request in flight, never a hang.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { makeTempDir } from '../harness/index.ts';
import { NbdError, openNbdClient, type NbdClient } from '../../src/nbd/index.ts';
import { startFakeNbdServer, type FakeConnection } from './fake-server.ts';
import { dataChunk, holeChunk, optionReply, simpleReply, wire, greeting } from './server-wire.ts';

const SIZE = 1 << 20;
/** Deterministic content of the fake export. */
function content(offsetBytes: number, lengthBytes: number): Buffer {
  const out = Buffer.alloc(lengthBytes);
  for (let i = 0; i < lengthBytes; i += 1)
    out[i] = ((offsetBytes + i) * 7 + ((offsetBytes + i) >> 9)) & 0xff;
  return out;
}

async function withServer(
  script: (c: FakeConnection) => Promise<void>,
  body: (uri: string) => Promise<void>,
): Promise<void> {
  const tmp = await makeTempDir('vmd-nbd-');
  const server = await startFakeNbdServer(tmp.path, script);
  try {
    await body(server.uri);
  } finally {
    await server.close();
    await tmp.remove();
  }
}

function isCode(code: string) {
  return (error: unknown) => error instanceof NbdError && error.code === code;
}

test('64 reads in flight answered in reverse order, split into data and hole chunks, match by cookie', async () => {
  const requestCount = 64;
  await withServer(
    async (c) => {
      await c.handshake({ sizeBytes: SIZE });
      const requests = [];
      for (let i = 0; i < requestCount; i += 1) requests.push(await c.readRequest());
      for (const r of requests.reverse()) {
        const half = r.lengthBytes / 2;
        const cookie = Number(r.cookie);
        // Second half first, then first half: chunks out of order inside a request too.
        c.write(holeChunk(cookie, r.offsetBytes + half, half / 2, false));
        c.write(
          dataChunk(
            cookie,
            r.offsetBytes + half + half / 2,
            content(r.offsetBytes + half + half / 2, half / 2),
            false,
          ),
        );
        c.write(dataChunk(cookie, r.offsetBytes, content(r.offsetBytes, half), true));
      }
      await c.readRequest(); // DISC
    },
    async (uri) => {
      const client = await openNbdClient({ uri });
      const completion: number[] = [];
      const reads = Array.from({ length: requestCount }, (_, i) =>
        client.read(i * 16384, 16384).then((data) => {
          completion.push(i);
          return data;
        }),
      );
      const results = await Promise.all(reads);
      assert.deepEqual(
        completion,
        Array.from({ length: requestCount }, (_, i) => requestCount - 1 - i),
      );
      results.forEach((data, i) => {
        const want = content(i * 16384, 16384);
        want.fill(0, 8192, 12288);
        assert.ok(data.equals(want), `read ${i}`);
      });
      await client.disconnect();
    },
  );
});

test('GO refused with ERR_UNSUP: EXPORT_NAME fallback, simple replies', async () => {
  await withServer(
    async (c) => {
      await c.handshake({ sizeBytes: SIZE, structured: false, goUnsupported: true });
      for (;;) {
        const r = await c.readRequest();
        if (r.command === 2) return;
        c.write(simpleReply(Number(r.cookie), 0, content(r.offsetBytes, r.lengthBytes)));
      }
    },
    async (uri) => {
      const client = await openNbdClient({ uri });
      assert.equal(client.info.negotiatedWith, 'export-name');
      assert.equal(client.info.structuredReplies, false);
      assert.equal(client.info.sizeBytes, SIZE);
      const parts = await Promise.all([client.read(0, 65536), client.read(65536, 65536)]);
      assert.equal(
        createHash('sha256').update(Buffer.concat(parts)).digest('hex'),
        createHash('sha256').update(content(0, 131072)).digest('hex'),
      );
      await client.disconnect();
    },
  );
});

/** Opens a client to a server that, after the handshake, answers the first request with `reply`. */
async function expectTransmissionFailure(
  reply: (cookie: number) => Buffer,
  code: string,
): Promise<void> {
  await withServer(
    async (c) => {
      await c.handshake({ sizeBytes: SIZE });
      const first = await c.readRequest();
      await c.readRequest();
      c.write(reply(Number(first.cookie)));
      await c.read(1 << 30).catch(() => undefined);
    },
    async (uri) => {
      const client: NbdClient = await openNbdClient({ uri, requestTimeoutMs: 5000 });
      const results = await Promise.allSettled([client.read(0, 4096), client.read(4096, 4096)]);
      for (const result of results) {
        assert.equal(result.status, 'rejected');
        assert.ok(isCode(code)(result.reason), String(result.reason));
      }
      assert.equal(client.isOpen, false);
      await assert.rejects(client.read(0, 512), isCode(code));
    },
  );
}

test('bad reply magic: NBD_PROTOCOL for every request in flight', () =>
  expectTransmissionFailure(
    () => Buffer.concat([wire.u32(0x12345678), Buffer.alloc(12)]),
    'NBD_PROTOCOL',
  ));

test('unknown cookie: NBD_PROTOCOL', () =>
  expectTransmissionFailure(
    (cookie) => simpleReply(cookie + 1000, 0, Buffer.alloc(4096)),
    'NBD_PROTOCOL',
  ));

test('oversize chunk length (4 GiB for a 4 KiB read): NBD_PROTOCOL, nothing allocated', () =>
  expectTransmissionFailure(
    (cookie) =>
      Buffer.concat([
        wire.u32(0x668e33ef),
        wire.u16(1),
        wire.u16(1),
        wire.u64(cookie),
        wire.u32(0xfffffff0),
      ]),
    'NBD_PROTOCOL',
  ));

test('server closes mid-reply: NBD_CONNECTION_LOST (retryable)', async () => {
  await withServer(
    async (c) => {
      await c.handshake({ sizeBytes: SIZE });
      const r = await c.readRequest();
      c.write(dataChunk(Number(r.cookie), 0, Buffer.alloc(100), false).subarray(0, 60));
      setTimeout(() => c.socket.destroy(), 20);
    },
    async (uri) => {
      const client = await openNbdClient({ uri });
      await assert.rejects(
        client.read(0, 4096),
        (e: unknown) => isCode('NBD_CONNECTION_LOST')(e) && (e as NbdError).retryable,
      );
    },
  );
});

test('a silent server: NBD_TIMEOUT on requests, and on the handshake', async () => {
  await withServer(
    async (c) => {
      await c.handshake({ sizeBytes: SIZE });
      await c.read(1 << 30).catch(() => undefined);
    },
    async (uri) => {
      const client = await openNbdClient({ uri, requestTimeoutMs: 200 });
      const started = Date.now();
      await assert.rejects(client.read(0, 4096), isCode('NBD_TIMEOUT'));
      assert.ok(Date.now() - started < 3000);
    },
  );
  await withServer(
    async (c) => {
      await c.read(1 << 30).catch(() => undefined);
    },
    async (uri) => {
      await assert.rejects(openNbdClient({ uri, connectTimeoutMs: 200 }), isCode('NBD_TIMEOUT'));
    },
  );
});

test('handshake violations: bad magic, oldstyle, oversize option reply, GO without INFO_EXPORT', async () => {
  const cases: [string, (c: FakeConnection) => Promise<void>, string][] = [
    ['bad magic', async (c) => c.write(Buffer.alloc(18, 0x41)), 'NBD_HANDSHAKE'],
    [
      'oldstyle',
      async (c) =>
        c.write(
          Buffer.concat([
            Buffer.from('NBDMAGIC'),
            wire.u64(0x00420281861253n),
            wire.u64(1),
            Buffer.alloc(130),
          ]),
        ),
      'NBD_HANDSHAKE',
    ],
    [
      'oversize option reply',
      async (c) => {
        c.write(greeting(3));
        await c.read(4);
        await c.readOption();
        c.write(
          Buffer.concat([
            wire.u64(0x0003e889045565a9n),
            wire.u32(8),
            wire.u32(1),
            wire.u32(0x7fffffff),
          ]),
        );
      },
      'NBD_PROTOCOL',
    ],
    [
      'GO without INFO_EXPORT',
      async (c) => {
        c.write(greeting(3));
        await c.read(4);
        await c.readOption();
        c.write(optionReply(8, 1));
        await c.readOption();
        c.write(optionReply(7, 1));
      },
      'NBD_PROTOCOL',
    ],
    [
      'TLS required',
      async (c) => {
        c.write(greeting(3));
        await c.read(4);
        await c.readOption();
        c.write(optionReply(8, 0x80000005));
      },
      'NBD_TLS_REQUIRED',
    ],
    [
      'unknown export',
      async (c) => {
        c.write(greeting(3));
        await c.read(4);
        await c.readOption();
        c.write(optionReply(8, 1));
        await c.readOption();
        c.write(optionReply(7, 0x80000006, Buffer.from('no such export')));
      },
      'NBD_EXPORT_UNKNOWN',
    ],
  ];
  for (const [name, script, code] of cases) {
    await withServer(
      async (c) => {
        await script(c);
        await c.read(1 << 30).catch(() => undefined);
      },
      async (uri) => {
        await assert.rejects(openNbdClient({ uri, connectTimeoutMs: 3000 }), isCode(code), name);
      },
    );
  }
});

test('client-side checks refuse bad requests before sending', async () => {
  await withServer(
    async (c) => {
      await c.handshake({ sizeBytes: SIZE, flags: 0x03 }); // HAS_FLAGS | READ_ONLY
      await c.read(1 << 30).catch(() => undefined);
    },
    async (uri) => {
      const client = await openNbdClient({ uri });
      await assert.rejects(client.read(SIZE - 512, 1024), isCode('NBD_INVALID_REQUEST'));
      await assert.rejects(client.read(0, 0), isCode('NBD_INVALID_REQUEST'));
      await assert.rejects(client.read(0, 2 << 20), isCode('NBD_INVALID_REQUEST'));
      await assert.rejects(client.write(0, Buffer.alloc(512)), isCode('NBD_NOT_SUPPORTED'));
      await assert.rejects(client.flush(), isCode('NBD_NOT_SUPPORTED'));
      await assert.rejects(client.trim(0, 512), isCode('NBD_NOT_SUPPORTED'));
      await assert.rejects(client.blockStatus(0, 512), isCode('NBD_NOT_SUPPORTED'));
      assert.equal(client.inFlightCount, 0);
      client.destroy();
    },
  );
});
