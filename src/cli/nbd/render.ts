/** Text and JSON forms of NBD export facts and extent maps (the JSON map matches nbdinfo's). */
import {
  NBD_CONTEXT_BASE_ALLOCATION,
  NBD_CONTEXT_DIRTY_BITMAP_PREFIX,
  NBD_TRANSMISSION_FLAG_NAMES,
  type NbdExportInfo,
  type NbdMappedExtent,
} from '../../nbd/index.ts';
import { formatBytes } from '../../core/index.ts';

export interface NbdInfoJson {
  readonly uri: string;
  readonly exportName: string;
  readonly sizeBytes: number;
  readonly transmissionFlags: number;
  readonly flags: readonly string[];
  readonly blockSizes: {
    readonly minimumBytes: number;
    readonly preferredBytes: number;
    readonly maximumPayloadBytes: number;
  };
  readonly structuredReplies: boolean;
  readonly tls: boolean;
  readonly negotiatedWith: string;
  readonly metaContexts: readonly string[];
  readonly exports?: readonly { name: string; description: string }[];
  readonly description?: string;
}

export function nbdInfoJson(uri: string, info: NbdExportInfo): NbdInfoJson {
  return {
    uri,
    exportName: info.exportName,
    sizeBytes: info.sizeBytes,
    transmissionFlags: info.transmissionFlags,
    flags: NBD_TRANSMISSION_FLAG_NAMES.filter(([bit]) => (info.transmissionFlags & bit) !== 0).map(
      ([, name]) => name,
    ),
    blockSizes: { ...info.blockSizes },
    structuredReplies: info.structuredReplies,
    tls: info.tls,
    negotiatedWith: info.negotiatedWith,
    metaContexts: [...(info.availableMetaContexts ?? [])],
    ...(info.exports === undefined ? {} : { exports: info.exports }),
    ...(info.description === undefined ? {} : { description: info.description }),
  };
}

export function formatNbdInfo(json: NbdInfoJson): string {
  const hex = `0x${json.transmissionFlags.toString(16)}`;
  const lines = [
    `uri: ${json.uri}`,
    `export: ${JSON.stringify(json.exportName)}`,
    `size: ${json.sizeBytes} (${formatBytes(json.sizeBytes)})`,
    `flags: ${hex} ${json.flags.join(' ')}`,
    `block sizes: minimum ${json.blockSizes.minimumBytes}, preferred ${json.blockSizes.preferredBytes}, maximum payload ${json.blockSizes.maximumPayloadBytes}`,
    `structured replies: ${json.structuredReplies ? 'yes' : 'no'}`,
    `tls: ${json.tls ? 'yes' : 'no'}`,
    `meta contexts: ${json.metaContexts.length === 0 ? '(none)' : json.metaContexts.join(', ')}`,
  ];
  if (json.description !== undefined) lines.push(`description: ${json.description}`);
  return `${lines.join('\n')}\n`;
}

/** nbdinfo's descriptions: data/hole/zero for base:allocation, clean/dirty for bitmaps. */
export function describeExtentFlags(context: string, flags: number): string {
  if (context === NBD_CONTEXT_BASE_ALLOCATION) {
    const parts = [];
    if ((flags & 1) !== 0) parts.push('hole');
    if ((flags & 2) !== 0) parts.push('zero');
    return parts.length === 0 ? 'data' : parts.join(',');
  }
  if (context.startsWith(NBD_CONTEXT_DIRTY_BITMAP_PREFIX))
    return (flags & 1) !== 0 ? 'dirty' : 'clean';
  return String(flags);
}

export function formatExtentLine(context: string, extent: NbdMappedExtent): string {
  return `${String(extent.offsetBytes).padStart(12)}  ${String(extent.lengthBytes).padStart(12)}  ${extent.flags}  ${describeExtentFlags(context, extent.flags)}\n`;
}

export function extentJson(context: string, extent: NbdMappedExtent) {
  return {
    offset: extent.offsetBytes,
    length: extent.lengthBytes,
    type: extent.flags,
    description: describeExtentFlags(context, extent.flags),
  };
}
