/**
 * The benchmarks' data: real files (shared libraries, binaries, data files of /usr/lib, each
 * 4 KiB–64 MiB) concatenated up to `targetBytes`, in directory walk order.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { MiB } from '../src/core/index.ts';

export async function corpus(targetBytes: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let total = 0;
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      if (total >= targetBytes) return;
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (entry.isFile()) {
        const info = await stat(path).catch(() => undefined);
        if (info === undefined || info.size < 4096 || info.size > 64 * MiB) continue;
        const data = await readFile(path).catch(() => undefined);
        if (data === undefined) continue;
        parts.push(data);
        total += data.length;
      }
    }
  };
  await walk('/usr/lib');
  return Buffer.concat(parts).subarray(0, targetBytes);
}
