/**
 * Finding the parent of a differencing VHD: the W2ru, MacX and W2ku locators in that order, then
 * the parent unicode name, each resolved relative to the child's folder (an absolute Windows path
 * falls back to its basename there). The first candidate that exists is opened and must carry the
 * footer uuid the child names in header.parentUuid.
 */
import { access } from 'node:fs/promises';
import { basename, dirname, isAbsolute, resolve } from 'node:path';
import { PlatformCode } from './constants.ts';
import { VhdError } from './errors.ts';
import { openVhdFile, type VhdReader } from './vhd-reader.ts';

const locatorPreference = [PlatformCode.W2ru, PlatformCode.MacX, PlatformCode.W2ku];

/** Candidate parent paths, most trusted first, without duplicates. */
export async function parentCandidates(childPath: string, child: VhdReader): Promise<string[]> {
  const folder = dirname(childPath);
  const candidates: string[] = [];
  const add = (path: string): void => {
    if (!candidates.includes(path)) candidates.push(path);
  };
  const located = await child.locatorPaths();
  located.sort(
    (a, b) =>
      locatorPreference.indexOf(a.platformCode as never) -
      locatorPreference.indexOf(b.platformCode as never),
  );
  for (const { path } of located) {
    if (/^[A-Za-z]:\//.test(path) || path.startsWith('//')) add(resolve(folder, basename(path)));
    else if (isAbsolute(path)) {
      add(path);
      add(resolve(folder, basename(path)));
    } else add(resolve(folder, path));
  }
  const name = child.header?.parentUnicodeName ?? '';
  if (name !== '') add(resolve(folder, name.replaceAll('\\', '/')));
  return candidates;
}

export async function findParentPath(childPath: string, child: VhdReader): Promise<string> {
  const candidates = await parentCandidates(childPath, child);
  for (const candidate of candidates) {
    try {
      await access(candidate);
      return candidate;
    } catch {
      // try the next one
    }
  }
  throw new VhdError(
    'VHD_PARENT_NOT_FOUND',
    `${childPath}: no parent found (tried ${candidates.join(', ') || 'nothing: no locator, no parent name'})`,
    {
      details: { field: 'header.parentLocators', candidates },
    },
  );
}

/** Opens the parent of `child` and checks its uuid against header.parentUuid. */
export async function openParent(
  childPath: string,
  child: VhdReader,
): Promise<{ path: string; reader: VhdReader }> {
  const path = await findParentPath(childPath, child);
  const reader = await openVhdFile(path);
  const expected = child.header?.parentUuid;
  if (reader.footer.uniqueId !== expected) {
    await reader.close();
    throw new VhdError(
      'VHD_PARENT_MISMATCH',
      `${childPath}: parent ${path} has uuid ${reader.footer.uniqueId}, header.parentUuid is ${expected ?? '-'}`,
      {
        details: { field: 'header.parentUuid', parentPath: path },
      },
    );
  }
  return { path, reader };
}
