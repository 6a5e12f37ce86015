import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  openRawFileSink,
  openRawFileSource,
  WRITEBACK_STEP_BYTES,
} from '../../src/disk/raw-file-disk.ts';
import { makeTempDir } from '../harness/index.ts';

test('raw file source yields every block in order; sink keeps zero blocks as holes', async () => {
  const dir = await makeTempDir();
  try {
    const blockSizeBytes = 64 * 1024;
    const image = Buffer.alloc(blockSizeBytes * 40 + 123);
    image.fill(7, blockSizeBytes * 3, blockSizeBytes * 4);
    image.fill(9, blockSizeBytes * 40);
    const path = join(dir.path, 'disk.raw');
    await writeFile(path, image);
    const source = await openRawFileSource(path, { blockSizeBytes, readAhead: 3 });
    assert.equal(source.sizeBytes, image.length);
    assert.equal(source.blocks.count, 41);
    const out = join(dir.path, 'out.raw');
    const sink = await openRawFileSink(out, source.sizeBytes);
    let previous = -1;
    for await (const block of source.readBlocks()) {
      assert.equal(block.index, previous + 1);
      previous = block.index;
      // Shared memory: block workers hash and compress file blocks in place.
      assert.ok(block.data.buffer instanceof SharedArrayBuffer, 'file blocks use shared memory');
      assert.deepEqual(
        block.data,
        image.subarray(
          block.index * blockSizeBytes,
          block.index * blockSizeBytes + block.data.length,
        ),
      );
      await sink.writeBlock(block.index, block.data, blockSizeBytes);
      block.release?.(); // as restores do: the source reuses the buffer
    }
    await sink.close();
    await source.close();
    assert.equal(previous, 40);
    assert.deepEqual(await readFile(out), image);
    const info = await stat(out);
    assert.ok(
      info.blocks * 512 < 4 * blockSizeBytes,
      `zero blocks stay holes (${info.blocks * 512} bytes allocated)`,
    );
    const small = await openRawFileSink(join(dir.path, 'small.raw'), 100);
    await assert.rejects(small.writeBlock(1, Buffer.alloc(100, 1), 100), /past the disk size/);
    await small.close();
  } finally {
    await dir.remove();
  }
});

test('a sink writing past its writeback step (background fdatasync) keeps every byte', async () => {
  const dir = await makeTempDir('vmd-rawsink-');
  try {
    const path = join(dir.path, 'out.raw');
    const blockSizeBytes = 2 * 1024 * 1024;
    const blocks = WRITEBACK_STEP_BYTES / blockSizeBytes + 8;
    const sink = await openRawFileSink(path, (blocks + 2) * blockSizeBytes);
    const expected = Buffer.alloc((blocks + 2) * blockSizeBytes);
    for (let index = 0; index < blocks; index += 2) {
      const data = Buffer.alloc(blockSizeBytes, (index % 250) + 1);
      data.copy(expected, index * blockSizeBytes);
      await sink.writeBlock(index, data, blockSizeBytes);
    }
    for (let index = 1; index < blocks; index += 2) {
      const data = Buffer.alloc(blockSizeBytes, (index % 250) + 1);
      data.copy(expected, index * blockSizeBytes);
      await sink.writeBlock(index, data, blockSizeBytes);
    }
    await sink.close();
    assert.ok((await readFile(path)).equals(expected));
  } finally {
    await dir.remove();
  }
});
