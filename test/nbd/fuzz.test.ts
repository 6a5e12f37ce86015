// Fuzzing the decoders with fast-check: random bytes, and valid streams truncated or corrupted at
// random, give either events or a typed NbdError: never another exception, a hang, or an
// allocation beyond the input (every length is capped before bytes are awaited).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  HandshakeDecoder,
  NBD_CMD_BLOCK_STATUS,
  NBD_CMD_READ,
  NBD_OPT_GO,
  NbdError,
  NbdReplyDecoder,
  decodeInfoReply,
  decodeMetaContextReply,
  decodeServerReply,
  parseNbdUri,
  type NbdRequestShape,
} from '../../src/nbd/index.ts';
import { CollectSink } from './collect-sink.ts';
import {
  blockStatusChunk,
  dataChunk,
  errorChunk,
  greeting,
  holeChunk,
  infoExport,
  optionReply,
  simpleReply,
} from './server-wire.ts';

function typedOrNothing(run: () => void): void {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof NbdError, `untyped error: ${String(error)}`);
  }
}

const shapes = new Map<number, NbdRequestShape>([
  [1, { command: NBD_CMD_READ, offsetBytes: 0, lengthBytes: 4096 }],
  [2, { command: NBD_CMD_BLOCK_STATUS, offsetBytes: 0, lengthBytes: 1 << 30 }],
  [3, { command: NBD_CMD_READ, offsetBytes: 1 << 20, lengthBytes: 64 }],
]);

function feedReplies(parts: readonly Uint8Array[], structured: boolean): void {
  const decoder = new NbdReplyDecoder({
    sink: new CollectSink(),
    lookup: (cookie) => shapes.get(cookie),
    structuredReplies: structured,
  });
  typedOrNothing(() => {
    for (const part of parts) decoder.push(Buffer.from(part));
  });
  // Nothing is ever buffered beyond what was given.
  const given = parts.reduce((sum, part) => sum + part.length, 0);
  assert.ok(decoder.bufferedBytes <= given);
}

const validReplies = Buffer.concat([
  dataChunk(1, 0, Buffer.alloc(100, 1), false),
  holeChunk(1, 100, 3996, true),
  blockStatusChunk(
    2,
    0,
    [
      [4096, 3],
      [8192, 0],
    ],
    true,
  ),
  simpleReply(3, 0, Buffer.alloc(64, 2)),
  errorChunk(3, 5, 'boom', true, 1 << 20),
]);

test('random bytes into the reply decoder: typed errors only', () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 8 }),
      fc.boolean(),
      (parts, structured) => feedReplies(parts, structured),
    ),
    { numRuns: 3000 },
  );
});

test('valid reply streams with random corruption and truncation: typed errors only', () => {
  fc.assert(
    fc.property(
      fc.nat({ max: validReplies.length }),
      fc.array(
        fc.tuple(fc.nat({ max: validReplies.length - 1 }), fc.integer({ min: 0, max: 255 })),
        { maxLength: 4 },
      ),
      fc.nat({ max: 40 }),
      (cut, flips, chunkBytes) => {
        const bytes = Buffer.from(validReplies.subarray(0, cut));
        for (const [at, value] of flips) if (at < bytes.length) bytes[at] = value;
        const parts: Buffer[] = [];
        const step = chunkBytes + 1;
        for (let at = 0; at < bytes.length; at += step) parts.push(bytes.subarray(at, at + step));
        feedReplies(parts, true);
      },
    ),
    { numRuns: 3000 },
  );
});

const validHandshake = Buffer.concat([
  greeting(3),
  optionReply(NBD_OPT_GO, 3, infoExport(1 << 20, 1)),
  optionReply(NBD_OPT_GO, 3, Buffer.from([0, 3, 0, 0, 2, 0, 0, 0, 16, 0, 0, 0x20, 0, 0])),
  optionReply(NBD_OPT_GO, 1),
]);

function feedHandshake(bytes: Buffer): void {
  const decoder = new HandshakeDecoder();
  typedOrNothing(() => {
    decoder.push(bytes);
    if (decoder.readGreeting() === undefined) return;
    for (
      let reply = decoder.readOptionReply(NBD_OPT_GO);
      reply !== undefined;
      reply = decoder.readOptionReply(NBD_OPT_GO)
    ) {
      if (reply.replyType === 3) decodeInfoReply(reply.payload);
    }
  });
}

test('random and corrupted handshakes: typed errors only', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => feedHandshake(Buffer.from(bytes))),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(
      fc.nat({ max: validHandshake.length }),
      fc.array(
        fc.tuple(fc.nat({ max: validHandshake.length - 1 }), fc.integer({ min: 0, max: 255 })),
        { maxLength: 3 },
      ),
      (cut, flips) => {
        const bytes = Buffer.from(validHandshake.subarray(0, cut));
        for (const [at, value] of flips) if (at < bytes.length) bytes[at] = value;
        feedHandshake(bytes);
      },
    ),
    { numRuns: 3000 },
  );
});

test('option payload decoders and the URI parser: typed errors only', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 40 }), (bytes) => {
      for (const decode of [decodeInfoReply, decodeMetaContextReply, decodeServerReply])
        typedOrNothing(() => decode(Buffer.from(bytes)));
    }),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(fc.string(), (text) => {
      typedOrNothing(() => parseNbdUri(text));
      typedOrNothing(() => parseNbdUri(`nbd://${text}`));
      typedOrNothing(() => parseNbdUri(`nbd+unix:///${text}`));
    }),
    { numRuns: 2000 },
  );
});
