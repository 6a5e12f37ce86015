/**
 * An ObjectStore on a local folder (the embedded default remote).
 *
 * put: the body goes to a temporary file in the target's folder (opened O_EXCL), is fsynced and
 * closed, then becomes the object in one atomic step, and the folder is fsynced so the new name
 * survives a power cut. Readers therefore see the old object, none, or the whole new one; a crash
 * at any point leaves at most a temporary file, which list ignores and sweepTemporaryFiles removes.
 * - plain put: rename(temp, target) — atomic replacement (POSIX rename).
 * - put-if-absent: link(temp, target) then unlink(temp). link() fails with EEXIST when the target
 *   exists, atomically, so of two racing writers exactly one wins, and the loser's bytes never
 *   become visible. (O_EXCL on the target itself would make an empty object visible before its
 *   content.) Filesystems without hard links make put-if-absent fail with STORAGE_IO.
 * Deferred delete (`durable: false`): no folder fsync (the folder is recorded for `sync()`).
 * Deferred put (`durable: false`, of a key that does not exist yet; a replacement is durable):
 * the same steps without any fsync; the target file and the folders whose entries changed are
 * recorded, each such file is fsynced in the background as soon as it is written (early
 * writeback, local-writeback.ts), and `sync()` makes them all durable at once (fsync
 * of each recorded file, then of each recorded folder, many in parallel; or one syncfs(2) of the
 * whole filesystem through `sync -f`, option `syncMethod`). A crash before `sync()` may lose such
 * an object or leave it empty or truncated (never another object's content).
 * Backups are private: objects are created mode 0600 and folders 0700 (before the umask).
 * Folders are created on demand (and the parents of new folders fsynced); delete removes the
 * folders it leaves empty, best-effort. See local-paths.ts for key mapping and symlink rules and
 * local-list.ts for the listing order.
 */
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { promisify } from 'node:util';
import { link, lstat, mkdir, open, rename, rmdir, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { CoreError, throwIfAborted } from '../core/index.ts';
import { StorageError } from './errors.ts';
import { checkObjectKey, checkObjectPrefix } from './object-key.ts';
import type {
  ByteRange,
  DeleteOptions,
  ObjectInfo,
  ObjectStore,
  PutOptions,
  StoreProperties,
  GetOptions,
} from './object-store.ts';
import { resolveRange } from './byte-range.ts';
import {
  DRAIN_SYNC_PARALLELISM,
  forEachParallel,
  syncFileByPath,
  WritebackQueue,
} from './local-writeback.ts';
import { errnoOf, keyToPath, RootGuard, temporaryName } from './local-paths.ts';
import { walkObjects, walkTemporaryFiles } from './local-list.ts';

export interface LocalStoreOptions {
  /** Requests worth running at once (default 8). */
  readonly maxConcurrency?: number;
  /** fsync files and folders (default true; only tests of throughput may turn it off). */
  readonly durable?: boolean;
  /**
   * How `sync()` makes deferred puts durable: 'fsync' (default) fsyncs the recorded files and
   * folders, 64 at a time; 'syncfs' runs `sync -f <root>` (one syncfs(2) of the filesystem, which
   * also flushes other writers' data on it).
   */
  readonly syncMethod?: 'fsync' | 'syncfs';
}

const execFileAsync = promisify(execFile);

function ioError(what: string, key: string, error: unknown): StorageError {
  const errno = errnoOf(error);
  // Out of space, quotas and I/O errors may clear up; permissions and read-only mounts will not.
  const retryable =
    errno === 'EIO' || errno === 'EAGAIN' || errno === 'EBUSY' || errno === 'EMFILE';
  return new StorageError('STORAGE_IO', `${what} ${key} failed (${errno ?? 'error'})`, {
    cause: error,
    retryable,
    details: { key, errno },
  });
}

export class LocalObjectStore implements ObjectStore {
  readonly properties: StoreProperties;
  readonly root: string;
  readonly #guard: RootGuard;
  readonly #durable: boolean;
  readonly #syncMethod: 'fsync' | 'syncfs';
  /** Files and folders changed by deferred puts and not yet synced. */
  #unsyncedFiles = new Set<string>();
  #unsyncedFolders = new Set<string>();
  readonly #writeback = new WritebackQueue((path) => this.#unsyncedFiles.delete(path));

  constructor(root: string, options: LocalStoreOptions = {}) {
    this.root = resolve(root);
    this.#guard = new RootGuard(this.root);
    this.#durable = options.durable ?? true;
    this.#syncMethod = options.syncMethod ?? 'fsync';
    this.properties = {
      displayName: `local:${this.root}`,
      maxConcurrency: options.maxConcurrency ?? 8,
      conditionalPut: true,
    };
  }

  async put(key: string, body: Buffer, options: PutOptions = {}): Promise<void> {
    checkObjectKey(key);
    throwIfAborted(options.signal);
    const target = keyToPath(this.root, key);
    const dir = dirname(target);
    const temp = join(dir, temporaryName());
    // Replacing an object is made durable at once: the old content may be committed data.
    const deferred = options.durable === false && !(await this.#exists(target));
    try {
      // A concurrent delete may remove a folder it found empty between our mkdir and open.
      for (let attempt = 0; ; attempt += 1) {
        await this.#makeFolders(dir, key, deferred);
        try {
          await this.#writeTemporary(temp, body, deferred);
          break;
        } catch (error) {
          if (errnoOf(error) !== 'ENOENT' || attempt >= 4) throw error;
        }
      }
      throwIfAborted(options.signal);
      await this.#guard.checkInsideRoot(dir, key);
      if (options.ifAbsent === true) {
        try {
          await link(temp, target);
        } catch (error) {
          if (errnoOf(error) === 'EEXIST') {
            if ((await lstat(target)).isDirectory()) throw this.#conflict(key, error);
            throw new StorageError('STORAGE_ALREADY_EXISTS', `${key} already exists`, {
              details: { key },
            });
          }
          throw error;
        }
        // The object is committed; a leftover temp file is only garbage for the sweep.
        await unlink(temp).catch(() => undefined);
      } else {
        await rename(temp, target);
      }
      if (deferred) {
        if (this.#durable) {
          this.#unsyncedFiles.add(target);
          this.#unsyncedFolders.add(dir);
          if (this.#syncMethod === 'fsync') this.#writeback.schedule(target);
        }
      } else {
        await this.#syncFolder(dir);
      }
    } catch (error) {
      await unlink(temp).catch(() => undefined);
      throw this.#mapError('put', key, error);
    }
  }

  async #writeTemporary(temp: string, body: Buffer, deferred: boolean): Promise<void> {
    const handle = await open(temp, 'wx', 0o600);
    try {
      let offsetBytes = 0;
      while (offsetBytes < body.length) {
        const { bytesWritten } = await handle.write(body, offsetBytes, body.length - offsetBytes);
        offsetBytes += bytesWritten;
      }
      if (this.#durable && !deferred) await handle.sync();
    } finally {
      await handle.close();
    }
  }

  /** mkdir -p, then fsync the parent of every folder it created (new names must be durable). */
  async #makeFolders(dir: string, key: string, deferred: boolean): Promise<void> {
    let firstCreated: string | undefined;
    try {
      firstCreated = await mkdir(dir, { recursive: true, mode: 0o700 });
    } catch (error) {
      const errno = errnoOf(error);
      if (errno === 'EEXIST' || errno === 'ENOTDIR') throw this.#conflict(key, error);
      throw error;
    }
    if (firstCreated === undefined || !this.#durable) return;
    // Each new folder's name lives in its parent: fsync the parents down to (not including) the
    // object's own folder, which put fsyncs after the rename.
    let folder = dirname(firstCreated);
    while (folder !== dir) {
      if (deferred) this.#unsyncedFolders.add(folder);
      else await this.#syncFolder(folder);
      const next = relative(folder, dir).split(sep)[0];
      if (next === undefined || next === '') break;
      folder = join(folder, next);
    }
  }

  async #syncFolder(dir: string): Promise<void> {
    if (!this.#durable) return;
    const handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  async #exists(path: string): Promise<boolean> {
    try {
      await lstat(path);
      return true;
    } catch (error) {
      const errno = errnoOf(error);
      if (errno === 'ENOENT' || errno === 'ENOTDIR') return false;
      throw error;
    }
  }

  /** Makes every deferred put that resolved before this call durable (see the module comment). */
  async sync(): Promise<void> {
    const files = [...this.#unsyncedFiles];
    const folders = [...this.#unsyncedFolders];
    if (files.length === 0 && folders.length === 0) return;
    this.#unsyncedFiles = new Set();
    this.#unsyncedFolders = new Set();
    try {
      if (this.#syncMethod === 'syncfs') {
        await execFileAsync('sync', ['-f', this.root]);
        return;
      }
      // File contents first, then the folder entries that name them.
      await forEachParallel(files, DRAIN_SYNC_PARALLELISM, async (path) => {
        if (!(await this.#writeback.settle(path))) await syncFileByPath(path);
      });
      await forEachParallel(folders, DRAIN_SYNC_PARALLELISM, (path) =>
        this.#syncFolder(path).catch((error: unknown) => {
          if (errnoOf(error) !== 'ENOENT') throw error; // removed since, with its entries
        }),
      );
    } catch (error) {
      // Nothing is known durable: a later sync tries them all again.
      for (const path of files) this.#unsyncedFiles.add(path);
      for (const path of folders) this.#unsyncedFolders.add(path);
      throw this.#mapError('sync', this.root, error);
    }
  }

  #conflict(key: string, cause: unknown): StorageError {
    return new StorageError(
      'STORAGE_KEY_CONFLICT',
      `${key}: a key and the folder of other keys cannot share a name on a local folder`,
      { cause, details: { key } },
    );
  }

  #mapError(what: string, key: string, error: unknown): Error {
    if (error instanceof StorageError || error instanceof CoreError) return error;
    const errno = errnoOf(error);
    if (what === 'put' && (errno === 'EISDIR' || errno === 'ENOTDIR' || errno === 'EEXIST'))
      return this.#conflict(key, error);
    if (what === 'put' && (errno === 'EPERM' || errno === 'ENOTSUP' || errno === 'EOPNOTSUPP'))
      return new StorageError(
        'STORAGE_IO',
        `put ${key} failed (${errno}): the filesystem refused a hard link or rename`,
        { cause: error, details: { key, errno } },
      );
    return ioError(what, key, error);
  }

  async #openObject(key: string): Promise<FileHandle> {
    const path = keyToPath(this.root, key);
    await this.#guard.checkInsideRoot(dirname(path), key);
    try {
      return await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (error) {
      const errno = errnoOf(error);
      if (errno === 'ENOENT' || errno === 'ENOTDIR' || errno === 'ELOOP')
        throw new StorageError('STORAGE_NOT_FOUND', `${key} not found`, {
          cause: error,
          details: { key },
        });
      throw error;
    }
  }

  async get(key: string, range?: ByteRange, options?: GetOptions): Promise<Buffer> {
    checkObjectKey(key);
    throwIfAborted(options?.signal);
    try {
      const handle = await this.#openObject(key);
      try {
        const stats = await handle.stat();
        if (!stats.isFile()) throw new StorageError('STORAGE_NOT_FOUND', `${key} not found`);
        const { startBytes, endBytes } = resolveRange(key, range, stats.size);
        const lengthBytes = endBytes - startBytes;
        const offered = options?.allocate?.(lengthBytes);
        const buffer = offered?.length === lengthBytes ? offered : Buffer.allocUnsafe(lengthBytes);
        let doneBytes = 0;
        while (doneBytes < buffer.length) {
          const { bytesRead } = await handle.read(
            buffer,
            doneBytes,
            buffer.length - doneBytes,
            startBytes + doneBytes,
          );
          if (bytesRead === 0) throw new Error(`short read at ${startBytes + doneBytes}`);
          doneBytes += bytesRead;
        }
        return buffer;
      } finally {
        await handle.close();
      }
    } catch (error) {
      throw this.#mapError('get', key, error);
    }
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    checkObjectKey(key);
    const path = keyToPath(this.root, key);
    try {
      await this.#guard.checkInsideRoot(dirname(path), key);
      const stats = await lstat(path);
      if (!stats.isFile()) return undefined;
      return { key, sizeBytes: stats.size, modifiedMs: Math.floor(stats.mtimeMs) };
    } catch (error) {
      const errno = errnoOf(error);
      if (errno === 'ENOENT' || errno === 'ENOTDIR') return undefined;
      throw this.#mapError('stat', key, error);
    }
  }

  async *list(prefix: string, options?: { signal?: AbortSignal }): AsyncIterable<ObjectInfo> {
    checkObjectPrefix(prefix);
    try {
      yield* walkObjects(this.root, prefix, options?.signal);
    } catch (error) {
      throw this.#mapError('list', prefix, error);
    }
  }

  async delete(key: string, options: DeleteOptions = {}): Promise<void> {
    checkObjectKey(key);
    const path = keyToPath(this.root, key);
    try {
      await this.#guard.checkInsideRoot(dirname(path), key);
      await unlink(path);
    } catch (error) {
      const errno = errnoOf(error);
      // Absent, or a folder (a prefix is not an object): nothing to delete.
      if (errno === 'ENOENT' || errno === 'ENOTDIR' || errno === 'EISDIR') return;
      throw this.#mapError('delete', key, error);
    }
    if (options.durable === false) {
      if (this.#durable) this.#unsyncedFolders.add(dirname(path));
    } else {
      await this.#syncFolder(dirname(path)).catch(() => undefined);
    }
    await this.#removeEmptyFolders(dirname(path));
  }

  /** rmdir up towards the root while folders are empty; stops at the first non-empty one. */
  async #removeEmptyFolders(dir: string): Promise<void> {
    let folder = dir;
    while (folder !== this.root && folder.startsWith(this.root + sep)) {
      try {
        await rmdir(folder);
      } catch {
        return; // not empty (ENOTEMPTY), already gone, or busy: best-effort
      }
      folder = dirname(folder);
    }
  }

  /**
   * Removes temporary files older than `olderThanMs` (left by crashed or killed writers) and
   * returns how many. Use a window longer than any put can take.
   */
  async sweepTemporaryFiles(olderThanMs: number, nowMs = Date.now()): Promise<number> {
    let removed = 0;
    for await (const temp of walkTemporaryFiles(this.root)) {
      if (nowMs - temp.modifiedMs < olderThanMs) continue;
      try {
        await unlink(temp.path);
        removed += 1;
      } catch (error) {
        if (errnoOf(error) !== 'ENOENT') throw ioError('sweep', temp.path, error);
      }
    }
    return removed;
  }

  async close(): Promise<void> {
    // nothing to release: every operation opens and closes its own files
  }
}
