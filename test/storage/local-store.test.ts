// The conformance suite against the local-folder store, plus what only a folder can get wrong:
// temporary files left by a killed writer, symlinks, key/folder conflicts, empty-folder cleanup.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, readdir, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { LocalObjectStore, MemoryObjectStore } from '../../src/storage/index.ts';
import { makeTempDir } from '../harness/index.ts';
import { describeObjectStoreConformance, isStorageError } from './conformance.ts';

describeObjectStoreConformance(
  'local',
  async () => {
    const tmp = await makeTempDir();
    return { store: new LocalObjectStore(join(tmp.path, 'store')), cleanup: () => tmp.remove() };
  },
  { paginationKeys: 300, largeObjectBytes: 12 * 1024 * 1024 },
);

describeObjectStoreConformance(
  'local, sync by syncfs',
  async () => {
    const tmp = await makeTempDir();
    return {
      store: new LocalObjectStore(join(tmp.path, 'store'), { syncMethod: 'syncfs' }),
      cleanup: () => tmp.remove(),
    };
  },
  { paginationKeys: 30, largeObjectBytes: 1024 * 1024 },
);

async function withLocal(fn: (store: LocalObjectStore, root: string) => Promise<void>) {
  const tmp = await makeTempDir();
  try {
    const root = join(tmp.path, 'store');
    await mkdir(root);
    await fn(new LocalObjectStore(root), root);
  } finally {
    await tmp.remove();
  }
}

test('a temporary file left by a crashed put is invisible, and swept once old', async () => {
  await withLocal(async (store, root) => {
    await store.put('vm/a', Buffer.from('committed'));
    // What a writer killed between write and rename leaves behind.
    const temp = join(root, 'vm', `.vmdelta-tmp 1234 deadbeef`);
    await writeFile(temp, 'half of an obj');
    const keys = [];
    for await (const info of store.list('')) keys.push(info.key);
    assert.deepEqual(keys, ['vm/a']);
    assert.equal(await store.sweepTemporaryFiles(60_000), 0, 'a fresh temp file may be in use');
    const old = new Date(Date.now() - 120_000);
    await utimes(temp, old, old);
    assert.equal(await store.sweepTemporaryFiles(60_000), 1);
    assert.deepEqual((await readdir(join(root, 'vm'))).sort(), ['a']);
  });
});

test('a put killed mid-way (SIGKILL) leaves no visible object', async () => {
  await withLocal(async (store, root) => {
    // A child process writes 64 MiB objects in a loop; we kill it while it writes.
    const script = `
      import { LocalObjectStore } from ${JSON.stringify(new URL('../../src/storage/index.ts', import.meta.url).href)};
      const store = new LocalObjectStore(${JSON.stringify(root)});
      const body = Buffer.alloc(64 * 1024 * 1024, 0xab);
      process.stdout.write('start\\n');
      for (let i = 0; ; i++) await store.put('k/' + i, body);
    `;
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    // Kill it while the second object's temporary file is being written (the first object is
    // committed by then), so the kill lands mid-put.
    const deadline = Date.now() + 30_000;
    let caughtMidPut = false;
    while (Date.now() < deadline && !caughtMidPut) {
      const names = await readdir(join(root, 'k')).catch(() => [] as string[]);
      caughtMidPut = names.includes('0') && names.some((name) => name.startsWith('.vmdelta-tmp'));
      if (!caughtMidPut) await new Promise((r) => setTimeout(r, 1));
    }
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    assert.ok(caughtMidPut, 'the child was killed during a put');
    const keys: string[] = [];
    for await (const info of store.list('')) {
      keys.push(info.key);
      assert.equal(info.sizeBytes, 64 * 1024 * 1024, `${info.key} is whole`);
    }
    assert.ok(keys.includes('k/0'), 'the committed object survives');
    const swept = await store.sweepTemporaryFiles(0);
    assert.ok(swept <= 1, 'at most the one in-flight temporary file');
    const left = await readdir(join(root, 'k')).catch(() => []);
    assert.ok(
      left.every((name) => /^\d+$/.test(name)),
      `only objects remain: ${left.join(',')}`,
    );
  });
});

