import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { BlockSet, MemoryDisk, type DiskSource } from '../../src/disk/index.ts';
import {
  computeVhdLength,
  isSectorPresent,
  openVhdChain,
  openVhdFile,
  writeVhd,
  writeVhdFile,
} from '../../src/vhd/index.ts';
import { makeTempDir } from '../harness/index.ts';
import { MiB, assertVhdUtilRules, makeDisk } from './helpers.ts';

async function collect(iterable: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of iterable) chunks.push(chunk);
  return Buffer.concat(chunks);
}

test('lengthBytes is known before the first byte and equals the bytes produced', async () => {
  const shapes = [
    { sizeBytes: 8 * MiB, blockSizeBytes: 2 * MiB, present: [0, 3] },
    { sizeBytes: 9 * MiB + 1536, blockSizeBytes: 2 * MiB, present: [1, 4] }, // partial last block
    { sizeBytes: 6 * MiB, blockSizeBytes: 64 * 1024, present: [0, 1, 40, 95] }, // small source blocks
    { sizeBytes: 12 * MiB, blockSizeBytes: 4 * MiB, present: [1, 2] }, // large source blocks
    { sizeBytes: 4 * MiB, blockSizeBytes: 2 * MiB, present: [] },
  ];
  for (const shape of shapes) {
    const { disk } = makeDisk({ ...shape, seed: 3 });
    const expected = computeVhdLength(disk);
    const writer = writeVhd(disk);
    assert.equal(writer.lengthBytes, expected);
    const bytes = await collect(writer);
    assert.equal(bytes.length, expected, JSON.stringify(shape));
    // Footer copy at 0 equals the final footer.
    assert.ok(bytes.subarray(0, 512).equals(bytes.subarray(bytes.length - 512)));
  }
});

test('written dynamic VHDs read back identically and satisfy the vhd-util rules', async () => {
  const dir = await makeTempDir();
  try {
    for (const [n, shape] of [
      { sizeBytes: 9 * MiB + 1536, blockSizeBytes: 2 * MiB, present: [0, 2, 4] },
      { sizeBytes: 6 * MiB, blockSizeBytes: 64 * 1024, present: [0, 33, 95] },
      { sizeBytes: 12 * MiB, blockSizeBytes: 4 * MiB, present: [0, 2] },
    ].entries()) {
      const { disk, raw } = makeDisk({ ...shape, seed: n + 1 });
      const path = join(dir.path, `d${n}.vhd`);
      await writeVhdFile(disk, path);
      await assertVhdUtilRules(path);
      const chain = await openVhdChain(path);
      try {
        assert.equal(chain.sizeBytes, shape.sizeBytes);
        for (let index = 0; index < chain.blockCount; index += 1) {
          const block = (await chain.readBlock(index)) ?? Buffer.alloc(2 * MiB);
          const start = index * 2 * MiB;
          const expected = raw.subarray(start, Math.min(start + 2 * MiB, raw.length));
          assert.ok(
            block.subarray(0, expected.length).equals(expected),
            `shape ${n} block ${index}`,
          );
        }
      } finally {
        await chain.close();
      }
    }
  } finally {
    await dir.remove();
  }
});

test('a delta with small source blocks gets partial sector bitmaps', async () => {
  const dir = await makeTempDir();
  try {
    const { disk } = makeDisk({
      sizeBytes: 4 * MiB,
      blockSizeBytes: 64 * 1024,
      present: [1, 2, 40],
      seed: 5,
      kind: 'delta',
    });
    const path = join(dir.path, 'child.vhd');
    await writeVhdFile(disk, path, {
      parent: { uuid: '11111111-1111-4111-8111-111111111111', timestamp: 5, fileName: 'p.vhd' },
    });
    const reader = await openVhdFile(path);
    try {
      assert.deepEqual(reader.allocatedBlocks(), [0, 1]);
      const block0 = await reader.readBlock(0);
      assert.ok(block0?.sectorBitmap !== undefined);
      const perSource = (64 * 1024) / 512;
      assert.equal(isSectorPresent(block0.sectorBitmap, 0), false);
      assert.equal(isSectorPresent(block0.sectorBitmap, perSource), true);
      assert.equal(isSectorPresent(block0.sectorBitmap, 3 * perSource - 1), true);
      assert.equal(isSectorPresent(block0.sectorBitmap, 3 * perSource), false);
      assert.equal(reader.header?.parentUnicodeName, 'p.vhd');
      const paths = await reader.locatorPaths();
      assert.deepEqual(
        paths.map((p) => p.path),
        ['./p.vhd', './p.vhd'],
      );
    } finally {
      await reader.close();
    }
    // The raw locator bytes: W2ru is UTF-16LE ".\p.vhd", MacX is UTF-8 "file://./p.vhd".
    const bytes = await readFile(path);
    assert.ok(bytes.includes(Buffer.from('.\\p.vhd', 'utf16le')));
    assert.ok(bytes.includes(Buffer.from('file://./p.vhd', 'utf8')));
  } finally {
    await dir.remove();
  }
});

