/**
 * Layout rules of a dynamic or differencing VHD (vhd.md §8, blktap `vhd-util check`): metadata
 * (footer copy, header, BAT, locator data) and blocks must not overlap, and nothing may run into
 * the final footer or past the end of the file. `findLayoutProblems` lists every violation (for
 * `vhd check`); `assertLayout` throws the first as a VhdError (for readers).
 */
import {
  BAT_UNUSED,
  FOOTER_BYTES,
  HEADER_BYTES,
  PlatformCode,
  VHD_SECTOR_BYTES,
} from './constants.ts';
import { batSizeBytes } from './bat.ts';
import { VhdError } from './errors.ts';
import { locatorSpaceBytes } from './parent-locator.ts';
import { sectorBitmapBytes } from './sector-bitmap.ts';
import type { VhdHeader } from './header.ts';

export interface LayoutProblem {
  readonly field: string;
  readonly message: string;
}

export interface LayoutInput {
  readonly headerOffsetBytes: number;
  readonly header: VhdHeader;
  readonly bat: Uint32Array;
  /** Total file length, when known (random access); undefined for a stream. */
  readonly fileLengthBytes?: number | undefined;
}

interface Extent {
  readonly field: string;
  readonly startBytes: number;
  readonly endBytes: number;
}

export function metadataExtents(input: LayoutInput): Extent[] {
  const { header } = input;
  const extents: Extent[] = [
    { field: 'footer copy', startBytes: 0, endBytes: FOOTER_BYTES },
    {
      field: 'footer.dataOffset (header)',
      startBytes: input.headerOffsetBytes,
      endBytes: input.headerOffsetBytes + HEADER_BYTES,
    },
  ];
  const tableOffset = Number(header.tableOffsetBytes);
  extents.push({
    field: 'header.tableOffset (BAT)',
    startBytes: tableOffset,
    endBytes: tableOffset + batSizeBytes(header.maxTableEntries),
  });
  header.parentLocators.forEach((locator, index) => {
    if (locator.platformCode === PlatformCode.none) return;
    const start = Number(locator.dataOffsetBytes);
    extents.push({
      field: `header.parentLocator${index}.dataOffset`,
      startBytes: start,
      endBytes: start + Math.max(locatorSpaceBytes(locator), locator.dataLengthBytes),
    });
  });
  return extents;
}

/** Allocated block indexes sorted by their file offset. */
export function blocksInFileOrder(bat: Uint32Array): Uint32Array {
  let count = 0;
  for (const entry of bat) if (entry !== BAT_UNUSED) count += 1;
  const indexes = new Uint32Array(count);
  let at = 0;
  for (let index = 0; index < bat.length; index += 1)
    if (bat[index] !== BAT_UNUSED) indexes[at++] = index;
  return indexes.sort((a, b) => (bat[a] ?? 0) - (bat[b] ?? 0));
}

export function findLayoutProblems(input: LayoutInput, limit = 50): LayoutProblem[] {
  const problems: LayoutProblem[] = [];
  const add = (field: string, message: string): void => {
    if (problems.length < limit) problems.push({ field, message });
  };
  const { header, bat, fileLengthBytes } = input;
  const blockBytes = sectorBitmapBytes(header.blockSizeBytes) + header.blockSizeBytes;
  const dataEnd = fileLengthBytes === undefined ? Infinity : fileLengthBytes - FOOTER_BYTES;
  const metadata = metadataExtents(input).sort((a, b) => a.startBytes - b.startBytes);
  for (const extent of metadata) {
    if (extent.endBytes > dataEnd)
      add(
        extent.field,
        `${extent.field} [${extent.startBytes}, ${extent.endBytes}) runs past the data end ${dataEnd} (before the final footer)`,
      );
  }
  for (let i = 1; i < metadata.length; i += 1) {
    const previous = metadata[i - 1];
    const current = metadata[i];
    if (previous !== undefined && current !== undefined && current.startBytes < previous.endBytes)
      add(current.field, `${current.field} overlaps ${previous.field}`);
  }
  const order = blocksInFileOrder(bat);
  let previousEnd = 0;
  let previousIndex = -1;
  for (const index of order) {
    const start = (bat[index] ?? 0) * VHD_SECTOR_BYTES;
    const end = start + blockBytes;
    const field = `bat[${index}]`;
    if (end > dataEnd)
      add(
        field,
        `block ${index} [${start}, ${end}) runs past the data end ${dataEnd} (into the final footer or beyond the file)`,
      );
    if (start < previousEnd) add(field, `block ${index} overlaps block ${previousIndex}`);
    for (const extent of metadata)
      if (extent.startBytes < end && extent.endBytes > start)
        add(field, `block ${index} overlaps ${extent.field}`);
    if (end > previousEnd) {
      previousEnd = end;
      previousIndex = index;
    }
  }
  return problems;
}

export function assertLayout(input: LayoutInput): void {
  const [problem] = findLayoutProblems(input, 1);
  if (problem !== undefined)
    throw new VhdError('VHD_BAD_LAYOUT', problem.message, { details: { field: problem.field } });
}
