/** Per-test temporary folders, removed when the test ends (kept when VMDELTA_KEEP_TMP=1). */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TempDir {
  readonly path: string;
  remove(): Promise<void>;
}

export async function makeTempDir(prefix = 'vmdelta-test-'): Promise<TempDir> {
  // Short paths: unix socket paths are limited to 107 bytes.
  const path = await mkdtemp(join(tmpdir(), prefix));
  return {
    path,
    remove: async () => {
      if (process.env['VMDELTA_KEEP_TMP'] !== '1')
        await rm(path, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
    },
  };
}
