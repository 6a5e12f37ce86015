// Transmission decoder: every reply kind, interleaved and out of order, decodes to the same events
// for every split of the stream; each checklist §11.2–§11.5 violation is a typed NBD_PROTOCOL error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  NBD_CMD_BLOCK_STATUS,
  NBD_CMD_FLUSH,
  NBD_CMD_READ,
  NBD_CMD_WRITE,
  NbdError,
  NbdReplyDecoder,
  type NbdRequestShape,
} from '../../src/nbd/index.ts';
import { CollectSink, type Event } from './collect-sink.ts';
import {
  blockStatusChunk,
  chunk,
  dataChunk,
  errorChunk,
  holeChunk,
  noneChunk,
  simpleReply,
  splits,
  wire,
} from './server-wire.ts';

const requests = new Map<number, NbdRequestShape>([
  [1, { command: NBD_CMD_READ, offsetBytes: 4096, lengthBytes: 16 }],
  [2, { command: NBD_CMD_READ, offsetBytes: 0, lengthBytes: 8 }],
  [3, { command: NBD_CMD_BLOCK_STATUS, offsetBytes: 0, lengthBytes: 1 << 20 }],
  [4, { command: NBD_CMD_WRITE, offsetBytes: 0, lengthBytes: 512 }],
  [5, { command: NBD_CMD_READ, offsetBytes: 512, lengthBytes: 1024 }],
  [6, { command: NBD_CMD_FLUSH, offsetBytes: 0, lengthBytes: 0 }],
  [2 ** 40, { command: NBD_CMD_READ, offsetBytes: 0, lengthBytes: 4 }],
]);

function decode(parts: Buffer[], structured = true): Event[] {
  const sink = new CollectSink();
  const live = new Map(requests);
  const decoder = new NbdReplyDecoder({
    sink: {
      onSimpleReply: (c, e) => sink.onSimpleReply(c, e),
      onDataChunk: (c, o, l) => sink.onDataChunk(c, o, l),
      onData: (c, o, d) => sink.onData(c, o, d),
      onHole: (c, o, l) => sink.onHole(c, o, l),
      onBlockStatus: (c, i, x) => sink.onBlockStatus(c, i, x),
      onError: (c, e, m, o) => sink.onError(c, e, m, o),
      onDone: (c) => {
        live.delete(c);
        sink.onDone(c);
      },
    },
    lookup: (cookie) => live.get(cookie),
    structuredReplies: structured,
  });
  for (const part of parts) decoder.push(part);
  assert.equal(decoder.idle, true, 'decoder idle after a complete stream');
  return sink.events;
}

const data16 = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
// Interleaved, out of order: cookie 5's chunks around others; cookie 1 answered last.
const stream = Buffer.concat([
  holeChunk(5, 512, 512, false),
  blockStatusChunk(
    3,
    0,
    [
      [65536, 3],
      [1 << 20, 0],
    ],
    false,
  ),
  dataChunk(2, 0, Buffer.from('abcdefgh'), true),
  simpleReply(4, 0),
  blockStatusChunk(3, 2, [[1 << 20, 1]], true),
  dataChunk(5, 1024, Buffer.alloc(512, 7), false),
  errorChunk(5, 5, 'media error', false, 1100),
  noneChunk(5),
  simpleReply(6, 28),
  dataChunk(2 ** 40, 0, Buffer.from('wxyz'), true),
  dataChunk(1, 4104, data16.subarray(8), false),
  dataChunk(1, 4096, data16.subarray(0, 8), true),
]);

