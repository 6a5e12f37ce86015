import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import {
  CBT_BLOCK_BYTES,
  ExportBodyCheck,
  XapiError,
  changedBlockSet,
  countChangedCbtBlocks,
  decodeCbtBitmap,
  iterateChangedRanges,
  normaliseFingerprint,
  parseJsonRpcResponse,
  parseXmlRpcValue,
  redactSecrets,
  type XmlRpcValue,
} from '../../../src/hypervisor/xapi/index.ts';
import { encodeCbtBitmap, formatXmlRpcValue, type SimValue } from '../../xapi-sim/index.ts';

/** A parsed value with ordinary prototypes, for deepEqual. */
const plain = (value: unknown): unknown => JSON.parse(JSON.stringify(value));

const typedError = (code: string) => (error: unknown) =>
  error instanceof XapiError && error.code === code;

// ---- XML-RPC values (task results) ----

test('XML-RPC: the forms XAPI prints', () => {
  assert.equal(parseXmlRpcValue('<value>OpaqueRef:abc</value>'), 'OpaqueRef:abc');
  assert.equal(parseXmlRpcValue(''), null, 'void');
  assert.equal(parseXmlRpcValue('<value/>'), '');
  assert.equal(
    parseXmlRpcValue('<value><string>a &lt;b&gt; &amp; &#233;&#x41;</string></value>'),
    'a <b> & éA',
  );
  assert.equal(parseXmlRpcValue('<value><i8>-9007199254740991</i8></value>'), -9007199254740991);
  assert.equal(parseXmlRpcValue('<value><boolean>1</boolean></value>'), true);
  assert.equal(parseXmlRpcValue('<value><double>60.1</double></value>'), 60.1);
  assert.equal(
    parseXmlRpcValue('<value><dateTime.iso8601>20240131T12:34:56Z</dateTime.iso8601></value>'),
    '20240131T12:34:56Z',
  );
  assert.deepEqual(
    plain(
      parseXmlRpcValue(
        '<value><array><data><value>OpaqueRef:1</value>\n <value><struct><member><name>k</name><value><int>4</int></value></member></struct></value></data></array></value>',
      ),
    ),
    ['OpaqueRef:1', { k: 4 }],
  );
  assert.deepEqual(parseXmlRpcValue('<value><array><data/></array></value>'), []);
  assert.equal(parseXmlRpcValue('<value><nil/></value>'), null);
  const proto = parseXmlRpcValue(
    '<value><struct><member><name>__proto__</name><value>x</value></member></struct></value>',
  );
  assert.equal((proto as Record<string, unknown>)['__proto__'], 'x');
  assert.equal(Object.getPrototypeOf({}), Object.prototype, 'no prototype pollution');
});

test('XML-RPC: malformed input is XAPI_XMLRPC_INVALID', () => {
  for (const bad of [
    '<value>',
    '<value><int>1.5</int></value>',
    '<value><int>99999999999999999999</int></value>',
    '<value><boolean>2</boolean></value>',
    '<value><foo>1</foo></value>',
    '<value>a</value>trailing',
    '<value>&bogus;</value>',
    '<value>&#xD800;</value>',
    '<value a="1">x</value>',
    '<value><array><data><value>1</value></array></value>',
    '<value>text<string>x</string></value>',
    '<value>' +
      '<array><data><value>'.repeat(100) +
      '1' +
      '</value></data></array>'.repeat(100) +
      '</value>',
  ]) {
    assert.throws(() => parseXmlRpcValue(bad), typedError('XAPI_XMLRPC_INVALID'), bad.slice(0, 60));
  }
});

const simValue: fc.Arbitrary<SimValue> = fc.letrec<{ value: SimValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.string({ unit: 'grapheme' }),
    fc.integer(),
    fc.boolean(),
    fc.constant(null),
    fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Number.isInteger(d)),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.string(), tie('value'), { maxKeys: 4 }),
  ),
})).value;

test('XML-RPC fuzz: what the simulator prints parses back to the same value', () => {
  fc.assert(
    fc.property(simValue, (value) => {
      const parsed = parseXmlRpcValue(formatXmlRpcValue(value));
      assert.deepEqual(
        JSON.parse(JSON.stringify(parsed)),
        JSON.parse(JSON.stringify(value)) as XmlRpcValue,
      );
    }),
    { numRuns: 400 },
  );
});

