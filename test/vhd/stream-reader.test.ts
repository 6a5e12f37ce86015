import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DiskType,
  VhdReader,
  bufferByteSource,
  openVhdStream,
  writeVhd,
  type VhdBlock,
} from '../../src/vhd/index.ts';
import { MiB, makeDisk, patternBytes } from './helpers.ts';
import { chunked, craftVhd, editHeader, refreshFooters } from './craft.ts';

async function collectBytes(iterable: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of iterable) chunks.push(chunk);
  return Buffer.concat(chunks);
}

async function readAll(bytes: Buffer, options = {}): Promise<VhdBlock[]> {
  const stream = await openVhdStream(chunked(bytes), options);
  const blocks: VhdBlock[] = [];
  for await (const block of stream.blocks()) blocks.push(block);
  return blocks;
}

test('a written VHD streams back block by block, identical to the source', async () => {
  const { disk, raw } = makeDisk({
    sizeBytes: 9 * MiB + 1536,
    blockSizeBytes: 2 * MiB,
    present: [0, 2, 4],
    seed: 9,
  });
  const bytes = await collectBytes(writeVhd(disk));
  const stream = await openVhdStream(chunked(bytes, 4096));
  assert.deepEqual([...stream.allocated], [0, 2, 4]);
  assert.equal(stream.sizeBytes, 9 * MiB + 1536);
  for await (const block of stream.blocks()) {
    const start = block.index * 2 * MiB;
    const expected = raw.subarray(start, Math.min(start + 2 * MiB, raw.length));
    assert.ok(block.data.subarray(0, expected.length).equals(expected));
    assert.equal(block.sectorBitmap, undefined);
  }
});

test('the block set is known once the BAT has arrived, before any block data', async () => {
  const { disk } = makeDisk({
    sizeBytes: 8 * MiB,
    blockSizeBytes: 2 * MiB,
    present: [1, 3],
    seed: 2,
  });
  const bytes = await collectBytes(writeVhd(disk));
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let dataRequested = false;
  async function* input(): AsyncGenerator<Buffer> {
    yield bytes.subarray(0, 2048); // footer copy, header, BAT (8 entries fit in 512 bytes)
    dataRequested = true;
    await gate;
    yield bytes.subarray(2048);
  }
  const stream = await openVhdStream(input());
  assert.deepEqual([...stream.allocated], [1, 3]);
  assert.equal(dataRequested, false);
  release();
  const indexes: number[] = [];
  for await (const block of stream.blocks()) indexes.push(block.index);
  assert.deepEqual(indexes, [1, 3]);
});

test('blocks stored out of order come out ascending, within the reorder bound', async () => {
  const blocks = [0, 1, 2, 3].map((index) => ({ index, data: patternBytes(2 * MiB, index + 1) }));
  const bytes = craftVhd({ sizeBytes: 8 * MiB, blocks, fileOrder: [3, 1, 0, 2] });
  const read = await readAll(bytes);
  assert.deepEqual(
    read.map((b) => b.index),
    [0, 1, 2, 3],
  );
  for (const block of read)
    assert.ok(block.data.equals(blocks[block.index]?.data ?? Buffer.alloc(0)));
  // Reordering [3, 1, 0, 2] holds 2 blocks at most: a 2-block bound is enough, 1 is not.
  assert.equal((await readAll(bytes, { maxBufferedBytes: 4 * MiB })).length, 4);
  await assert.rejects(openVhdStream(chunked(bytes), { maxBufferedBytes: 2 * MiB }), {
    code: 'VHD_STREAM_ORDER',
    details: { field: 'bat', peakBlocks: 2, maxBufferedBytes: 2 * MiB },
  });
});

test('partial sector bitmaps: absent sectors read as zeros and the bitmap is reported', async () => {
  const data = patternBytes(2 * MiB, 77);
  const bytes = craftVhd({
    sizeBytes: 4 * MiB,
    blocks: [
      {
        index: 1,
        data,
        sectors: [
          [8, 16],
          [100, 4096],
        ],
      },
    ],
  });
  const [block] = await readAll(bytes);
  assert.ok(block !== undefined && block.sectorBitmap !== undefined);
  assert.ok(block.data.subarray(0, 8 * 512).equals(Buffer.alloc(8 * 512)));
  assert.ok(block.data.subarray(8 * 512, 16 * 512).equals(data.subarray(8 * 512, 16 * 512)));
  assert.ok(block.data.subarray(16 * 512, 100 * 512).equals(Buffer.alloc(84 * 512)));
  assert.ok(block.data.subarray(100 * 512).equals(data.subarray(100 * 512)));
  // The random-access reader agrees.
  const reader = await VhdReader.open(bufferByteSource('crafted', bytes));
  const again = await reader.readBlock(1);
  assert.ok(again?.data.equals(block.data));
});

