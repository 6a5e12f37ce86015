import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  CoreError,
  ManualClock,
  Semaphore,
  formatBytes,
  isPowerOfTwo,
  ceilDiv,
  throwIfAborted,
} from '../../src/core/index.ts';
import { ByteReader, ByteWriter, BinaryError } from '../../src/binary/index.ts';

test('formatBytes uses binary units', () => {
  assert.equal(formatBytes(0), '0 B');
  assert.equal(formatBytes(1536), '1.5 KiB');
  assert.equal(formatBytes(4 * 1024 ** 3), '4 GiB');
});

test('ceilDiv and isPowerOfTwo', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 2 ** 40 }),
      fc.integer({ min: 1, max: 2 ** 21 }),
      (a, b) => {
        const q = ceilDiv(a, b);
        assert.ok(q * b >= a && (q - 1) * b < a);
      },
    ),
  );
  assert.equal(isPowerOfTwo(4096), true);
  assert.equal(isPowerOfTwo(4097), false);
  assert.equal(isPowerOfTwo(0), false);
});

test('semaphore never exceeds its capacity and serves waiters in order', async () => {
  const semaphore = new Semaphore(3);
  let running = 0;
  let peak = 0;
  const order: number[] = [];
  await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      semaphore.use(async () => {
        running += 1;
        peak = Math.max(peak, running);
        order.push(i);
        await new Promise((r) => setTimeout(r, 1));
        running -= 1;
      }),
    ),
  );
  assert.equal(peak, 3);
  assert.deepEqual(
    order,
    [...order].sort((a, b) => a - b),
  );
  assert.equal(semaphore.available, 3);
});

test('a weight above the capacity is clamped instead of deadlocking', async () => {
  const semaphore = new Semaphore(10);
  const release = await semaphore.acquire(100);
  assert.equal(semaphore.available, 0);
  release();
  release();
  assert.equal(semaphore.available, 10);
});

test('manual clock wakes sleepers when advanced', async () => {
  const clock = new ManualClock(1000);
  let woke = false;
  const sleeping = clock.sleep(500).then(() => (woke = true));
  clock.advance(499);
  await Promise.resolve();
  assert.equal(woke, false);
  clock.advance(1);
  await sleeping;
  assert.equal(woke, true);
  assert.equal(clock.nowMs(), 1500);
});

test('throwIfAborted gives CANCELLED', () => {
  const controller = new AbortController();
  throwIfAborted(controller.signal);
  controller.abort();
  assert.throws(
    () => throwIfAborted(controller.signal),
    (e: unknown) => e instanceof CoreError && e.code === 'CANCELLED',
  );
});

test('byte reader and writer round-trip and name the truncated field', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 0xffff }),
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
      (a, b, c) => {
        const w = new ByteWriter(14).u16(a).u32(b).u64(c);
        const r = new ByteReader(w.buffer);
        assert.equal(r.u16(), a);
        assert.equal(r.u32(), b);
        assert.equal(r.u64(), c);
        assert.equal(r.remainingBytes, 0);
      },
    ),
  );
  const r = new ByteReader(Buffer.alloc(3));
  assert.throws(
    () => r.u32('magic'),
    (e: unknown) =>
      e instanceof BinaryError && e.code === 'BINARY_TRUNCATED' && e.message.includes('magic'),
  );
  assert.throws(
    () => new ByteWriter(2).u16(70000),
    (e: unknown) => e instanceof BinaryError && e.code === 'BINARY_RANGE',
  );
});
