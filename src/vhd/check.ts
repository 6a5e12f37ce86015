/**
 * `vhd check`: the conformance rules blktap's `vhd-util check` enforces (vhd.md §8), run on a
 * file, listing every violation instead of stopping at the first. Pure rules over decoded fields
 * plus the few reads they need (footer copy, BAT, locator data, the parent's footer).
 */
import { basename, dirname, resolve } from 'node:path';
import { access } from 'node:fs/promises';
import {
  DATA_OFFSET_NONE,
  DiskType,
  FEATURE_RESERVED,
  FEATURE_TEMPORARY,
  FOOTER_BYTES,
  FOOTER_COOKIE,
  FUTURE_TOLERANCE_SECONDS,
  HEADER_BYTES,
  HEADER_COOKIE,
  PlatformCode,
} from './constants.ts';
import { batSizeBytes, decodeBat } from './bat.ts';
import { openFileByteSource, readRange, type ByteSource } from './byte-source.ts';
import { decodeFooterFields, footerChecksum, type VhdFooter } from './footer.ts';
import { chsSizeBytes, computeChsGeometry } from './geometry.ts';
import { decodeHeaderFields, headerChecksum, type VhdHeader } from './header.ts';
import { findLayoutProblems } from './layout.ts';
import { decodeLocatorPath, locatorSpaceBytes, platformCodeName } from './parent-locator.ts';
import { toVhdTimestamp } from './timestamp.ts';
import { NIL_UUID } from './uuid.ts';
import { openVhdFile } from './vhd-reader.ts';
import { describeError, isPowerOfTwo } from '../core/index.ts';

export interface VhdCheckProblem {
  readonly field: string;
  readonly message: string;
}

export interface VhdCheckReport {
  readonly path: string;
  readonly problems: readonly VhdCheckProblem[];
  readonly footer: VhdFooter | undefined;
  readonly header: VhdHeader | undefined;
}

export function checkFooterRules(footer: VhdFooter, bytes: Buffer, now: Date): VhdCheckProblem[] {
  const problems: VhdCheckProblem[] = [];
  const add = (field: string, message: string): void => void problems.push({ field, message });
  if (footer.cookie !== FOOTER_COOKIE)
    add('footer.cookie', `cookie is ${JSON.stringify(footer.cookie)}, not "conectix"`);
  const checksum = footerChecksum(bytes);
  if (footer.checksum !== checksum)
    add(
      'footer.checksum',
      `checksum 0x${footer.checksum.toString(16)} should be 0x${checksum.toString(16)}`,
    );
  if ((footer.features & FEATURE_RESERVED) === 0)
    add('footer.features', 'the reserved feature bit 0x2 is not set');
  if ((footer.features & ~(FEATURE_RESERVED | FEATURE_TEMPORARY)) !== 0)
    add('footer.features', `unknown feature bits 0x${footer.features.toString(16)}`);
  if (!footer.reservedIsZero) add('footer.reserved', 'reserved bytes are not all zero');
  if (footer.timestamp > toVhdTimestamp(now) + FUTURE_TOLERANCE_SECONDS)
    add(
      'footer.timestamp',
      `creation time ${footer.timestamp} is in the future (VHD epoch seconds)`,
    );
  if (
    footer.diskType !== DiskType.fixed &&
    footer.diskType !== DiskType.dynamic &&
    footer.diskType !== DiskType.differencing
  )
    add('footer.diskType', `disk type ${footer.diskType} is not 2, 3 or 4`);
  const limit = chsSizeBytes(computeChsGeometry(Number(footer.currentSizeBytes)));
  const stored = chsSizeBytes(footer.geometry);
  if (stored > limit)
    add(
      'footer.geometry',
      `geometry ${footer.geometry.cylinders}/${footer.geometry.heads}/${footer.geometry.sectorsPerTrack} (${stored} bytes) is larger than CHS(currentSize) (${limit} bytes)`,
    );
  if (
    footer.diskType === DiskType.fixed
      ? footer.dataOffset !== DATA_OFFSET_NONE
      : footer.dataOffset === DATA_OFFSET_NONE || footer.dataOffset % 512n !== 0n
  )
    add(
      'footer.dataOffset',
      `data offset ${footer.dataOffset} does not suit disk type ${footer.diskType}`,
    );
  return problems;
}