test('bad input gives a typed error naming the field', async () => {
  const blocks = [0, 1].map((index) => ({ index, data: patternBytes(2 * MiB, index + 3) }));
  const good = craftVhd({ sizeBytes: 4 * MiB, blocks });
  const cases: [string, Buffer, string, string][] = [
    ['truncated in the header', good.subarray(0, 900), 'VHD_TRUNCATED', 'header'],
    ['truncated in a block', good.subarray(0, 3 * MiB), 'VHD_TRUNCATED', 'block 1 data'],
    [
      'truncated final footer',
      good.subarray(0, good.length - 100),
      'VHD_TRUNCATED',
      'final footer',
    ],
    [
      'footer checksum',
      (() => {
        const b = Buffer.from(good);
        b[70] = (b[70] ?? 0) ^ 1;
        return b;
      })(),
      'VHD_BAD_CHECKSUM',
      'footer.checksum',
    ],
    [
      'header checksum',
      (() => {
        const b = Buffer.from(good);
        b[600] = (b[600] ?? 0) ^ 1;
        return b;
      })(),
      'VHD_BAD_CHECKSUM',
      'header.checksum',
    ],
    [
      'overlapping blocks',
      editBat(good, 1, good.readUInt32BE(1536) + 1),
      'VHD_BAD_LAYOUT',
      'bat[1]',
    ],
    ['block over the BAT', editBat(good, 0, 3), 'VHD_BAD_LAYOUT', 'bat[0]'],
    [
      'absurd size',
      refreshFooters(good, (f) => f.writeBigUInt64BE(1n << 60n, 48)),
      'VHD_BAD_FIELD',
      'footer.currentSize',
    ],
    [
      'absurd table',
      editHeader(good, (h) => h.writeUInt32BE(0xffffffff, 28)),
      'VHD_BAD_FIELD',
      'header.maxTableEntries',
    ],
    [
      'bad disk type',
      refreshFooters(good, (f) => f.writeUInt32BE(7, 60)),
      'VHD_BAD_FIELD',
      'footer.diskType',
    ],
    [
      'footers differ',
      (() => {
        const b = Buffer.from(good);
        b.set(refreshFooters(good, (f) => f.writeUInt32BE(5, 24)).subarray(-512), b.length - 512);
        return b;
      })(),
      'VHD_BAD_FIELD',
      'footer',
    ],
  ];
  for (const [name, bytes, code, field] of cases) {
    await assert.rejects(
      readAll(bytes),
      (error: Error & { code?: string; details?: { field?: string } }) => {
        assert.equal(error.code, code, `${name}: ${error.message}`);
        assert.equal(error.details?.field, field, name);
        return true;
      },
      name,
    );
  }
  // A fixed VHD cannot be streamed.
  const fixed = refreshFooters(good, (f) => {
    f.writeUInt32BE(DiskType.fixed, 60);
    f.writeBigUInt64BE(0xffffffffffffffffn, 16);
  });
  await assert.rejects(readAll(fixed), { code: 'VHD_UNSUPPORTED' });
  // Random access: a BAT beyond the end of the file.
  const beyond = editHeader(good, (h) => h.writeBigUInt64BE(BigInt(good.length), 16));
  await assert.rejects(VhdReader.open(bufferByteSource('beyond', beyond)), {
    code: 'VHD_BAD_LAYOUT',
    details: { field: 'header.tableOffset', fileSizeBytes: good.length },
  });
  await assert.rejects(
    VhdReader.open(bufferByteSource('cut', good.subarray(0, good.length - 512))),
    { code: 'VHD_TRUNCATED', details: { field: 'footer' } },
  );
});

test('reading stops with CANCELLED when the signal aborts', async () => {
  const blocks = [0, 1, 2].map((index) => ({ index, data: patternBytes(2 * MiB, index) }));
  const bytes = craftVhd({ sizeBytes: 6 * MiB, blocks });
  const controller = new AbortController();
  const stream = await openVhdStream(chunked(bytes));
  const seen: number[] = [];
  await assert.rejects(
    (async () => {
      for await (const block of stream.blocks({ signal: controller.signal })) {
        seen.push(block.index);
        controller.abort();
      }
    })(),
    { code: 'CANCELLED' },
  );
  assert.deepEqual(seen, [0]);
  await assert.rejects(openVhdStream(chunked(bytes), { signal: AbortSignal.abort() }), {
    code: 'CANCELLED',
  });
});

test('a BAT stored after the blocks: random access reads it, a stream refuses it', async () => {
  const blocks = [0, 1].map((index) => ({ index, data: patternBytes(2 * MiB, index + 5) }));
  const good = craftVhd({ sizeBytes: 4 * MiB, blocks });
  const batAt = good.length - 512;
  const moved = editHeader(
    Buffer.concat([good.subarray(0, batAt), good.subarray(1536, 2048), good.subarray(batAt)]),
    (h) => h.writeBigUInt64BE(BigInt(batAt), 16),
  );
  const reader = await VhdReader.open(bufferByteSource('moved', moved));
  assert.deepEqual(reader.allocatedBlocks(), [0, 1]);
  assert.ok((await reader.readBlock(1))?.data.equals(blocks[1]?.data ?? Buffer.alloc(0)));
  await assert.rejects(openVhdStream(chunked(moved)), {
    code: 'VHD_STREAM_ORDER',
    details: { field: 'bat[0]' },
  });
});

function editBat(file: Buffer, index: number, sector: number): Buffer {
  const copy = Buffer.from(file);
  copy.writeUInt32BE(sector, 1536 + 4 * index);
  return copy;
}
