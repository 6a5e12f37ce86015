/**
 * Spec "Block Allocation Table and Data Blocks": each block starts with a sector bitmap, one bit
 * per sector of the block, MSB first (sector 0 = 0x80 of byte 0), padded to whole sectors. A set
 * bit means the sector is present in this file (differencing: take it here, not from the parent).
 */
import { VHD_SECTOR_BYTES } from './constants.ts';
import { ceilDiv } from '../core/index.ts';

export function sectorBitmapBytes(blockSizeBytes: number): number {
  return ceilDiv(blockSizeBytes / VHD_SECTOR_BYTES / 8, VHD_SECTOR_BYTES) * VHD_SECTOR_BYTES;
}

export function isSectorPresent(bitmap: Uint8Array, sectorIndex: number): boolean {
  return ((bitmap[sectorIndex >>> 3] ?? 0) & (0x80 >>> (sectorIndex & 7))) !== 0;
}

export function setSectorRange(bitmap: Uint8Array, firstSector: number, endSector: number): void {
  for (let sector = firstSector; sector < endSector; sector += 1) {
    const byte = sector >>> 3;
    bitmap[byte] = (bitmap[byte] ?? 0) | (0x80 >>> (sector & 7));
  }
}

/** True when every sector of a block of `sectorCount` sectors is present. */
export function isBitmapFull(bitmap: Uint8Array, sectorCount: number): boolean {
  const fullBytes = sectorCount >>> 3;
  for (let byte = 0; byte < fullBytes; byte += 1) if (bitmap[byte] !== 0xff) return false;
  for (let sector = fullBytes * 8; sector < sectorCount; sector += 1)
    if (!isSectorPresent(bitmap, sector)) return false;
  return true;
}

export function isBitmapEmpty(bitmap: Uint8Array, sectorCount: number): boolean {
  for (let sector = 0; sector < sectorCount; sector += 1)
    if (isSectorPresent(bitmap, sector)) return false;
  return true;
}

/** Calls `run(firstSector, endSector, present)` for each maximal run of equal bits. */
export function forEachSectorRun(
  bitmap: Uint8Array,
  sectorCount: number,
  run: (firstSector: number, endSector: number, present: boolean) => void,
): void {
  let start = 0;
  while (start < sectorCount) {
    const present = isSectorPresent(bitmap, start);
    let end = start + 1;
    while (end < sectorCount && isSectorPresent(bitmap, end) === present) end += 1;
    run(start, end, present);
    start = end;
  }
}

/** Zeroes the sectors of `data` whose bit is clear (a dynamic disk reads them as zeros). */
export function zeroAbsentSectors(bitmap: Uint8Array, data: Buffer): void {
  const sectorCount = Math.floor(data.length / VHD_SECTOR_BYTES);
  forEachSectorRun(bitmap, sectorCount, (first, end, present) => {
    if (!present) data.fill(0, first * VHD_SECTOR_BYTES, end * VHD_SECTOR_BYTES);
  });
}

/** Copies into `target` the sectors of `source` whose bit is set (differencing overlay). */
export function overlayPresentSectors(bitmap: Uint8Array, source: Buffer, target: Buffer): void {
  const sectorCount = Math.floor(Math.min(source.length, target.length) / VHD_SECTOR_BYTES);
  forEachSectorRun(bitmap, sectorCount, (first, end, present) => {
    if (present)
      source.copy(
        target,
        first * VHD_SECTOR_BYTES,
        first * VHD_SECTOR_BYTES,
        end * VHD_SECTOR_BYTES,
      );
  });
}
