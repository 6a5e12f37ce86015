/** The key layout of a repository (docs/design.md §4.2). Pure functions from ids to keys and back. */
import {
  CHAIN_ID_PATTERN,
  DATA_PREFIX,
  HASH_BYTES,
  ID_PATTERN,
  LEASES_PREFIX,
  POINTS_PREFIX,
} from './constants.ts';
import { RepositoryError } from './errors.ts';

export function checkId(kind: string, id: string): void {
  if (!ID_PATTERN.test(id)) {
    throw new RepositoryError(
      'REPO_INVALID_REQUEST',
      `${kind} ${JSON.stringify(id)} is not a valid id`,
      {
        details: { field: kind },
      },
    );
  }
}

export function pointsPrefix(vmId: string): string {
  return `${POINTS_PREFIX}${vmId}/`;
}

export function pointKey(vmId: string, pointId: string): string {
  return `${pointsPrefix(vmId)}${pointId}.json`;
}

/** Parses `points/<vm>/<point>.json`, or undefined for any other key. */
export function parsePointKey(key: string): { vmId: string; pointId: string } | undefined {
  const match = /^points\/([^/]+)\/([^/]+)\.json$/.exec(key);
  if (match?.[1] === undefined || match[2] === undefined) return undefined;
  if (!ID_PATTERN.test(match[1]) || !ID_PATTERN.test(match[2])) return undefined;
  return { vmId: match[1], pointId: match[2] };
}

export function leasePrefix(vmId: string): string {
  return `${LEASES_PREFIX}${vmId}/`;
}

export function leaseKey(vmId: string, generation: number): string {
  return `${leasePrefix(vmId)}${String(generation).padStart(10, '0')}.json`;
}

export function vmDataPrefix(vmId: string): string {
  return `${DATA_PREFIX}${vmId}/`;
}

export function chainPrefix(vmId: string, chainId: string): string {
  return `${vmDataPrefix(vmId)}${chainId}/`;
}

export function indexesPrefix(vmId: string, chainId: string): string {
  return `${chainPrefix(vmId, chainId)}indexes/`;
}

function seqText(seq: number): string {
  return String(seq).padStart(10, '0');
}

export function keyIndexKey(vmId: string, chainId: string, seq: number): string {
  return `${indexesPrefix(vmId, chainId)}${seqText(seq)}.key`;
}

export function deltaIndexKey(vmId: string, chainId: string, seq: number, baseSeq: number): string {
  return `${indexesPrefix(vmId, chainId)}${seqText(seq)}-${seqText(baseSeq)}.delta`;
}

export function blockKey(vmId: string, chainId: string, hash: Buffer): string {
  const hex = hash.toString('hex');
  return `${chainPrefix(vmId, chainId)}blocks/${hex.slice(0, 2)}/${hex}`;
}

export type DataObject =
  | { type: 'key'; vmId: string; chainId: string; seq: number }
  | { type: 'delta'; vmId: string; chainId: string; seq: number; baseSeq: number }
  | { type: 'block'; vmId: string; chainId: string; hashHex: string }
  | { type: 'other'; vmId: string; chainId: string | undefined };

/** Classifies a key under `data/` (unknown names are 'other': GC sweeps them after the window). */
export function parseDataKey(key: string): DataObject | undefined {
  const parts = key.split('/');
  if (parts[0] !== 'data' || parts[1] === undefined) return undefined;
  const vmId = parts[1];
  const chainId = parts[2];
  if (chainId === undefined || !CHAIN_ID_PATTERN.test(chainId)) {
    return { type: 'other', vmId, chainId: undefined };
  }
  const rest = parts.slice(3).join('/');
  let match = /^indexes\/(\d{10})\.key$/.exec(rest);
  if (match?.[1] !== undefined) return { type: 'key', vmId, chainId, seq: Number(match[1]) };
  match = /^indexes\/(\d{10})-(\d{10})\.delta$/.exec(rest);
  if (match?.[1] !== undefined && match[2] !== undefined) {
    return { type: 'delta', vmId, chainId, seq: Number(match[1]), baseSeq: Number(match[2]) };
  }
  match = /^blocks\/([0-9a-f]{2})\/([0-9a-f]+)$/.exec(rest);
  if (
    match?.[1] !== undefined &&
    match[2] !== undefined &&
    match[2].length === HASH_BYTES * 2 &&
    match[2].startsWith(match[1])
  ) {
    return { type: 'block', vmId, chainId, hashHex: match[2] };
  }
  return { type: 'other', vmId, chainId };
}
