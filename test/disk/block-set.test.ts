import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  BlockSet,
  MemoryDisk,
  blockLengthBytes,
  isZeroBlock,
  zeroBlock,
} from '../../src/disk/index.ts';

test('BlockSet behaves like a sorted set of indexes', () => {
  fc.assert(
    fc.property(
      fc
        .integer({ min: 1, max: 300 })
        .chain((n) => fc.tuple(fc.constant(n), fc.array(fc.integer({ min: 0, max: n - 1 })))),
      ([n, indexes]) => {
        const set = BlockSet.of(n, indexes);
        const model = [...new Set(indexes)].sort((a, b) => a - b);
        assert.deepEqual(set.toArray(), model);
        assert.equal(set.count, model.length);
        for (const index of model) assert.ok(set.has(index));
      },
    ),
  );
  assert.throws(() => new BlockSet(4).add(4));
});

test('addByteRange covers every touched block', () => {
  const set = new BlockSet(10);
  set.addByteRange(2 * 1024 * 1024 - 1, 2, 2 * 1024 * 1024);
  assert.deepEqual(set.toArray(), [0, 1]);
});

test('MemoryDisk yields its blocks in order with a partial last block', async () => {
  const sizeBytes = 10 * 1024 + 100;
  const data = new Map([
    [10, Buffer.alloc(blockLengthBytes(10, sizeBytes, 1024), 7)],
    [2, Buffer.alloc(1024, 1)],
  ]);
  const disk = new MemoryDisk({ sizeBytes, blockSizeBytes: 1024, data });
  const seen = [];
  for await (const block of disk.readBlocks()) seen.push([block.index, block.data.length]);
  assert.deepEqual(seen, [
    [2, 1024],
    [10, 100],
  ]);
  assert.ok(isZeroBlock(zeroBlock(4096)));
  assert.ok(!isZeroBlock(Buffer.from([0, 1])));
});