test('a symlinked folder inside the store cannot redirect reads or writes', async () => {
  await withLocal(async (store, root) => {
    const outside = join(root, '..', 'outside');
    await mkdir(outside);
    await writeFile(join(outside, 'secret'), 'outside data');
    await symlink(outside, join(root, 'link'));
    await assert.rejects(store.get('link/secret'), isStorageError('STORAGE_INVALID_KEY'));
    await assert.rejects(
      store.put('link/new', Buffer.from('x')),
      isStorageError('STORAGE_INVALID_KEY'),
    );
    assert.deepEqual(await readdir(outside), ['secret']);
    await symlink(join(outside, 'secret'), join(root, 'file-link'));
    await assert.rejects(store.get('file-link'), isStorageError('STORAGE_NOT_FOUND'));
    const keys = [];
    for await (const info of store.list('')) keys.push(info.key);
    assert.deepEqual(keys, [], 'symlinks are not listed');
  });
});

test('a key cannot be both an object and a folder on a local store', async () => {
  await withLocal(async (store) => {
    await store.put('a/b', Buffer.from('x'));
    await assert.rejects(store.put('a', Buffer.from('y')), isStorageError('STORAGE_KEY_CONFLICT'));
    await assert.rejects(
      store.put('a', Buffer.from('y'), { ifAbsent: true }),
      isStorageError('STORAGE_KEY_CONFLICT'),
    );
    await assert.rejects(
      store.put('a/b/c', Buffer.from('z')),
      isStorageError('STORAGE_KEY_CONFLICT'),
    );
    assert.deepEqual(await store.get('a/b'), Buffer.from('x'));
  });
});

test('delete removes the folders it empties, never the root', async () => {
  await withLocal(async (store, root) => {
    await store.put('x/y/z/1', Buffer.from('1'));
    await store.put('x/2', Buffer.from('2'));
    await store.delete('x/y/z/1');
    assert.deepEqual(await readdir(join(root, 'x')), ['2']);
    await store.delete('x/2');
    assert.deepEqual(await readdir(root), []);
  });
});

test('concurrent puts and deletes in one folder do not lose puts', async () => {
  await withLocal(async (store) => {
    const work = [];
    for (let i = 0; i < 200; i += 1) {
      work.push(store.put(`f/${i}`, Buffer.from(String(i))).then(() => store.delete(`f/${i}`)));
      work.push(store.put(`f/keep-${i}`, Buffer.from(String(i))));
    }
    await Promise.all(work);
    let count = 0;
    for await (const info of store.list('f/')) {
      assert.match(info.key, /^f\/keep-/);
      count += 1;
    }
    assert.equal(count, 200);
  });
});

test('property: a local listing equals the in-memory model for random keys and prefixes', async () => {
  const segment = fc.stringMatching(/^[-.0Aa_~]{1,3}$/).filter((s) => s !== '.' && s !== '..');
  const key = fc.array(segment, { minLength: 1, maxLength: 3 }).map((parts) => parts.join('/'));
  await withLocal(async (_unused, root) => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(key, { minLength: 1, maxLength: 25 }),
        fc.string({ unit: fc.constantFrom('-', '.', '/', '0', 'A', 'a'), maxLength: 4 }),
        async (keys, rawPrefix) => {
          run += 1;
          // A folder cannot also be an object on a local store: drop keys that are folders.
          const objects = keys.filter((k) => !keys.some((other) => other.startsWith(`${k}/`)));
          const local = new LocalObjectStore(join(root, String(run)), { durable: false });
          const model = new MemoryObjectStore();
          for (const k of objects) {
            await local.put(k, Buffer.from(k));
            await model.put(k, Buffer.from(k));
          }
          const prefix = /^(\/|.*\/\/|.*(^|\/)\.{1,2}(\/|$))/.test(rawPrefix) ? '' : rawPrefix;
          const listed = [];
          for await (const info of local.list(prefix)) listed.push(info.key);
          const expected = [];
          for await (const info of model.list(prefix)) expected.push(info.key);
          assert.deepEqual(listed, expected, `prefix ${JSON.stringify(prefix)}`);
        },
      ),
      { numRuns: 60 },
    );
  });
});

test('objects are private to the owner (0600 files, 0700 folders)', async () => {
  await withLocal(async (store, root) => {
    await store.put('vm/disk/block', Buffer.from('secret disk data'));
    assert.equal((await stat(join(root, 'vm', 'disk', 'block'))).mode & 0o077, 0);
    assert.equal((await stat(join(root, 'vm'))).mode & 0o077, 0);
  });
});

test('sync() copes with deferred objects and folders deleted before it runs', async () => {
  await withLocal(async (store, root) => {
    await store.put('x/y/a', Buffer.from('a'), { durable: false });
    await store.put('x/z/b', Buffer.from('b'), { durable: false });
    await store.delete('x/y/a'); // removes x/y too
    await store.sync();
    assert.deepEqual(await readdir(join(root, 'x')), ['z']);
    assert.deepEqual(await store.get('x/z/b'), Buffer.from('b'));
  });
});