test('the writer pulls source blocks only as its output is consumed (bounded memory)', async () => {
  const blockCount = 64;
  let pulled = 0;
  const source = {
    sizeBytes: blockCount * 2 * MiB,
    blockSizeBytes: 2 * MiB,
    kind: 'full' as const,
    blocks: BlockSet.all(blockCount),
    readBlocks: async function* () {
      for (let index = 0; index < blockCount; index += 1) {
        pulled += 1;
        yield { index, data: Buffer.alloc(2 * MiB, index) };
      }
    },
  };
  const writer = writeVhd(source);
  let consumedBytes = 0;
  let maxLead = 0;
  const readable = writer.toReadable();
  for await (const chunk of readable) {
    consumedBytes += (chunk as Buffer).length;
    const consumedBlocks = Math.floor(consumedBytes / (2 * MiB + 512));
    maxLead = Math.max(maxLead, pulled - consumedBlocks);
  }
  assert.equal(consumedBytes, writer.lengthBytes);
  assert.equal(pulled, blockCount);
  // At most the block being written and the next one are held, never the disk.
  assert.ok(maxLead <= 2, `writer ran ${maxLead} blocks ahead of its consumer`);
});

test('sizes above 2040 GiB are refused with a clear error, before any byte', () => {
  const sizeBytes = 2041 * 1024 * MiB;
  const huge: DiskSource = {
    sizeBytes,
    blockSizeBytes: 2 * MiB,
    kind: 'full',
    blocks: new BlockSet(sizeBytes / (2 * MiB)),
    readBlocks: () => {
      throw new Error('must not read');
    },
    close: async () => undefined,
  };
  assert.throws(
    () => writeVhd(huge),
    (error: Error & { code?: string }) => {
      assert.equal(error.code, 'VHD_TOO_LARGE');
      assert.match(error.message, /2040 GiB/);
      return true;
    },
  );
  // Exactly 2040 GiB, nothing allocated, is fine.
  const limit = { ...huge, sizeBytes: 2040 * 1024 * MiB, blocks: new BlockSet(2040 * 512) };
  assert.equal(computeVhdLength(limit), 512 + 1024 + 2040 * 512 * 4 + 512);
});

test('inconsistent sources are refused with VHD_INVALID_SOURCE', async () => {
  const { disk } = makeDisk({ sizeBytes: 4 * MiB, blockSizeBytes: 2 * MiB, present: [0], seed: 1 });
  assert.throws(
    () =>
      writeVhd(disk, {
        parent: { uuid: '11111111-1111-4111-8111-111111111111', timestamp: 0, fileName: 'p.vhd' },
      }),
    { code: 'VHD_INVALID_SOURCE' },
  );
  const delta = makeDisk({
    sizeBytes: 4 * MiB,
    blockSizeBytes: 2 * MiB,
    present: [0],
    seed: 1,
    kind: 'delta',
  }).disk;
  assert.throws(() => writeVhd(delta), {
    code: 'VHD_INVALID_SOURCE',
    details: { field: 'parent' },
  });
  assert.throws(
    () =>
      writeVhd({
        sizeBytes: 4 * MiB + 1,
        blockSizeBytes: 2 * MiB,
        kind: 'full',
        blocks: disk.blocks,
        readBlocks: () => disk.readBlocks(),
      }),
    { code: 'VHD_INVALID_SOURCE' },
  );
  assert.throws(
    () =>
      writeVhd({
        sizeBytes: 4 * MiB,
        blockSizeBytes: 3 * 512,
        kind: 'full',
        blocks: new BlockSet(1),
        readBlocks: disk.readBlocks.bind(disk),
      }),
    { code: 'VHD_INVALID_SOURCE' },
  );
  // A source that announces a block and does not yield it.
  const liar = new MemoryDisk({ sizeBytes: 4 * MiB, blockSizeBytes: 2 * MiB, data: new Map() });
  const blocks = BlockSet.of(2, [1]);
  await assert.rejects(
    collect(
      writeVhd({
        sizeBytes: liar.sizeBytes,
        blockSizeBytes: liar.blockSizeBytes,
        blocks,
        kind: 'full',
        readBlocks: () => liar.readBlocks(),
      }),
    ),
    { code: 'VHD_INVALID_SOURCE' },
  );
  // A source yielding a block of the wrong length.
  const wrong = {
    sizeBytes: 4 * MiB,
    blockSizeBytes: 2 * MiB,
    kind: 'full' as const,
    blocks,
    readBlocks: async function* () {
      yield { index: 1, data: Buffer.alloc(100) };
    },
  };
  await assert.rejects(collect(writeVhd(wrong)), { code: 'VHD_INVALID_SOURCE' });
});
