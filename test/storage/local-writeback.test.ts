// Early writeback of deferred puts (local-writeback.ts): files are fsynced in the background as
// soon as they are scheduled, a deleted file is skipped, and settle() waits for one in flight.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { WritebackQueue } from '../../src/storage/local-writeback.ts';
import { LocalObjectStore } from '../../src/storage/index.ts';
import { makeTempDir } from '../harness/index.ts';

test('scheduled files are fsynced in the background, a bounded few at a time', async () => {
  const dir = await makeTempDir('vmd-wb-');
  try {
    const synced: string[] = [];
    const queue = new WritebackQueue((path) => synced.push(path));
    const paths = await Promise.all(
      Array.from({ length: 12 }, async (_, i) => {
        const path = join(dir.path, `f${i}`);
        await writeFile(path, Buffer.alloc(4096, i));
        return path;
      }),
    );
    await rm(paths[3] ?? '');
    for (const path of paths) queue.schedule(path);
    queue.schedule(paths[0] ?? ''); // scheduling twice is one fsync
    assert.ok(synced.length < paths.length, 'the work is not done synchronously');
    const results = await Promise.all(paths.map((path) => queue.settle(path)));
    assert.deepEqual(results, Array<boolean>(12).fill(true)); // a deleted file counts as done
    assert.deepEqual([...synced].sort(), [...paths].sort());
    assert.equal(await queue.settle(paths[1] ?? ''), false, 'nothing in flight any more');
  } finally {
    await dir.remove();
  }
});

test('deferred puts on a local store are durable after sync and readable before', async () => {
  const dir = await makeTempDir('vmd-wb-');
  try {
    const store = new LocalObjectStore(dir.path);
    const bodies = Array.from({ length: 20 }, (_, i) => Buffer.alloc(100_000 + i, i));
    await Promise.all(bodies.map((body, i) => store.put(`a/b${i}`, body, { durable: false })));
    await store.delete('a/b7');
    for (const [i, body] of bodies.entries()) {
      if (i !== 7) assert.ok((await readFile(join(dir.path, 'a', `b${i}`))).equals(body));
    }
    await store.sync();
    await store.sync(); // nothing left: a no-op
    assert.equal(await store.stat('a/b7'), undefined);
    assert.equal((await store.stat('a/b19'))?.sizeBytes, 100_019);
  } finally {
    await dir.remove();
  }
});
