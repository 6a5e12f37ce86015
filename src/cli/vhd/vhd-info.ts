/** `vmdelta vhd info`: what a VHD holds (footer, header, allocation, parent), as text or JSON. */
import { DiskType, fromVhdTimestamp, openVhdFile, platformCodeName } from '../../vhd/index.ts';
import { formatBytes } from '../../core/index.ts';

export interface VhdInfo {
  readonly path: string;
  readonly diskType: 'fixed' | 'dynamic' | 'differencing';
  readonly sizeBytes: number;
  readonly blockSizeBytes: number;
  readonly blockCount: number;
  readonly allocatedBlocks: number;
  readonly fileSizeBytes: number;
  readonly uuid: string;
  readonly timestamp: string;
  readonly creator: { application: string; version: string; hostOs: string };
  readonly geometry: { cylinders: number; heads: number; sectorsPerTrack: number };
  readonly parent?: {
    readonly uuid: string;
    readonly unicodeName: string;
    readonly timestamp: string;
    readonly locators: readonly { platform: string; path: string }[];
  };
}

const diskTypeNames = {
  [DiskType.fixed]: 'fixed',
  [DiskType.dynamic]: 'dynamic',
  [DiskType.differencing]: 'differencing',
} as const;

export async function readVhdInfo(path: string): Promise<VhdInfo> {
  const reader = await openVhdFile(path);
  try {
    const { footer, header } = reader;
    const info: VhdInfo = {
      path,
      diskType: diskTypeNames[footer.diskType],
      sizeBytes: footer.sizeBytes,
      blockSizeBytes: reader.blockSizeBytes,
      blockCount: reader.blockCount,
      allocatedBlocks: reader.allocatedBlocks().length,
      fileSizeBytes: reader.source.sizeBytes,
      uuid: footer.uniqueId,
      timestamp: fromVhdTimestamp(footer.timestamp).toISOString(),
      creator: {
        application: footer.creatorApplication.replaceAll('\0', ''),
        version: `0x${footer.creatorVersion.toString(16).padStart(8, '0')}`,
        hostOs: footer.creatorHostOs.replaceAll('\0', ''),
      },
      geometry: footer.geometry,
    };
    if (footer.diskType !== DiskType.differencing || header === undefined) return info;
    const locators = (await reader.locatorPaths()).map((l) => ({
      platform: platformCodeName(l.platformCode),
      path: l.path,
    }));
    return {
      ...info,
      parent: {
        uuid: header.parentUuid,
        unicodeName: header.parentUnicodeName,
        timestamp: fromVhdTimestamp(header.parentTimestamp).toISOString(),
        locators,
      },
    };
  } finally {
    await reader.close();
  }
}

export function formatVhdInfo(info: VhdInfo): string {
  const rows: [string, string][] = [
    ['file', `${info.path} (${formatBytes(info.fileSizeBytes)})`],
    ['disk type', info.diskType],
    ['virtual size', `${info.sizeBytes} bytes (${formatBytes(info.sizeBytes)})`],
    ['block size', formatBytes(info.blockSizeBytes)],
    ['allocated', `${info.allocatedBlocks} of ${info.blockCount} blocks`],
    ['uuid', info.uuid],
    ['created', info.timestamp],
    [
      'creator',
      `${JSON.stringify(info.creator.application)} ${info.creator.version} on ${info.creator.hostOs}`,
    ],
    [
      'geometry',
      `${info.geometry.cylinders}/${info.geometry.heads}/${info.geometry.sectorsPerTrack} (C/H/S)`,
    ],
  ];
  if (info.parent !== undefined) {
    rows.push(
      ['parent uuid', info.parent.uuid],
      ['parent name', info.parent.unicodeName],
      ['parent time', info.parent.timestamp],
    );
    for (const locator of info.parent.locators)
      rows.push([`locator ${locator.platform}`, locator.path]);
  }
  return rows.map(([key, value]) => `${key.padEnd(14)}${value}\n`).join('');
}