export function checkHeaderRules(
  header: VhdHeader,
  bytes: Buffer,
  footer: VhdFooter,
  now: Date,
): VhdCheckProblem[] {
  const problems: VhdCheckProblem[] = [];
  const add = (field: string, message: string): void => void problems.push({ field, message });
  if (header.cookie !== HEADER_COOKIE)
    add('header.cookie', `cookie is ${JSON.stringify(header.cookie)}, not "cxsparse"`);
  const checksum = headerChecksum(bytes);
  if (header.checksum !== checksum)
    add(
      'header.checksum',
      `checksum 0x${header.checksum.toString(16)} should be 0x${checksum.toString(16)}`,
    );
  if (header.dataOffset !== DATA_OFFSET_NONE)
    add('header.dataOffset', 'data offset is not 0xFFFFFFFFFFFFFFFF');
  if (!isPowerOfTwo(header.blockSizeBytes) || header.blockSizeBytes < 512)
    add('header.blockSize', `block size ${header.blockSizeBytes} is not a power of two`);
  else if (BigInt(header.maxTableEntries) * BigInt(header.blockSizeBytes) < footer.currentSizeBytes)
    add(
      'header.maxTableEntries',
      `${header.maxTableEntries} entries do not cover the virtual size`,
    );
  if (header.tableOffsetBytes % 512n !== 0n)
    add('header.tableOffset', 'BAT offset is not sector aligned');
  const locators = header.parentLocators;
  if (footer.diskType === DiskType.dynamic) {
    if (header.parentUnicodeName !== '')
      add('header.parentUnicodeName', 'a dynamic disk has a parent name');
    if (header.parentUuid !== NIL_UUID)
      add('header.parentUuid', 'a dynamic disk has a parent uuid');
    if (header.parentTimestamp !== 0)
      add('header.parentTimestamp', 'a dynamic disk has a parent timestamp');
    locators.forEach((locator, index) => {
      if (
        locator.platformCode !== 0 ||
        locator.dataSpace !== 0 ||
        locator.dataLengthBytes !== 0 ||
        locator.dataOffsetBytes !== 0n
      )
        add(`header.parentLocator${index}`, 'a dynamic disk has a parent locator');
    });
  } else if (footer.diskType === DiskType.differencing) {
    if (header.parentTimestamp > toVhdTimestamp(now) + FUTURE_TOLERANCE_SECONDS)
      add('header.parentTimestamp', 'parent timestamp is in the future');
    if (header.parentUuid === NIL_UUID)
      add('header.parentUuid', 'a differencing disk without parent uuid');
    locators.forEach((locator, index) => {
      if (locator.platformCode === PlatformCode.none) return;
      if (
        locator.dataOffsetBytes === 0n ||
        locator.dataLengthBytes === 0 ||
        locatorSpaceBytes(locator) === 0
      )
        add(
          `header.parentLocator${index}`,
          `${platformCodeName(locator.platformCode)} locator has a zero data offset, length or space`,
        );
      else if (locator.dataLengthBytes > locatorSpaceBytes(locator))
        add(`header.parentLocator${index}`, 'locator data is longer than its data space');
    });
  }
  return problems;
}

