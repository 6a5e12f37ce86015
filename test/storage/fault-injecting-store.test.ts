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
