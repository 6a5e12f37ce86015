/**
 * s3rver (npm), the quick S3 test tier (reference s3.md §3): a separate Node process serving a
 * temporary folder on a free 127.0.0.1 port, with the legacy OpenSSL provider its paginated
 * listing needs; stopped by pid. Credentials S3RVER / S3RVER. Known deviations (suffix ranges,
 * multipart limits, ListMultipartUploads) mean S3 behaviour that matters is asserted on Swift.
 */
import { fileURLToPath } from 'node:url';
import { makeTempDir } from './tmp.ts';
import { canConnect, freePort, startChild } from './process.ts';

export interface S3rverServer {
  readonly endpoint: string;
  readonly region: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly bucket: string;
  readonly pid: number;
  stop(): Promise<void>;
}

const launcher = `
'use strict';
const S3rver = require('s3rver');
const [port, directory, bucket] = process.argv.slice(1);
const server = new S3rver({ port: Number(port), address: '127.0.0.1', directory, silent: true,
  configureBuckets: [{ name: bucket }] });
server.run().then(() => console.log('READY'), (e) => { console.error(e); process.exit(1); });
process.on('SIGTERM', () => server.close().then(() => process.exit(0)));
`;

export async function startS3rver(bucket = 'vmdelta-test'): Promise<S3rverServer> {
  const tmp = await makeTempDir('vmdelta-s3rver-');
  const port = await freePort();
  const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
  const child = await startChild({
    command: process.execPath,
    args: ['-e', launcher, String(port), tmp.path, bucket],
    env: {
      ...process.env,
      NODE_OPTIONS: '--openssl-legacy-provider',
      NODE_PATH: `${repoRoot}node_modules`,
    },
    what: 's3rver',
    ready: () => canConnect({ host: '127.0.0.1', port }),
  });
  return {
    endpoint: `http://127.0.0.1:${port}`,
    region: 'us-east-1',
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    bucket,
    pid: child.pid,
    stop: async () => {
      await child.stop();
      await tmp.remove();
    },
  };
}
