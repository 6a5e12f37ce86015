/** Object key validation shared by every store: '/'-separated, printable ASCII, no traversal. */
import { StorageError } from './errors.ts';

const segmentPattern = /^[\x21-\x7e]+$/;

export function checkObjectKey(key: string): void {
  const segments = key.split('/');
  const bad =
    key.length === 0 ||
    key.length > 1024 ||
    segments.some(
      (segment) =>
        segment === '' || segment === '.' || segment === '..' || !segmentPattern.test(segment),
    );
  if (bad)
    throw new StorageError('STORAGE_INVALID_KEY', `invalid object key ${JSON.stringify(key)}`);
}

/** Prefixes may end with '/' or be empty; otherwise the same rules as keys. */
export function checkObjectPrefix(prefix: string): void {
  if (prefix === '') return;
  checkObjectKey(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix);
}
