/**
 * Folding two adjacent indexes of a chain into one (docs/design.md §4.7 "merge"): a key at s with
 * the delta s→t gives the key at t; a delta r→s with the delta s→t gives the delta r→t. A merge
 * join over two sorted entry lists: cost proportional to the two indexes, never to the data.
 */
import { blockCountFor } from '../disk/index.ts';
import { RepositoryError } from './errors.ts';
import { entryHash, IndexBuilder, isZeroHash, type ChainIndex } from './index-codec.ts';

export function foldIndexes(older: ChainIndex, newer: ChainIndex): ChainIndex {
  if (
    newer.kind !== 'delta' ||
    newer.baseSeq !== older.seq ||
    newer.chainId !== older.chainId ||
    newer.hash !== older.hash
  ) {
    throw new RepositoryError(
      'REPO_CHAIN_BROKEN',
      `cannot fold ${newer.kind} ${newer.seq} onto ${older.kind} ${older.seq}`,
    );
  }
  const toKey = older.kind === 'key';
  const blockCount = blockCountFor(newer.diskSizeBytes, newer.blockSizeBytes);
  const builder = new IndexBuilder();
  const a = older.blockIndexes;
  const b = newer.blockIndexes;
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const ai = i < a.length ? (a[i] ?? 0) : Number.MAX_SAFE_INTEGER;
    const bj = j < b.length ? (b[j] ?? 0) : Number.MAX_SAFE_INTEGER;
    let blockIndex: number;
    let hash: Buffer;
    if (bj <= ai) {
      blockIndex = bj;
      hash = entryHash(newer, j);
      j += 1;
      if (ai === bj) i += 1;
    } else {
      blockIndex = ai;
      hash = entryHash(older, i);
      i += 1;
    }
    if (blockIndex >= blockCount) continue;
    if (toKey && isZeroHash(hash)) continue;
    builder.add(blockIndex, hash);
  }
  return builder.build({
    kind: toKey ? 'key' : 'delta',
    chainId: newer.chainId,
    seq: newer.seq,
    baseSeq: toKey ? undefined : older.baseSeq,
    blockSizeBytes: newer.blockSizeBytes,
    diskSizeBytes: newer.diskSizeBytes,
    hash: newer.hash,
  });
}