async function checkParent(
  path: string,
  source: ByteSource,
  header: VhdHeader,
): Promise<VhdCheckProblem[]> {
  const problems: VhdCheckProblem[] = [];
  let resolved = 0;
  for (const [index, locator] of header.parentLocators.entries()) {
    const code = locator.platformCode;
    if (code !== PlatformCode.MacX && code !== PlatformCode.W2ru && code !== PlatformCode.W2ku)
      continue;
    const field = `header.parentLocator${index}`;
    let located: string | undefined;
    try {
      const data = await readRange(
        source,
        Number(locator.dataOffsetBytes),
        Math.min(locator.dataLengthBytes, 65536),
        field,
      );
      located = decodeLocatorPath(code, data);
    } catch (error) {
      problems.push({ field, message: describeError(error) });
      continue;
    }
    if (located === undefined || located === '') continue;
    const name = basename(located);
    if (name !== header.parentUnicodeName.replaceAll('\\', '/').split('/').pop())
      problems.push({
        field,
        message: `locator basename ${JSON.stringify(name)} differs from the parent unicode name ${JSON.stringify(header.parentUnicodeName)}`,
      });
    const candidate = /^[A-Za-z]:\//.test(located)
      ? resolve(dirname(path), name)
      : resolve(dirname(path), located);
    try {
      await access(candidate);
    } catch {
      continue;
    }
    try {
      const parent = await openVhdFile(candidate);
      try {
        if (parent.footer.uniqueId !== header.parentUuid)
          problems.push({
            field: 'header.parentUuid',
            message: `parent ${candidate} has uuid ${parent.footer.uniqueId}, header says ${header.parentUuid}`,
          });
        resolved += 1;
      } finally {
        await parent.close();
      }
    } catch (error) {
      problems.push({
        field,
        message: `parent ${candidate} cannot be opened: ${describeError(error)}`,
      });
    }
  }
  if (resolved === 0)
    problems.push({
      field: 'header.parentLocators',
      message: 'no MacX, W2ru or W2ku locator resolves to a readable parent',
    });
  return problems;
}

export async function checkVhdFile(
  path: string,
  options: { now?: Date } = {},
): Promise<VhdCheckReport> {
  const now = options.now ?? new Date();
  const source = await openFileByteSource(path);
  const problems: VhdCheckProblem[] = [];
  let footer: VhdFooter | undefined;
  let header: VhdHeader | undefined;
  try {
    if (source.sizeBytes < FOOTER_BYTES) {
      problems.push({
        field: 'footer',
        message: `file is ${source.sizeBytes} bytes, less than a footer`,
      });
      return { path, problems, footer, header };
    }
    const footerBytes = await readRange(
      source,
      source.sizeBytes - FOOTER_BYTES,
      FOOTER_BYTES,
      'footer',
    );
    footer = decodeFooterFields(footerBytes);
    problems.push(...checkFooterRules(footer, footerBytes, now));
    if (
      footer.diskType === DiskType.fixed ||
      problems.some((p) => p.field === 'footer.cookie' || p.field === 'footer.dataOffset')
    )
      return { path, problems, footer, header };
    const copy = await readRange(source, 0, FOOTER_BYTES, 'footer copy');
    if (!copy.equals(footerBytes))
      problems.push({
        field: 'footer copy',
        message: 'the footer copy at offset 0 differs from the final footer',
      });
    const headerOffset = Number(footer.dataOffset);
    if (headerOffset + HEADER_BYTES > source.sizeBytes) {
      problems.push({
        field: 'footer.dataOffset',
        message: 'the header lies beyond the end of the file',
      });
      return { path, problems, footer, header };
    }
    const headerBytes = await readRange(source, headerOffset, HEADER_BYTES, 'header');
    header = decodeHeaderFields(headerBytes);
    problems.push(...checkHeaderRules(header, headerBytes, footer, now));
    const batBytes = batSizeBytes(header.maxTableEntries);
    const tableOffset = Number(header.tableOffsetBytes);
    if (header.maxTableEntries > 16 * 1024 * 1024 || tableOffset + batBytes > source.sizeBytes) {
      problems.push({
        field: 'header.tableOffset',
        message: 'the BAT lies beyond the end of the file',
      });
      return { path, problems, footer, header };
    }
    const bat = decodeBat(
      await readRange(source, tableOffset, batBytes, 'BAT'),
      header.maxTableEntries,
    );
    if (isPowerOfTwo(header.blockSizeBytes))
      problems.push(
        ...findLayoutProblems({
          headerOffsetBytes: headerOffset,
          header,
          bat,
          fileLengthBytes: source.sizeBytes,
        }),
      );
    if (footer.diskType === DiskType.differencing)
      problems.push(...(await checkParent(path, source, header)));
    return { path, problems, footer, header };
  } finally {
    await source.close();
  }
}
