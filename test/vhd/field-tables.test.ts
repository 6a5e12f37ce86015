import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FieldTable } from '../../src/binary/index.ts';
import {
  DiskType,
  chsSizeBytes,
  computeChsGeometry,
  computeVhdChecksum,
  decodeFooter,
  decodeHeader,
  decodeUtf16be,
  encodeFooter,
  encodeHeader,
  encodeUtf16be,
  footerTable,
  fromVhdTimestamp,
  headerTable,
  parentLocatorTable,
  PlatformCode,
  toVhdTimestamp,
} from '../../src/vhd/index.ts';

// Offsets and sizes transcribed from the Microsoft VHD specification v1.0 (vhd.md §2, §3).
const specFooter: [string, number, number][] = [
  ['cookie', 0, 8],
  ['features', 8, 4],
  ['fileFormatVersion', 12, 4],
  ['dataOffset', 16, 8],
  ['timestamp', 24, 4],
  ['creatorApplication', 28, 4],
  ['creatorVersion', 32, 4],
  ['creatorHostOs', 36, 4],
  ['originalSize', 40, 8],
  ['currentSize', 48, 8],
  ['cylinders', 56, 2],
  ['heads', 58, 1],
  ['sectorsPerTrack', 59, 1],
  ['diskType', 60, 4],
  ['checksum', 64, 4],
  ['uniqueId', 68, 16],
  ['savedState', 84, 1],
  ['hidden', 85, 1],
  ['reserved', 86, 426],
];
const specHeader: [string, number, number][] = [
  ['cookie', 0, 8],
  ['dataOffset', 8, 8],
  ['tableOffset', 16, 8],
  ['headerVersion', 24, 4],
  ['maxTableEntries', 28, 4],
  ['blockSize', 32, 4],
  ['checksum', 36, 4],
  ['parentUuid', 40, 16],
  ['parentTimestamp', 56, 4],
  ['reserved1', 60, 4],
  ['parentUnicodeName', 64, 512],
  ...Array.from({ length: 8 }, (_, i): [string, number, number] => [
    `parentLocator${i}`,
    576 + 24 * i,
    24,
  ]),
  ['reserved2', 768, 256],
];

test('field tables match the spec offsets and sizes', () => {
  const footer = footerTable.fields.map((f): [string, number, number] => [
    f.name,
    f.offsetBytes,
    f.sizeBytes,
  ]);
  assert.deepEqual(footer, specFooter);
  assert.equal(footerTable.totalBytes, 512);
  const header = headerTable.fields.map((f): [string, number, number] => [
    f.name,
    f.offsetBytes,
    f.sizeBytes,
  ]);
  assert.deepEqual(header, specHeader);
  assert.equal(headerTable.totalBytes, 1024);
  assert.deepEqual(
    parentLocatorTable.fields.map((f) => [f.name, f.offsetBytes, f.sizeBytes]),
    [
      ['platformCode', 0, 4],
      ['dataSpace', 4, 4],
      ['dataLength', 8, 4],
      ['reserved', 12, 4],
      ['dataOffset', 16, 8],
    ],
  );
});

test('FieldTable refuses gaps, overlaps, bad integer sizes and short coverage', () => {
  assert.throws(
    () => new FieldTable('x', 4, [{ name: 'a', offsetBytes: 1, sizeBytes: 3, type: 'bytes' }]),
    /starts at 1/,
  );
  assert.throws(
    () => new FieldTable('x', 4, [{ name: 'a', offsetBytes: 0, sizeBytes: 2, type: 'u32' }]),
    /u32 of 2/,
  );
  assert.throws(
    () => new FieldTable('x', 8, [{ name: 'a', offsetBytes: 0, sizeBytes: 4, type: 'u32' }]),
    /cover 4/,
  );
  const table = new FieldTable('x', 4, [
    { name: 'a', offsetBytes: 0, sizeBytes: 2, type: 'u16' },
    { name: 'b', offsetBytes: 2, sizeBytes: 2, type: 'bytes' },
  ]);
  const buffer = Buffer.alloc(4);
  table.writeUint(buffer, 'a', 0x1234);
  assert.equal(buffer.readUInt16BE(0), 0x1234);
  assert.throws(() => table.writeUint(buffer, 'a', 0x10000), /cannot hold/);
  assert.throws(() => table.readUint(Buffer.alloc(3), 'a'), /needs 4 bytes/);
});

test('checksum is the one complement of the byte sum without the checksum field', () => {
  const bytes = Buffer.alloc(16, 1);
  bytes.writeUInt32BE(0xdeadbeef, 4);
  assert.equal(computeVhdChecksum(bytes, 4), ~12 >>> 0);
});

test('CHS geometry follows the spec algorithm', () => {
  // vhd.md §6: 1 GiB -> 2080/16/63 (floors below the size); max geometry above 127.5 GiB.
  assert.deepEqual(computeChsGeometry(1024 ** 3), {
    cylinders: 2080,
    heads: 16,
    sectorsPerTrack: 63,
  });
  assert.equal(chsSizeBytes(computeChsGeometry(1024 ** 3)), 1_073_479_680);
  assert.deepEqual(computeChsGeometry(200 * 1024 ** 3), {
    cylinders: 65535,
    heads: 16,
    sectorsPerTrack: 255,
  });
  assert.equal(chsSizeBytes(computeChsGeometry(2000 * 1024 ** 3)), 136_899_993_600); // 65535 × 16 × 255 × 512 (vhd.md §6 says 136,902,082,560 = 65536 cylinders)
  // A small disk uses 17 sectors per track and at least 4 heads.
  assert.deepEqual(computeChsGeometry(10 * 1024 * 1024), {
    cylinders: 301,
    heads: 4,
    sectorsPerTrack: 17,
  });
});

