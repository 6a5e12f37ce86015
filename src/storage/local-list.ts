/**
 * Listing a folder tree as object keys in lexicographic key order, streaming.
 *
 * Key order is byte order of the whole key, which a naive sorted walk gets wrong: "a-c" < "a/b"
 * because '-' < '/', yet the folder "a" sorts before the file "a-c". Sorting a folder's entries by
 * `name + '/'` for subfolders and `name` for files gives exactly key order (a subfolder's keys all
 * start with `name/`, and no sibling file can be a prefix of it but `name` itself, which cannot
 * coexist with the folder). Memory holds one folder's entry names per level of depth, never the
 * whole tree: the walk is depth-first and yields as it goes.
 */
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { ObjectInfo } from './object-store.ts';
import { errnoOf, isObjectName, isTemporaryName } from './local-paths.ts';
import { throwIfAborted } from '../core/index.ts';

interface Entry {
  readonly name: string;
  readonly sortKey: string;
  readonly isDirectory: boolean;
}

async function readFolder(dir: string): Promise<Entry[]> {
  let dirents;
  try {
    dirents = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    const code = errnoOf(error);
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw error;
  }
  const entries: Entry[] = [];
  for (const dirent of dirents) {
    // Symlinks, sockets, temporary files and names no key can have are not objects.
    if (!isObjectName(dirent.name)) continue;
    if (dirent.isDirectory()) {
      entries.push({ name: dirent.name, sortKey: `${dirent.name}/`, isDirectory: true });
    } else if (dirent.isFile()) {
      entries.push({ name: dirent.name, sortKey: dirent.name, isDirectory: false });
    }
  }
  entries.sort((a, b) => (a.sortKey < b.sortKey ? -1 : a.sortKey > b.sortKey ? 1 : 0));
  return entries;
}

const STAT_BATCH = 64;

/**
 * Yields every object under `root` whose key starts with `prefix`, in key order. `prefix` has been
 * validated (checkObjectPrefix).
 */
export async function* walkObjects(
  root: string,
  prefix: string,
  signal?: AbortSignal,
): AsyncGenerator<ObjectInfo> {
  const slash = prefix.lastIndexOf('/');
  const baseKey = slash < 0 ? '' : prefix.slice(0, slash + 1);
  const namePrefix = prefix.slice(slash + 1);
  yield* walkFolder(root, baseKey, namePrefix, signal);
}

async function* walkFolder(
  root: string,
  baseKey: string,
  namePrefix: string,
  signal: AbortSignal | undefined,
): AsyncGenerator<ObjectInfo> {
  throwIfAborted(signal);
  const dir = baseKey === '' ? root : join(root, ...baseKey.slice(0, -1).split('/'));
  const entries = (await readFolder(dir)).filter((entry) => entry.name.startsWith(namePrefix));
  for (let start = 0; start < entries.length;) {
    // Stat a run of consecutive files at once; descend into folders in order.
    const first = entries[start];
    if (first === undefined) break;
    if (first.isDirectory) {
      yield* walkFolder(root, `${baseKey}${first.name}/`, '', signal);
      start += 1;
      continue;
    }
    let end = start;
    while (end < entries.length && end - start < STAT_BATCH && entries[end]?.isDirectory === false)
      end += 1;
    const batch = entries.slice(start, end);
    const infos = await Promise.all(
      batch.map(async (entry): Promise<ObjectInfo | undefined> => {
        try {
          const stats = await lstat(join(dir, entry.name));
          if (!stats.isFile()) return undefined;
          return {
            key: `${baseKey}${entry.name}`,
            sizeBytes: stats.size,
            modifiedMs: Math.floor(stats.mtimeMs),
          };
        } catch (error) {
          if (errnoOf(error) === 'ENOENT') return undefined; // deleted meanwhile
          throw error;
        }
      }),
    );
    for (const info of infos) if (info !== undefined) yield info;
    start = end;
  }
}

/** Every temporary file under `root` (depth-first), with its modification time. */
export async function* walkTemporaryFiles(
  root: string,
): AsyncGenerator<{ path: string; modifiedMs: number }> {
  let dirents;
  try {
    dirents = await readdir(root, { withFileTypes: true });
  } catch (error) {
    if (errnoOf(error) === 'ENOENT' || errnoOf(error) === 'ENOTDIR') return;
    throw error;
  }
  for (const dirent of dirents) {
    const path = join(root, dirent.name);
    if (dirent.isDirectory() && isObjectName(dirent.name)) {
      yield* walkTemporaryFiles(path);
    } else if (dirent.isFile() && isTemporaryName(dirent.name)) {
      try {
        yield { path, modifiedMs: (await lstat(path)).mtimeMs };
      } catch (error) {
        if (errnoOf(error) !== 'ENOENT') throw error;
      }
    }
  }
}
