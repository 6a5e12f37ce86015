/**
 * Spec "Block Allocation Table": one u32 per block, the sector offset of the block's sector
 * bitmap, BAT_UNUSED for an unallocated block. On disk the table is padded to a whole sector.
 */
import { BAT_UNUSED, VHD_SECTOR_BYTES } from './constants.ts';
import { VhdError } from './errors.ts';
import { ceilDiv } from '../core/index.ts';

/** Bytes the BAT occupies on disk (padded to a sector). */
export function batSizeBytes(maxTableEntries: number): number {
  return ceilDiv(maxTableEntries * 4, VHD_SECTOR_BYTES) * VHD_SECTOR_BYTES;
}

export function decodeBat(bytes: Buffer, maxTableEntries: number): Uint32Array {
  if (bytes.length < maxTableEntries * 4)
    throw new VhdError('VHD_TRUNCATED', `BAT: ${bytes.length} of ${maxTableEntries * 4} bytes`, {
      details: { field: 'bat', lengthBytes: bytes.length },
    });
  const bat = new Uint32Array(maxTableEntries);
  for (let index = 0; index < maxTableEntries; index += 1)
    bat[index] = bytes.readUInt32BE(index * 4);
  return bat;
}

/** The BAT as written: entries then BAT_UNUSED padding up to the sector (as blktap pads). */
export function encodeBat(bat: Uint32Array): Buffer {
  const bytes = Buffer.alloc(batSizeBytes(bat.length), 0xff);
  for (let index = 0; index < bat.length; index += 1)
    bytes.writeUInt32BE(bat[index] ?? BAT_UNUSED, index * 4);
  return bytes;
}

/** Allocated block indexes, ascending. */
export function allocatedBlocks(bat: Uint32Array): number[] {
  const indexes: number[] = [];
  for (let index = 0; index < bat.length; index += 1)
    if (bat[index] !== BAT_UNUSED) indexes.push(index);
  return indexes;
}
