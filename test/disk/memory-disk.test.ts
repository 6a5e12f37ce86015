// MemoryDisk, the in-memory source of tests and engine work: it yields its blocks as copies, in
// order, refuses blocks of the wrong length, and stops with CANCELLED once its signal is aborted
// (as every source does).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CoreError } from '../../src/core/index.ts';
import { MemoryDisk } from '../../src/disk/index.ts';

const BLOCK = 4096;

function disk(): MemoryDisk {
  const data = new Map<number, Buffer>();
  for (const index of [0, 2, 3, 7]) data.set(index, Buffer.alloc(BLOCK, index + 1));
  data.set(9, Buffer.alloc(1000, 0x99)); // the short last block
  return new MemoryDisk({ sizeBytes: 9 * BLOCK + 1000, blockSizeBytes: BLOCK, data });
}

test('MemoryDisk yields copies of its blocks in order; wrong lengths are refused', async () => {
  const source = disk();
  const seen: number[] = [];
  for await (const block of source.readBlocks()) {
    seen.push(block.index);
    assert.equal(block.data[0], block.index === 9 ? 0x99 : block.index + 1);
    block.data.fill(0); // a copy: the disk keeps its content
  }
  assert.deepEqual(seen, [0, 2, 3, 7, 9]);
  for await (const block of source.readBlocks()) assert.notEqual(block.data[0], 0);
  assert.throws(
    () =>
      new MemoryDisk({
        sizeBytes: 2 * BLOCK,
        blockSizeBytes: BLOCK,
        data: new Map([[1, Buffer.alloc(BLOCK - 1)]]),
      }),
    (error: unknown) => error instanceof CoreError && error.code === 'INVALID_ARGUMENT',
  );
});

test('MemoryDisk stops with CANCELLED once its signal is aborted', async () => {
  const controller = new AbortController();
  const seen: number[] = [];
  await assert.rejects(
    (async () => {
      for await (const block of disk().readBlocks({ signal: controller.signal })) {
        seen.push(block.index);
        if (seen.length === 2) controller.abort();
      }
    })(),
    (error: unknown) => error instanceof CoreError && error.code === 'CANCELLED',
  );
  assert.deepEqual(seen, [0, 2]);
});
