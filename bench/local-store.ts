// Local object store throughput: 2 MiB objects, 8 in flight, against `cp` + `sync` of the same
// bytes as one file: durable puts (each fsynced, renamed, folder fsynced), then deferred puts
// (durable: false) followed by one sync(), by fsync of each file and folder and by syncfs; then
// reading them back against `cat`. Run: node --import tsx bench/local-store.ts [totalMiB]
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LocalObjectStore } from '../src/storage/index.ts';
import { formatRate, MiB } from '../src/core/index.ts';
import { makeTempDir, run } from '../test/harness/index.ts';

const totalMiB = Number(process.argv[2] ?? 512);
const blockBytes = 2 * MiB;
const blocks = (totalMiB * MiB) / blockBytes;
const data = randomBytes(totalMiB * MiB);
const tmp = await makeTempDir('vmdelta-bench-');

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await fn();
  return performance.now() - started;
}

async function inParallel(count: number, width: number, task: (i: number) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < count) {
        const i = next;
        next += 1;
        await task(i);
      }
    }),
  );
}

try {
  const source = join(tmp.path, 'source.raw');
  await writeFile(source, data);
  await run('sync', []);
  const store = new LocalObjectStore(join(tmp.path, 'store'));
  const block = (i: number): Buffer => data.subarray(i * blockBytes, (i + 1) * blockBytes);
  const key = (i: number): string => `chain/blocks/${String(i).padStart(6, '0')}`;

  const putMs = await timed(() => inParallel(blocks, 8, (i) => store.put(key(i), block(i))));
  const deferredMs: Record<string, number> = {};
  for (const syncMethod of ['fsync', 'syncfs'] as const) {
    const deferred = new LocalObjectStore(join(tmp.path, `store-${syncMethod}`), { syncMethod });
    await run('sync', []);
    deferredMs[syncMethod] = await timed(async () => {
      await inParallel(blocks, 8, (i) => deferred.put(key(i), block(i), { durable: false }));
      await deferred.sync();
    });
  }
  const cpMs = await timed(async () => {
    await run('cp', [source, join(tmp.path, 'copy.raw')]);
    await run('sync', []);
  });
  const getMs = await timed(() =>
    inParallel(blocks, 8, async (i) => {
      const read = await store.get(key(i));
      if (read.length !== blockBytes) throw new Error('short read');
    }),
  );
  const catMs = await timed(() =>
    run('sh', ['-c', `cat ${JSON.stringify(join(tmp.path, 'copy.raw'))} > /dev/null`]),
  );
  const bytes = totalMiB * MiB;
  console.log(`local store, ${totalMiB} MiB in ${blocks} objects of 2 MiB, 8 in flight`);
  console.log(
    `put (fsync each): ${formatRate(bytes, putMs)}   cp+sync: ${formatRate(bytes, cpMs)}   ratio ${(cpMs / putMs).toFixed(2)}x`,
  );
  for (const [method, ms] of Object.entries(deferredMs)) {
    console.log(
      `deferred puts + one sync() by ${method}: ${formatRate(bytes, ms)}   ratio ${(cpMs / ms).toFixed(2)}x`,
    );
  }
  console.log(
    `get: ${formatRate(bytes, getMs)}   cat: ${formatRate(bytes, catMs)}   ratio ${(catMs / getMs).toFixed(2)}x`,
  );
} finally {
  await tmp.remove();
}
