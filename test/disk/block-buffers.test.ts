// Reusable block buffers (block-buffers.ts) and their path through a DiskTee: a buffer is reused
// only after every holder released it, never twice, and foreign buffers are never adopted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BlockBuffers,
  BlockSet,
  DiskTee,
  type Block,
  type DiskSource,
} from '../../src/disk/index.ts';

test('a given-back buffer is reused once; foreign and repeated gives are ignored', () => {
  const buffers = new BlockBuffers(1024, 4);
  const a = buffers.take(1024);
  const b = buffers.take(1024);
  assert.notEqual(a.buffer, b.buffer);
  buffers.give(a);
  buffers.give(a); // a second give must not put it on the free list twice
  buffers.give(Buffer.alloc(1024)); // not from take
  buffers.give(Buffer.from(b.buffer, 0, 512)); // b is still lent: a view of it is b
  const c = buffers.take(1024);
  const d = buffers.take(1024);
  assert.equal(c.buffer, b.buffer, 'last given back, first reused');
  assert.equal(d.buffer, a.buffer);
  const e = buffers.take(1024);
  assert.ok(e.buffer !== a.buffer && e.buffer !== b.buffer, 'each reused once only');
});

test('shorter takes are views of pooled buffers; longer ones are never pooled', () => {
  const buffers = new BlockBuffers(1024, 4);
  const short = buffers.take(100);
  assert.equal(short.length, 100);
  assert.equal(short.buffer.byteLength, 1024);
  buffers.give(short);
  const again = buffers.take(1024);
  assert.equal(again.buffer, short.buffer, 'the whole buffer comes back, at full length');
  assert.equal(again.length, 1024);
  const long = buffers.take(2048);
  assert.equal(long.length, 2048);
  buffers.give(long);
  assert.notEqual(buffers.take(1024).buffer, long.buffer);
});

test('each free list is bounded by maxFree', () => {
  const buffers = new BlockBuffers(64, 1, 'private');
  const taken = [buffers.take(64), buffers.take(64)];
  for (const buffer of taken) buffers.give(buffer);
  const again = [buffers.take(64), buffers.take(64)];
  const reused = again.filter((x) => taken.some((t) => t.buffer === x.buffer));
  assert.equal(reused.length, 1);
});

test('free buffers are shared by every instance of a length (the next disk reuses them)', () => {
  const length = 4096 + 77; // a length no other test uses
  const first = new BlockBuffers(length, 8);
  const taken = [first.take(length), first.take(length), first.take(length)];
  assert.ok(taken.every((buffer) => buffer.buffer instanceof SharedArrayBuffer));
  for (const buffer of taken) first.give(buffer);
  const second = new BlockBuffers(length, 8);
  const again = [second.take(length), second.take(length), second.take(length)];
  for (const buffer of again) assert.ok(taken.some((t) => t.buffer === buffer.buffer));
  first.give(again[0] ?? assert.fail()); // lent by the second instance: not the first's to give
  const fresh = second.take(length);
  assert.ok(!taken.some((t) => t.buffer === fresh.buffer));
  assert.equal(new BlockBuffers(length + 1).take(length + 1).length, length + 1);
});

test('a consumer that never gives back gets private memory after maxFree shared buffers', () => {
  const length = 8192 + 13; // a length no other test uses
  const buffers = new BlockBuffers(length, 3);
  const kept = Array.from({ length: 6 }, () => buffers.take(length));
  const shared = kept.map((buffer) => buffer.buffer instanceof SharedArrayBuffer);
  assert.deepEqual(shared, [true, true, true, false, false, false]);
  // Given back, the shared ones are out no more: they are reused, then a fresh one is shared.
  for (const buffer of kept.slice(0, 3)) buffers.give(buffer);
  const reused = [buffers.take(length), buffers.take(length)];
  assert.ok(reused.every((buffer) => kept.slice(0, 3).some((k) => k.buffer === buffer.buffer)));
  buffers.give(reused[0] ?? assert.fail());
  buffers.give(reused[1] ?? assert.fail());
  const more = Array.from({ length: 4 }, () => buffers.take(length));
  assert.deepEqual(
    more.map((buffer) => buffer.buffer instanceof SharedArrayBuffer),
    [true, true, true, false],
  );
  // Private buffers given back go to their own list: they never stand in for shared ones.
  for (const buffer of [...more, ...kept.slice(3)]) buffers.give(buffer);
  const afterAll = Array.from({ length: 4 }, () => buffers.take(length));
  assert.deepEqual(
    afterAll.map((buffer) => buffer.buffer instanceof SharedArrayBuffer),
    [true, true, true, false],
  );
  assert.ok(afterAll.every((buffer) => [...kept, ...more].some((k) => k.buffer === buffer.buffer)));
  const privateOnly = new BlockBuffers(length + 1, 3, 'private');
  assert.ok(!(privateOnly.take(length + 1).buffer instanceof SharedArrayBuffer));
});

/** A source whose blocks come from `buffers`, recording every release. */
function recyclingSource(buffers: BlockBuffers, count: number, released: number[]): DiskSource {
  return {
    sizeBytes: count * buffers.lengthBytes,
    blockSizeBytes: buffers.lengthBytes,
    kind: 'full',
    blocks: BlockSet.all(count),
    async *readBlocks(): AsyncIterable<Block> {
      for (let index = 0; index < count; index += 1) {
        const data = buffers.take(buffers.lengthBytes).fill(index);
        const block = buffers.block(index, data);
        yield {
          ...block,
          release: () => {
            released.push(index);
            block.release?.();
          },
        };
      }
    },
    close: () => Promise.resolve(),
  };
}

test('a tee releases a block to its source only after every consumer released it', async () => {
  const buffers = new BlockBuffers(16);
  const released: number[] = [];
  const tee = new DiskTee(recyclingSource(buffers, 6, released), 2, { windowBlocks: 2 });
  const [first, second] = tee.views;
  assert.ok(first !== undefined && second !== undefined);
  const seen: number[][] = [[], []];
  const consume = async (view: DiskSource, slot: number, releases: boolean): Promise<void> => {
    for await (const block of view.readBlocks()) {
      // The data is still this block's when read, whatever the other consumer released.
      assert.ok(block.data.every((byte) => byte === block.index));
      seen[slot]?.push(block.index);
      await new Promise((resolve) => setImmediate(resolve));
      if (releases) {
        block.release?.();
        block.release?.(); // idempotent
      }
    }
  };
  await Promise.all([consume(first, 0, true), consume(second, 1, false)]);
  assert.deepEqual(seen, [
    [0, 1, 2, 3, 4, 5],
    [0, 1, 2, 3, 4, 5],
  ]);
  assert.deepEqual(released, [], 'one consumer never released: nothing goes back');

  const released2: number[] = [];
  const tee2 = new DiskTee(recyclingSource(new BlockBuffers(16), 6, released2), 2);
  const [a, b] = tee2.views;
  assert.ok(a !== undefined && b !== undefined);
  await Promise.all([consume(a, 0, true), consume(b, 1, true)]);
  assert.deepEqual(released2, [0, 1, 2, 3, 4, 5], 'each block released once, by the last holder');
});
