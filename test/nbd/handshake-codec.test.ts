// Handshake codec: encoders produce the spec's bytes; the incremental handshake decoder gives the
// same result for every split of every message and rejects each checklist §11.1 violation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  HandshakeDecoder,
  NbdError,
  decodeInfoReply,
  decodeMetaContextReply,
  decodeServerReply,
  encodeClientFlags,
  encodeExportNameOption,
  encodeInfoOption,
  encodeMetaContextOption,
  encodeOption,
  encodeRequestHeader,
  NBD_OPT_GO,
  NBD_OPT_SET_META_CONTEXT,
  NBD_OPT_STARTTLS,
  NBD_CMD_READ,
  NBD_REP_INFO,
} from '../../src/nbd/index.ts';
import {
  greeting,
  infoBlockSize,
  infoExport,
  metaContext,
  optionReply,
  splits,
  wire,
} from './server-wire.ts';

/** Feeds parts; the value must appear exactly when the last byte arrives, not before. */
function feed<T>(
  parts: Buffer[],
  decoder: HandshakeDecoder,
  read: () => T | undefined,
): T | undefined {
  const total = parts.reduce((sum, part) => sum + part.length, 0);
  let pushed = 0;
  let result: T | undefined;
  for (const part of parts) {
    decoder.push(part);
    pushed += part.length;
    result ??= read();
    if (pushed < total) assert.equal(result, undefined, 'decoded before all bytes arrived');
  }
  return result;
}

test('encoders write the exact bytes of the spec', () => {
  assert.equal(encodeClientFlags(3).toString('hex'), '00000003');
  assert.equal(
    encodeOption(NBD_OPT_STARTTLS).toString('hex'),
    Buffer.from('IHAVEOPT').toString('hex') + '00000005' + '00000000',
  );
  assert.equal(
    encodeExportNameOption('ab').toString('hex'),
    Buffer.from('IHAVEOPT').toString('hex') + '00000001' + '00000002' + '6162',
  );
  // GO: name length, name, info count, info types.
  assert.equal(
    encodeInfoOption(NBD_OPT_GO, 'x', [3]).subarray(16).toString('hex'),
    '00000001' + '78' + '0001' + '0003',
  );
  const meta = encodeMetaContextOption(NBD_OPT_SET_META_CONTEXT, '', ['base:allocation']);
  assert.equal(meta.readUInt32BE(8), NBD_OPT_SET_META_CONTEXT);
  assert.equal(meta.readUInt32BE(12), 4 + 4 + 4 + 15);
  assert.equal(
    meta.subarray(16).toString('hex'),
    '00000000' + '00000001' + '0000000f' + Buffer.from('base:allocation').toString('hex'),
  );
  const request = encodeRequestHeader({
    commandFlags: 4,
    command: NBD_CMD_READ,
    cookie: 2 ** 40 + 7,
    offsetBytes: 2 ** 33 + 512,
    lengthBytes: 2 * 1024 * 1024,
  });
  assert.equal(
    request.toString('hex'),
    '25609513' + '0004' + '0000' + '0000010000000007' + '0000000200000200' + '00200000',
  );
  assert.throws(() => encodeExportNameOption('a\0b'), NbdError);
  assert.throws(
    () =>
      encodeRequestHeader({
        commandFlags: 0,
        command: 0,
        cookie: 1,
        offsetBytes: -1,
        lengthBytes: 1,
      }),
    NbdError,
  );
});

test('greeting decodes at every split; bad magics, oldstyle and non-fixed servers are refused', () => {
  for (const parts of splits(greeting(3))) {
    const decoder = new HandshakeDecoder();
    assert.deepEqual(
      feed(parts, decoder, () => decoder.readGreeting()),
      { handshakeFlags: 3 },
    );
  }
  const bad = (bytes: Buffer, code: string) => {
    const decoder = new HandshakeDecoder();
    decoder.push(bytes);
    assert.throws(
      () => decoder.readGreeting(),
      (e: unknown) => e instanceof NbdError && e.code === code,
    );
  };
  bad(
    Buffer.concat([Buffer.from('NBDMAGIX'), Buffer.from('IHAVEOPT'), wire.u16(1)]),
    'NBD_HANDSHAKE',
  );
  bad(
    Buffer.concat([Buffer.from('NBDMAGIC'), wire.u64(0x00420281861253n), wire.u16(1)]),
    'NBD_HANDSHAKE',
  );
  bad(
    Buffer.concat([Buffer.from('NBDMAGIC'), Buffer.from('IHAVEOPX'), wire.u16(1)]),
    'NBD_HANDSHAKE',
  );
  bad(greeting(0), 'NBD_HANDSHAKE');
});

