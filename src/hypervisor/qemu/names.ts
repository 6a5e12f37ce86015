/**
 * Names of what vmdelta creates inside QEMU. Temporary objects (overlay nodes, jobs, exports, and
 * overlay files) are `vmd-<tag>-<pointId>-<role><disk>` where tag = 6 hex digits of sha256(scope):
 * short enough for QEMU's 31-character node names, and recognisable as leftovers of a scope.
 * Persistent bitmaps are `vmdelta-<scope>-<pointId>` (the reference of a disk).
 */
import { createHash, randomBytes } from 'node:crypto';

export const tempPrefix = 'vmd-';
export const bitmapPrefix = 'vmdelta-';

export type TempRole = 'o' | 'j' | 'e';

export function newPointId(): string {
  return randomBytes(6).toString('hex');
}

export function scopeTag(scope: string): string {
  return createHash('sha256').update(scope).digest('hex').slice(0, 6);
}

export function tempName(
  scope: string,
  pointId: string,
  role: TempRole,
  diskIndex: number,
): string {
  return `${tempPrefix}${scopeTag(scope)}-${pointId}-${role}${diskIndex}`;
}

export function isScopeTemp(name: string, scope: string): boolean {
  return name.startsWith(`${tempPrefix}${scopeTag(scope)}-`);
}

export function bitmapName(scope: string, pointId: string): string {
  return `${bitmapPrefix}${scope}-${pointId}`;
}

export function isScopeBitmap(name: string, scope: string): boolean {
  return (
    name.startsWith(`${bitmapPrefix}${scope}-`) &&
    /^[0-9a-f]{12}$/.test(name.slice(bitmapPrefix.length + scope.length + 1))
  );
}
