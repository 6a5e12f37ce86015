// S3 store throughput on a local OpenStack Swift (started here): 2 MiB objects, 8 in flight, put
// and get through S3ObjectStore, against curl doing the same transfers over Swift's native API on
// the same server (8 parallel curl processes). Run: node --import tsx bench/s3-store.ts [objects]
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { formatRate, MiB } from '../src/core/index.ts';
import { S3ObjectStore } from '../src/storage/s3-store.ts';
import { makeTempDir, requireTool, run, startSwift } from '../test/harness/index.ts';

const objects = Number(process.argv[2] ?? 64);
const objectBytes = 2 * MiB;
const curl = requireTool('curl');
const swift = await startSwift();
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
  const store = new S3ObjectStore({
    endpoint: swift.endpoint,
    region: swift.region,
    bucket: 'bench',
    accessKeyId: swift.accessKeyId,
    secretAccessKey: swift.secretAccessKey,
    conditionalPut: false,
  });
  await store.client.send(new CreateBucketCommand({ Bucket: 'bench' }));
  const body = randomBytes(objectBytes);
  const file = join(tmp.path, 'object');
  await writeFile(file, body);
  const auth = await fetch(`${swift.endpoint}/auth/v1.0`, {
    headers: { 'X-Auth-User': 'test:tester', 'X-Auth-Key': 'testing' },
  });
  const token = auth.headers.get('x-auth-token') ?? '';
  const storageUrl = auth.headers.get('x-storage-url') ?? '';
  const curlAll = (args: (i: number) => string[]) =>
    inParallel(objects, 8, async (i) => {
      await run(curl, ['-sfS', '-H', `X-Auth-Token: ${token}`, ...args(i)]);
    });

  const putMs = await timed(() => inParallel(objects, 8, (i) => store.put(`s3/${i}`, body)));
  const curlPutMs = await timed(() =>
    curlAll((i) => ['-T', file, `${storageUrl}/bench/native/${i}`]),
  );
  const getMs = await timed(() =>
    inParallel(objects, 8, async (i) => {
      if ((await store.get(`s3/${i}`)).length !== objectBytes) throw new Error('short read');
    }),
  );
  const curlGetMs = await timed(() =>
    curlAll((i) => ['-o', '/dev/null', `${storageUrl}/bench/native/${i}`]),
  );
  const bytes = objects * objectBytes;
  console.log(`S3 store on local Swift, ${objects} objects of 2 MiB, 8 in flight`);
  console.log(
    `put: ${formatRate(bytes, putMs)}   curl (Swift API): ${formatRate(bytes, curlPutMs)}   ratio ${(curlPutMs / putMs).toFixed(2)}x`,
  );
  console.log(
    `get: ${formatRate(bytes, getMs)}   curl (Swift API): ${formatRate(bytes, curlGetMs)}   ratio ${(curlGetMs / getMs).toFixed(2)}x`,
  );
  await store.close();
} finally {
  await swift.stop();
  await tmp.remove();
}