test('XML-RPC fuzz: random and truncated input gives a value or a typed error, never a crash', () => {
  fc.assert(
    fc.property(simValue, fc.nat(), (value, cut) => {
      const text = formatXmlRpcValue(value);
      const truncated = text.slice(0, cut % (text.length + 1));
      try {
        parseXmlRpcValue(truncated);
      } catch (error) {
        assert.ok(typedError('XAPI_XMLRPC_INVALID')(error), String(error));
      }
    }),
    { numRuns: 400 },
  );
  fc.assert(
    fc.property(
      fc.string({
        unit: fc.constantFrom(
          '<',
          '>',
          '/',
          'value',
          'array',
          'data',
          'struct',
          'int',
          '&',
          ';',
          'a',
          ' ',
        ),
        maxLength: 60,
      }),
      (text) => {
        try {
          parseXmlRpcValue(text);
        } catch (error) {
          assert.ok(typedError('XAPI_XMLRPC_INVALID')(error), String(error));
        }
      },
    ),
    { numRuns: 1000 },
  );
});

// ---- CBT bitmaps ----

test('CBT bitmap: MSB first, block 0 first, clamped to the virtual size', () => {
  // bits: block 0 and block 9 (byte 1, mask 0x40), and block 10.
  const bitmap = decodeCbtBitmap(
    Buffer.from([0x80, 0x60]).toString('base64'),
    11 * CBT_BLOCK_BYTES - 100,
  );
  assert.deepEqual(
    [...iterateChangedRanges(bitmap)],
    [
      { offsetBytes: 0, lengthBytes: CBT_BLOCK_BYTES },
      { offsetBytes: 9 * CBT_BLOCK_BYTES, lengthBytes: 2 * CBT_BLOCK_BYTES - 100 },
    ],
  );
  assert.equal(countChangedCbtBlocks(bitmap), 3);
  assert.deepEqual(changedBlockSet(bitmap, 2 * 1024 * 1024).toArray(), [0]);
  // Bits beyond the disk are ignored.
  const past = decodeCbtBitmap(Buffer.from([0x01, 0xff]).toString('base64'), 4 * CBT_BLOCK_BYTES);
  assert.deepEqual([...iterateChangedRanges(past)], []);
  assert.throws(
    () => decodeCbtBitmap('AA==', 9 * CBT_BLOCK_BYTES),
    typedError('XAPI_CBT_BITMAP_INVALID'),
  );
  assert.throws(
    () => decodeCbtBitmap('A*==', CBT_BLOCK_BYTES),
    typedError('XAPI_CBT_BITMAP_INVALID'),
  );
  assert.throws(
    () => decodeCbtBitmap('AAA', CBT_BLOCK_BYTES),
    typedError('XAPI_CBT_BITMAP_INVALID'),
  );
  assert.equal(countChangedCbtBlocks(decodeCbtBitmap('', 0)), 0);
});

test('CBT fuzz: encoded block sets decode to exactly those blocks; regrouping covers them', () => {
  fc.assert(
    fc.property(
      fc
        .integer({ min: 1, max: 3000 })
        .chain((blocks) =>
          fc.tuple(
            fc.constant(blocks),
            fc.integer({ min: 0, max: CBT_BLOCK_BYTES - 1 }),
            fc.uniqueArray(fc.integer({ min: 0, max: blocks - 1 }), { maxLength: 200 }),
          ),
        ),
      fc.constantFrom(CBT_BLOCK_BYTES, 2 * 1024 * 1024, 512 * 1024),
      ([blockCount, shortBytes, blocks], groupBytes) => {
        const virtualSizeBytes = Math.max(1, blockCount * CBT_BLOCK_BYTES - shortBytes);
        const expected = [...new Set(blocks)]
          .filter((b) => b * CBT_BLOCK_BYTES < virtualSizeBytes)
          .sort((a, b) => a - b);
        const bitmap = decodeCbtBitmap(
          encodeCbtBitmap(new Set(blocks), virtualSizeBytes),
          virtualSizeBytes,
        );
        const got: number[] = [];
        let previousEnd = -1;
        for (const range of iterateChangedRanges(bitmap)) {
          assert.ok(range.offsetBytes > previousEnd, 'ranges ascending and not adjacent');
          previousEnd = range.offsetBytes + range.lengthBytes;
          assert.ok(previousEnd <= virtualSizeBytes);
          for (
            let b = range.offsetBytes / CBT_BLOCK_BYTES;
            b * CBT_BLOCK_BYTES < previousEnd;
            b += 1
          )
            got.push(b);
        }
        assert.deepEqual(got, expected);
        const groups = changedBlockSet(bitmap, groupBytes);
        const expectedGroups = [
          ...new Set(expected.map((b) => Math.floor((b * CBT_BLOCK_BYTES) / groupBytes))),
        ];
        assert.deepEqual(groups.toArray(), expectedGroups);
      },
    ),
    { numRuns: 300 },
  );
});