const expected: Event[] = [
  ['hole', 5, 512, 512],
  [
    'status',
    3,
    0,
    [
      { lengthBytes: 65536, flags: 3 },
      { lengthBytes: 1 << 20, flags: 0 },
    ],
  ],
  ['data-chunk', 2, 0, 8],
  ['data', 2, 0, Buffer.from('abcdefgh').toString('hex')],
  ['done', 2],
  ['simple', 4, 0],
  ['done', 4],
  ['status', 3, 2, [{ lengthBytes: 1 << 20, flags: 1 }]],
  ['done', 3],
  ['data-chunk', 5, 1024, 512],
  ['data', 5, 1024, Buffer.alloc(512, 7).toString('hex')],
  ['error', 5, 5, 'media error', 1100],
  ['done', 5],
  ['simple', 6, 28],
  ['done', 6],
  ['data-chunk', 2 ** 40, 0, 4],
  ['data', 2 ** 40, 0, Buffer.from('wxyz').toString('hex')],
  ['done', 2 ** 40],
  ['data-chunk', 1, 4104, 8],
  ['data', 1, 4104, data16.subarray(8).toString('hex')],
  ['data-chunk', 1, 4096, 8],
  ['data', 1, 4096, data16.subarray(0, 8).toString('hex')],
  ['done', 1],
];

test('structured replies, interleaved and out of order, decode identically at every split', () => {
  assert.deepEqual(decode([stream]), expected);
  for (const parts of splits(stream)) assert.deepEqual(decode(parts), expected);
});

test('simple replies (READ data follows only on success) decode at every split', () => {
  const simple = Buffer.concat([
    simpleReply(5, 0, Buffer.alloc(1024, 0x5a)),
    simpleReply(2, 5),
    simpleReply(1, 0, data16),
  ]);
  const want: Event[] = [
    ['simple', 5, 0],
    ['data', 5, 512, Buffer.alloc(1024, 0x5a).toString('hex')],
    ['done', 5],
    ['simple', 2, 5],
    ['done', 2],
    ['simple', 1, 0],
    ['data', 1, 4096, data16.toString('hex')],
    ['done', 1],
  ];
  for (const parts of splits(simple)) assert.deepEqual(decode(parts, false), want);
});

function rejects(bytes: Buffer, pattern: RegExp, structured = true): void {
  assert.throws(
    () => decode([bytes], structured),
    (error: unknown) =>
      error instanceof NbdError && error.code === 'NBD_PROTOCOL' && pattern.test(error.message),
  );
}

test('protocol violations are typed errors naming the problem', () => {
  rejects(Buffer.concat([wire.u32(0xdeadbeef), Buffer.alloc(12)]), /bad reply magic/);
  rejects(simpleReply(99, 0), /cookie/);
  rejects(dataChunk(99, 0, Buffer.alloc(1), true), /cookie/);
  rejects(dataChunk(2, 0, Buffer.alloc(8), true), /structured reply without negotiation/, false);
  rejects(Buffer.concat([wire.u32(0x6e8a278c), Buffer.alloc(28)]), /extended/);
  // Oversize: a 4 GiB data chunk for an 8-byte read is refused from its header.
  rejects(
    Buffer.concat([
      wire.u32(0x668e33ef),
      wire.u16(1),
      wire.u16(1),
      wire.u64(2),
      wire.u32(0xffffffff),
    ]),
    /outside the request/,
  );
  rejects(dataChunk(2, 4, Buffer.alloc(8), true), /outside the request/);
  rejects(holeChunk(2, 0, 9, true), /outside the request/);
  rejects(holeChunk(2, 0, 0, true), /empty hole/);
  rejects(chunk(2, 2, Buffer.alloc(13), true), /OFFSET_HOLE must be 12/);
  rejects(dataChunk(3, 0, Buffer.alloc(8), true), /non-READ/);
  rejects(blockStatusChunk(2, 0, [[1, 0]], true), /block status for another command/);
  rejects(chunk(3, 5, Buffer.alloc(13), true), /4 \+ 8n/);
  rejects(blockStatusChunk(3, 0, [[0, 0]], true), /length 0/);
  rejects(chunk(3, 0, Buffer.alloc(1), true), /NONE must be empty/);
  rejects(chunk(3, 0, Buffer.alloc(0), false), /NONE must carry DONE/);
  rejects(chunk(2, 7, Buffer.alloc(4), true), /unknown non-error/);
  rejects(chunk(2, 0x8001, Buffer.alloc(5), true), /bad error length/);
  rejects(
    chunk(2, 0x8001, Buffer.concat([wire.u32(5), wire.u16(9), Buffer.from('abc')]), true),
    /longer than its chunk/,
  );
  rejects(errorChunk(2, 5, 'x', true, 100), /outside the request/);
  // A chunk for a request already completed.
  rejects(Buffer.concat([dataChunk(2, 0, Buffer.alloc(8), true), noneChunk(2)]), /cookie/);
  // Block-status count cap: 2^20 + 1 extents refused from the header.
  rejects(
    Buffer.concat([
      wire.u32(0x668e33ef),
      wire.u16(1),
      wire.u16(5),
      wire.u64(3),
      wire.u32(4 + 8 * (2 ** 20 + 1)),
    ]),
    /2\^20/,
  );
});