test('option replies decode at every split, header checked before the payload arrives', () => {
  const message = Buffer.concat([
    optionReply(NBD_OPT_GO, NBD_REP_INFO, infoExport(1 << 30, 0x58f)),
    optionReply(NBD_OPT_GO, NBD_REP_INFO, infoBlockSize(1, 4096, 32 << 20)),
    optionReply(NBD_OPT_GO, 1),
  ]);
  for (const parts of splits(message)) {
    const decoder = new HandshakeDecoder();
    const replies = [];
    for (const part of parts) {
      decoder.push(part);
      for (
        let reply = decoder.readOptionReply(NBD_OPT_GO);
        reply !== undefined;
        reply = decoder.readOptionReply(NBD_OPT_GO)
      )
        replies.push(reply);
    }
    assert.equal(replies.length, 3);
    assert.deepEqual(decodeInfoReply(replies[0]?.payload ?? Buffer.alloc(0)), {
      kind: 'export',
      sizeBytes: 1 << 30,
      transmissionFlags: 0x58f,
    });
    assert.deepEqual(decodeInfoReply(replies[1]?.payload ?? Buffer.alloc(0)), {
      kind: 'block-size',
      minimumBytes: 1,
      preferredBytes: 4096,
      maximumPayloadBytes: 32 << 20,
    });
    assert.equal(replies[2]?.replyType, 1);
  }
  // Oversize length: refused from the header alone (nothing allocated for 4 GiB).
  const decoder = new HandshakeDecoder();
  decoder.push(optionReply(NBD_OPT_GO, NBD_REP_INFO).subarray(0, 16));
  decoder.push(wire.u32(0xffffffff));
  assert.throws(() => decoder.readOptionReply(NBD_OPT_GO), /exceeds/);
  // Wrong echoed option, wrong magic.
  const echo = new HandshakeDecoder();
  echo.push(optionReply(NBD_OPT_STARTTLS, 1));
  assert.throws(
    () => echo.readOptionReply(NBD_OPT_GO),
    (e: unknown) => e instanceof NbdError && e.code === 'NBD_PROTOCOL',
  );
  const magic = new HandshakeDecoder();
  magic.push(Buffer.concat([wire.u64(1), wire.u32(NBD_OPT_GO), wire.u32(1), wire.u32(0)]));
  assert.throws(() => magic.readOptionReply(NBD_OPT_GO), /magic/);
});

test('EXPORT_NAME reply with and without the 124 zero bytes', () => {
  const body = Buffer.concat([wire.u64(4096), wire.u16(3)]);
  for (const noZeroes of [true, false]) {
    const bytes = noZeroes ? body : Buffer.concat([body, Buffer.alloc(124)]);
    for (const parts of splits(bytes)) {
      const decoder = new HandshakeDecoder();
      assert.deepEqual(
        feed(parts, decoder, () => decoder.readExportNameReply(noZeroes)),
        {
          sizeBytes: 4096,
          transmissionFlags: 3,
        },
      );
    }
  }
});

test('INFO payloads: exact lengths, HAS_FLAGS, sane block sizes; unknown types are passed over', () => {
  const protocol = (e: unknown) => e instanceof NbdError && e.code === 'NBD_PROTOCOL';
  assert.throws(
    () => decodeInfoReply(Buffer.concat([infoExport(1, 1), Buffer.alloc(1)])),
    protocol,
  );
  assert.throws(() => decodeInfoReply(infoExport(1, 0)), protocol);
  assert.throws(() => decodeInfoReply(infoExport(1, 1).subarray(0, 11)), protocol);
  assert.throws(
    () => decodeInfoReply(Buffer.concat([wire.u16(0), wire.u64(2n ** 60n), wire.u16(1)])),
    protocol,
  );
  assert.throws(() => decodeInfoReply(infoBlockSize(3, 4096, 1 << 25)), protocol); // not a power of 2
  assert.throws(() => decodeInfoReply(infoBlockSize(1 << 17, 1 << 17, 1 << 25)), protocol); // min > 64 KiB
  assert.throws(() => decodeInfoReply(infoBlockSize(512, 256, 1 << 25)), protocol); // preferred < 512
  assert.throws(() => decodeInfoReply(infoBlockSize(512, 4096, 2048)), protocol); // max < preferred
  assert.deepEqual(decodeInfoReply(infoBlockSize(512, 4096, 0xffffffff)).kind, 'block-size');
  assert.deepEqual(decodeInfoReply(Buffer.concat([wire.u16(1), Buffer.from('disk')])), {
    kind: 'name',
    name: 'disk',
  });
  assert.deepEqual(decodeInfoReply(wire.u16(77)), { kind: 'unknown', infoType: 77 });
  assert.deepEqual(decodeMetaContextReply(metaContext(2, 'qemu:dirty-bitmap:bm0')), {
    contextId: 2,
    name: 'qemu:dirty-bitmap:bm0',
  });
  assert.deepEqual(decodeServerReply(Buffer.concat([wire.u32(2), Buffer.from('abdesc')])), {
    name: 'ab',
    description: 'desc',
  });
  assert.throws(
    () => decodeServerReply(Buffer.concat([wire.u32(99), Buffer.from('ab')])),
    protocol,
  );
  assert.throws(() => decodeMetaContextReply(Buffer.alloc(3)), protocol);
});