test('VHD timestamps count seconds since 2000-01-01 UTC', () => {
  assert.equal(toVhdTimestamp(new Date('2000-01-01T00:00:00Z')), 0);
  assert.equal(toVhdTimestamp(new Date('2000-01-01T01:00:00Z')), 3600);
  assert.equal(fromVhdTimestamp(86400).toISOString(), '2000-01-02T00:00:00.000Z');
});

test('footer and header round-trip through encode and decode', () => {
  const footerBytes = encodeFooter({
    features: 2,
    fileFormatVersion: 0x10000,
    dataOffset: 512n,
    timestamp: 1234,
    creatorApplication: 'tap\0',
    creatorVersion: 7,
    creatorHostOs: 'Wi2k',
    originalSizeBytes: 10 * 1024 * 1024,
    currentSizeBytes: 10 * 1024 * 1024,
    geometry: computeChsGeometry(10 * 1024 * 1024),
    diskType: DiskType.differencing,
    uniqueId: '0123abcd-4567-89ab-cdef-0123456789ab',
  });
  assert.equal(footerBytes.length, 512);
  assert.equal(footerBytes.subarray(0, 8).toString(), 'conectix');
  const footer = decodeFooter(footerBytes);
  assert.equal(footer.uniqueId, '0123abcd-4567-89ab-cdef-0123456789ab');
  assert.equal(footer.sizeBytes, 10 * 1024 * 1024);
  assert.equal(footer.timestamp, 1234);
  assert.equal(footerBytes.readUInt32BE(60), 4);
  const headerBytes = encodeHeader({
    tableOffsetBytes: 1536,
    maxTableEntries: 5,
    blockSizeBytes: 2 * 1024 * 1024,
    headerVersion: 0x10000,
    parentUuid: '11111111-2222-3333-4444-555555555555',
    parentTimestamp: 99,
    parentUnicodeName: 'pärent.vhd',
    parentLocators: [
      {
        platformCode: PlatformCode.W2ru,
        dataSpace: 1,
        dataLengthBytes: 20,
        reserved: 0,
        dataOffsetBytes: 3584n,
      },
    ],
  });
  // Parent unicode name is UTF-16 big-endian at offset 64.
  assert.deepEqual([...headerBytes.subarray(64, 68)], [0, 0x70, 0, 0xe4]);
  const header = decodeHeader(headerBytes, 10 * 1024 * 1024);
  assert.equal(header.parentUnicodeName, 'pärent.vhd');
  assert.equal(header.parentUuid, '11111111-2222-3333-4444-555555555555');
  const [locator] = header.parentLocators;
  assert.equal(locator?.platformCode, PlatformCode.W2ru);
  assert.equal(locator.dataOffsetBytes, 3584n);
  assert.equal(headerBytes.readBigUInt64BE(8), 0xffffffffffffffffn);
  assert.equal(decodeUtf16be(encodeUtf16be('a/b')), 'a/b');
});

test('decoders name the field they reject', () => {
  const good = encodeFooter({
    features: 2,
    fileFormatVersion: 0x10000,
    dataOffset: 512n,
    timestamp: 0,
    creatorApplication: 'tap\0',
    creatorVersion: 0,
    creatorHostOs: 'Wi2k',
    originalSizeBytes: 1024 * 1024,
    currentSizeBytes: 1024 * 1024,
    geometry: computeChsGeometry(1024 * 1024),
    diskType: DiskType.dynamic,
    uniqueId: '00000000-0000-0000-0000-000000000001',
  });
  const badSum = Buffer.from(good);
  badSum[100] = 1;
  assert.throws(() => decodeFooter(badSum), {
    code: 'VHD_BAD_CHECKSUM',
    details: {
      field: 'footer.checksum',
      stored: good.readUInt32BE(64),
      computed: (good.readUInt32BE(64) - 1) >>> 0,
    },
  });
  assert.throws(() => decodeFooter(good.subarray(0, 100)), { code: 'VHD_TRUNCATED' });
  const badCookie = Buffer.from(good);
  badCookie[0] = 0x41;
  assert.throws(() => decodeFooter(badCookie), { code: 'VHD_BAD_COOKIE' });
  const header = encodeHeader({
    tableOffsetBytes: 1536,
    maxTableEntries: 1,
    blockSizeBytes: 3 * 1024 * 1024,
    headerVersion: 0x10000,
  });
  assert.throws(() => decodeHeader(header, 1024 * 1024), {
    code: 'VHD_BAD_FIELD',
    details: { field: 'header.blockSize', value: 3 * 1024 * 1024 },
  });
  const small = encodeHeader({
    tableOffsetBytes: 1536,
    maxTableEntries: 1,
    blockSizeBytes: 2 * 1024 * 1024,
    headerVersion: 0x10000,
  });
  assert.throws(() => decodeHeader(small, 5 * 1024 * 1024), {
    code: 'VHD_BAD_FIELD',
    details: { field: 'header.maxTableEntries', value: 1 },
  });
});
