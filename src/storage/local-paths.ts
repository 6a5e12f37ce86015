/**
 * How the local store maps keys to paths, names its temporary files, and refuses to leave its
 * root folder.
 *
 * - A key "a/b/c" is the file `<root>/a/b/c`. checkObjectKey already rejects '..', '.', empty
 *   segments and a leading '/', so a key can never name a path outside the root by itself.
 * - Symlinks: the store never creates any. The last path component is opened with O_NOFOLLOW, the
 *   listing does not descend into or report symlinks, and `checkInsideRoot` compares the real
 *   path of an object's folder with the real path of the root, so a symlinked folder planted in
 *   the tree cannot redirect reads or writes elsewhere.
 * - Temporary files live in the folder of their target (rename stays on one filesystem) and have a
 *   space in their name: keys are printable ASCII without spaces, so no temporary file can ever be
 *   mistaken for an object (list skips them, sweepTemporaryFiles removes them).
 */
import { randomBytes } from 'node:crypto';
import { realpath } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { StorageError } from './errors.ts';

export const TEMP_MARKER = '.vmdelta-tmp ';

export function temporaryName(): string {
  return `${TEMP_MARKER}${String(process.pid)} ${randomBytes(6).toString('hex')}`;
}

export function isTemporaryName(name: string): boolean {
  return name.startsWith(TEMP_MARKER);
}

/** A name a key segment may have (printable ASCII, no space); anything else is not an object. */
export function isObjectName(name: string): boolean {
  return /^[\x21-\x7e]+$/.test(name) && name !== '.' && name !== '..';
}

export function keyToPath(root: string, key: string): string {
  return join(root, ...key.split('/'));
}

export function errnoOf(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error
    ? String(error.code)
    : undefined;
}

/** Resolves the real root once; the root itself may be a symlink (that is the operator's choice). */
export class RootGuard {
  readonly root: string;
  #realRoot: Promise<string> | undefined;

  constructor(root: string) {
    this.root = root;
  }

  async #real(): Promise<string> {
    this.#realRoot ??= realpath(this.root).catch((error: unknown) => {
      this.#realRoot = undefined;
      throw error;
    });
    return this.#realRoot;
  }

  /**
   * Throws STORAGE_INVALID_KEY when `dir` (an existing folder of the tree) resolves outside the
   * root, i.e. a component of it is a symlink pointing elsewhere. A missing folder passes: the
   * caller's open/mkdir reports it.
   */
  async checkInsideRoot(dir: string, key: string): Promise<void> {
    let realDir: string;
    try {
      realDir = await realpath(dir);
    } catch (error) {
      if (errnoOf(error) === 'ENOENT' || errnoOf(error) === 'ENOTDIR') return;
      throw error;
    }
    const realRoot = await this.#real();
    if (realDir !== realRoot && !realDir.startsWith(realRoot + sep)) {
      throw new StorageError(
        'STORAGE_INVALID_KEY',
        `${key}: its folder resolves outside the store (a symlink in the tree)`,
        { details: { key } },
      );
    }
  }
}
