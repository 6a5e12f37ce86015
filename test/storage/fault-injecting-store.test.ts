import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FaultInjectingStore,
  MemoryObjectStore,
  SimulatedCrash,
  StorageError,
} from '../../src/storage/index.ts';

test('crashAfterMutations lets N mutations through, then fails everything until healed', async () => {
  const inner = new MemoryObjectStore();
  const store = new FaultInjectingStore(inner, { crashAfterMutations: 2 });
  await store.put('a', Buffer.from('1'));
  await store.put('b', Buffer.from('2'));
  await assert.rejects(store.put('c', Buffer.from('3')), SimulatedCrash);
  await assert.rejects(store.get('a'), SimulatedCrash);
  assert.equal(store.crashed, true);
  assert.equal(await inner.stat('c'), undefined, 'the crashed put wrote nothing');
  store.setPlan({});
  assert.deepEqual(await store.get('b'), Buffer.from('2'));
});

test('failWhen fails only the chosen operations', async () => {
  const store = new FaultInjectingStore(new MemoryObjectStore(), {
    failWhen: (operation, key) =>
      operation === 'get' && key === 'x'
        ? new StorageError('STORAGE_IO', 'boom', { retryable: true })
        : undefined,
  });
  await store.put('x', Buffer.from('x'));
  await store.put('y', Buffer.from('y'));
  await assert.rejects(store.get('x'), (e: unknown) => e instanceof StorageError && e.retryable);
  assert.deepEqual(await store.get('y'), Buffer.from('y'));
});

test("crashPoint 'after' performs the triggering mutation, then reports the crash", async () => {
  const inner = new MemoryObjectStore();
  const store = new FaultInjectingStore(inner, { crashAfterMutations: 1, crashPoint: 'after' });
  await store.put('a', Buffer.from('1'));
  await assert.rejects(store.put('b', Buffer.from('2')), SimulatedCrash);
  assert.deepEqual(await inner.get('b'), Buffer.from('2'), 'the write landed');
  await assert.rejects(store.delete('a'), SimulatedCrash);
  assert.deepEqual(await inner.get('a'), Buffer.from('1'), 'nothing after the crash runs');
});

test('latency delays every operation', async () => {
  const store = new FaultInjectingStore(new MemoryObjectStore(), { latencyMs: 30 });
  const started = Date.now();
  await store.put('a', Buffer.from('1'));
  await store.get('a');
  assert.ok(Date.now() - started >= 55);
});

test('heal after a crash loses or truncates only the undurable puts not yet synced', async () => {
  const inner = new MemoryObjectStore();
  const fates = { lost: 'lose', cut: 'truncate', kept: 'keep', synced: 'lose' } as const;
  const store = new FaultInjectingStore(inner, {
    crashAfterMutations: 6,
    undurable: (key) => fates[key as keyof typeof fates],
  });
  await store.put('synced', Buffer.from('0123'), { durable: false });
  await store.sync();
  await store.put('lost', Buffer.from('0123'), { durable: false });
  await store.put('cut', Buffer.from('0123'), { durable: false });
  await store.put('kept', Buffer.from('0123'), { durable: false });
  assert.deepEqual([...store.unsyncedKeys].sort(), ['cut', 'kept', 'lost']);
  await store.put('durable', Buffer.from('0123'));
  await store.put('synced', Buffer.from('4567'), { durable: false }); // a replacement: durable
  await assert.rejects(store.put('late', Buffer.from('x'), { durable: false }), SimulatedCrash);
  await assert.rejects(store.sync(), SimulatedCrash);
  const damaged = await store.heal();
  assert.deepEqual(damaged.sort(), ['cut', 'lost']);
  assert.equal(await store.stat('lost'), undefined);
  assert.deepEqual(await store.get('cut'), Buffer.from('01'));
  assert.deepEqual(await store.get('kept'), Buffer.from('0123'));
  assert.deepEqual(await store.get('synced'), Buffer.from('4567'), 'synced puts survive');
  assert.deepEqual(await store.get('durable'), Buffer.from('0123'), 'durable puts survive');
  assert.equal(store.crashed, false);
  assert.deepEqual(store.unsyncedKeys, []);
});

test('heal without a crash damages nothing', async () => {
  const store = new FaultInjectingStore(new MemoryObjectStore(), { undurable: () => 'lose' });
  await store.put('a', Buffer.from('1'), { durable: false });
  assert.deepEqual(await store.heal(), []);
  assert.deepEqual(await store.get('a'), Buffer.from('1'));
});

test('heal after a crash may undo deletes made with durable: false, never durable ones', async () => {
  const inner = new MemoryObjectStore();
  const store = new FaultInjectingStore(inner, { crashAfterMutations: 6, undurable: () => 'lose' });
  for (const key of ['a', 'b', 'c']) await store.put(key, Buffer.from(key));
  await store.delete('a', { durable: false });
  await store.sync();
  await store.delete('b', { durable: false });
  await store.delete('c');
  await assert.rejects(store.delete('x'), SimulatedCrash);
  assert.deepEqual((await store.heal()).sort(), ['b']);
  assert.equal(await inner.stat('a'), undefined, 'synced delete stays');
  assert.deepEqual(await inner.get('b'), Buffer.from('b'), 'unsynced delete undone');
  assert.equal(await inner.stat('c'), undefined, 'durable delete stays');
});