test('CBT fuzz: arbitrary text is decoded or refused with a typed error', () => {
  fc.assert(
    fc.property(
      fc.string({ maxLength: 200 }),
      fc.integer({ min: 0, max: 1 << 30 }),
      (text, sizeBytes) => {
        try {
          const bitmap = decodeCbtBitmap(text, sizeBytes);
          for (const range of iterateChangedRanges(bitmap))
            assert.ok(range.offsetBytes + range.lengthBytes <= sizeBytes);
        } catch (error) {
          assert.ok(typedError('XAPI_CBT_BITMAP_INVALID')(error), String(error));
        }
      },
    ),
    { numRuns: 1000 },
  );
});

// ---- JSON-RPC replies ----

test('JSON-RPC: 2.0 and 1.0 error forms, results, and malformed replies', () => {
  assert.deepEqual(parseJsonRpcResponse('{"jsonrpc":"2.0","result":"OpaqueRef:x","id":3}', 3), {
    ok: true,
    result: 'OpaqueRef:x',
  });
  assert.deepEqual(
    parseJsonRpcResponse(
      '{"jsonrpc":"2.0","error":{"code":1,"message":"VDI_IN_USE","data":["OpaqueRef:v","destroy"]},"id":4}',
      4,
    ),
    { ok: false, xapiCode: 'VDI_IN_USE', xapiParams: ['OpaqueRef:v', 'destroy'] },
  );
  assert.deepEqual(
    parseJsonRpcResponse('{"result":null,"error":["HOST_IS_SLAVE","10.0.0.1"],"id":5}', 5),
    {
      ok: false,
      xapiCode: 'HOST_IS_SLAVE',
      xapiParams: ['10.0.0.1'],
    },
  );
  for (const bad of [
    'nope',
    '[]',
    '{"id":1}',
    '{"error":{"code":1},"id":1}',
    '{"result":1,"id":2}',
    '{"error":[1],"id":1}',
  ]) {
    assert.throws(() => parseJsonRpcResponse(bad, 1), typedError('XAPI_PROTOCOL'), bad);
  }
  fc.assert(
    fc.property(fc.json(), (json) => {
      try {
        parseJsonRpcResponse(json, 1);
      } catch (error) {
        assert.ok(typedError('XAPI_PROTOCOL')(error), String(error));
      }
    }),
    { numRuns: 500 },
  );
});

// ---- export body check, fingerprints, redaction ----

async function drain(
  chunks: readonly Buffer[],
  expectedBytes: number | undefined,
): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const chunk of Readable.from(chunks).pipe(new ExportBodyCheck(expectedBytes)))
    out.push(chunk as Buffer);
  return Buffer.concat(out);
}

test('export check: embedded HTTP error split across chunks, truncation, pass-through', async () => {
  await assert.rejects(
    drain([Buffer.from('HT'), Buffer.from('TP/1.1 500 Internal Error\r\n')], undefined),
    typedError('XAPI_EMBEDDED_ERROR'),
  );
  await assert.rejects(drain([Buffer.from('abc')], 10), typedError('XAPI_STREAM_TRUNCATED'));
  await assert.rejects(drain([Buffer.from('abcdef')], 3), typedError('XAPI_PROTOCOL'));
  assert.equal((await drain([Buffer.from('HT')], 2)).toString(), 'HT', 'a 2-byte body is data');
  await fc.assert(
    fc.asyncProperty(fc.array(fc.uint8Array({ maxLength: 9 }), { maxLength: 8 }), async (parts) => {
      const whole = Buffer.concat(parts.map((p) => Buffer.from(p)));
      if (whole.subarray(0, 5).toString('latin1') === 'HTTP/') return;
      const out = await drain(
        parts.map((p) => Buffer.from(p)),
        whole.length,
      );
      assert.ok(out.equals(whole));
    }),
    { numRuns: 200 },
  );
});

test('fingerprints normalise; secrets are redacted from text', () => {
  const hex = 'ab'.repeat(32);
  assert.equal(normaliseFingerprint(hex), 'AB:'.repeat(31) + 'AB');
  assert.equal(normaliseFingerprint(normaliseFingerprint(hex)), 'AB:'.repeat(31) + 'AB');
  assert.throws(() => normaliseFingerprint('abcd'), typedError('XAPI_TLS_PIN_MISMATCH'));
  assert.equal(
    redactSecrets('x OpaqueRef:s3cr3t y OpaqueRef:s3cr3t', ['OpaqueRef:s3cr3t']),
    'x <redacted> y <redacted>',
  );
});
