/**
 * Spec "Checksum" (footer and header alike): the one's complement of the sum of all bytes of the
 * structure, the 4 checksum bytes taken as zero.
 */
export function computeVhdChecksum(
  structure: Uint8Array,
  checksumOffsetBytes: number,
  checksumSizeBytes = 4,
): number {
  let sum = 0;
  for (let offset = 0; offset < structure.length; offset += 1) {
    if (offset >= checksumOffsetBytes && offset < checksumOffsetBytes + checksumSizeBytes) continue;
    sum += structure[offset] ?? 0;
  }
  return ~sum >>> 0;
}