test('an unknown error chunk type fails that request only; errno 0 counts as EIO', () => {
  const events = decode([
    Buffer.concat([
      chunk(2, 0x8123, Buffer.concat([wire.u32(0), wire.u16(2), Buffer.from('hi')]), true),
    ]),
  ]);
  assert.deepEqual(events, [
    ['error', 2, 5, 'hi', undefined],
    ['done', 2],
  ]);
});

test('after a violation the decoder stays failed', () => {
  const decoder = new NbdReplyDecoder({
    sink: new CollectSink(),
    lookup: () => undefined,
    structuredReplies: true,
  });
  assert.throws(() => decoder.push(simpleReply(1)), NbdError);
  assert.throws(() => decoder.push(Buffer.alloc(0)), NbdError);
});

test('direct reads: data read straight into the destination gives the same bytes as onData', () => {
  // Destination buffers per cookie; the "socket" alternates staged pushes and direct reads of
  // random sizes, as SocketInput does.
  const readShapes = new Map<number, NbdRequestShape>([
    [7, { command: NBD_CMD_READ, offsetBytes: 8192, lengthBytes: 3000 }],
    [8, { command: NBD_CMD_READ, offsetBytes: 0, lengthBytes: 5000 }],
  ]);
  const a = Buffer.alloc(3000);
  const b = Buffer.alloc(5000);
  for (let i = 0; i < a.length; i += 1) a[i] = (i * 13) & 0xff;
  for (let i = 0; i < b.length; i += 1) b[i] = (i * 29 + 1) & 0xff;
  const bytes = Buffer.concat([
    dataChunk(7, 8192 + 1000, a.subarray(1000), false),
    simpleReply(8, 0, b),
    dataChunk(7, 8192, a.subarray(0, 1000), true),
  ]);
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 40 }),
      (sizes) => {
        const targets = new Map<number, Buffer>([
          [7, Buffer.alloc(3000)],
          [8, Buffer.alloc(5000)],
        ]);
        const live = new Map(readShapes);
        const done: number[] = [];
        const decoder = new NbdReplyDecoder({
          sink: {
            onSimpleReply: () => undefined,
            onDataChunk: () => undefined,
            onData: (c, o, d) =>
              d.copy(targets.get(c) ?? Buffer.alloc(0), o - (live.get(c)?.offsetBytes ?? 0)),
            dataSpace: (c, o, max) => {
              const at = o - (live.get(c)?.offsetBytes ?? 0);
              return targets.get(c)?.subarray(at, at + max);
            },
            onHole: () => undefined,
            onBlockStatus: () => undefined,
            onError: () => undefined,
            onDone: (c) => {
              live.delete(c);
              done.push(c);
            },
          },
          lookup: (cookie) => live.get(cookie),
          structuredReplies: true,
        });
        const staging = Buffer.alloc(700);
        let at = 0;
        for (let step = 0; at < bytes.length; step += 1) {
          const size = sizes[step % sizes.length] ?? 1;
          const space = decoder.directSpace();
          const n = Math.min(size, bytes.length - at, space?.length ?? size);
          if (space !== undefined) {
            bytes.copy(space, 0, at, at + n);
            decoder.acceptDirect(n);
          } else {
            bytes.copy(staging, 0, at, at + n);
            decoder.push(staging.subarray(0, n));
            decoder.retainBuffered();
            staging.fill(0xee); // the staging buffer is reused: retained bytes must be copies
          }
          at += n;
        }
        assert.deepEqual(done, [8, 7]);
        assert.ok(targets.get(7)?.equals(a));
        assert.ok(targets.get(8)?.equals(b));
      },
    ),
    { numRuns: 300 },
  );
});
