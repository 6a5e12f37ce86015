import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/core/index.ts';
import {
  DiskTee,
  MemoryDisk,
  RateLimiter,
  throttleDisk,
  type DiskSource,
} from '../../src/disk/index.ts';

function disk(blockCount: number): MemoryDisk {
  const data = new Map<number, Buffer>();
  for (let i = 0; i < blockCount; i += 1) data.set(i, Buffer.alloc(16, i));
  return new MemoryDisk({ sizeBytes: blockCount * 16, blockSizeBytes: 16, data });
}

async function collect(
  source: DiskSource,
  delayMs = 0,
  stopAfter = Number.POSITIVE_INFINITY,
): Promise<number[]> {
  const seen: number[] = [];
  for await (const block of source.readBlocks()) {
    assert.equal(block.data[0], block.index);
    seen.push(block.index);
    if (seen.length >= stopAfter) break;
    if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
  }
  return seen;
}

test('every consumer sees every block once, in order, from a single read of the source', async () => {
  const source = disk(50);
  let reads = 0;
  const counting: DiskSource = {
    blocks: source.blocks,
    sizeBytes: source.sizeBytes,
    blockSizeBytes: source.blockSizeBytes,
    kind: source.kind,
    async *readBlocks() {
      for await (const block of source.readBlocks()) {
        reads += 1;
        yield block;
      }
    },
    close: () => source.close(),
  };
  const tee = new DiskTee(counting, 3, { windowBlocks: 2 });
  const results = await Promise.all(tee.views.map((view, i) => collect(view, i)));
  const all = Array.from({ length: 50 }, (_, i) => i);
  for (const seen of results) assert.deepEqual(seen, all);
  assert.equal(reads, 50);
});

test('a consumer that stops early no longer holds the others back', async () => {
  const tee = new DiskTee(disk(30), 2, { windowBlocks: 1 });
  const [early, full] = await Promise.all([
    collect(tee.views[0] as DiskSource, 0, 5),
    collect(tee.views[1] as DiskSource, 1),
  ]);
  assert.equal(early.length, 5);
  assert.equal(full.length, 30);
});

test('a source error reaches every consumer', async () => {
  const failing: DiskSource = {
    sizeBytes: 160,
    blockSizeBytes: 16,
    kind: 'full',
    blocks: disk(10).blocks,
    async *readBlocks() {
      yield { index: 0, data: Buffer.alloc(16, 0) };
      throw new Error('source died');
    },
    close: () => Promise.resolve(),
  };
  const tee = new DiskTee(failing, 2);
  const outcomes = await Promise.allSettled(tee.views.map((view) => collect(view)));
  for (const outcome of outcomes) {
    assert.equal(outcome.status, 'rejected');
    assert.match(String(outcome.reason), /source died/);
  }
});

test('the rate limiter delays reads to the configured rate', async () => {
  const clock = new ManualClock(0);
  const slept: number[] = [];
  const fakeClock = {
    nowMs: () => clock.nowMs(),
    sleep: (ms: number) => {
      slept.push(ms);
      clock.advance(ms);
      return Promise.resolve();
    },
  };
  const limiter = new RateLimiter(32, fakeClock);
  const seen = await collect(throttleDisk(disk(6), limiter));
  assert.equal(seen.length, 6);
  // 96 bytes at 32 B/s with a 32-byte burst: 64 bytes of waiting = 2 s in all.
  assert.equal(Math.round(slept.reduce((a, b) => a + b, 0)), 2000);
});
