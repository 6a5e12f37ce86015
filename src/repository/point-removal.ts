/**
 * Removing a restore point (docs/design.md §4.7 "merge"). For each disk of the point whose chain
 * has a later point: fold the point's top index into its successor's (oldest point: key + delta
 * → new key; middle point: delta + delta → wider delta) and put the result under a new name
 * (step 1, each result is a valid representation of a committed state). Then delete the manifest
 * (step 2, the commit point of the removal). Then delete the indexes no remaining point walks
 * through and the blocks only they referenced (step 3, deletes not made durable one by one: what a
 * crash leaves or brings back is unreferenced, and swept by GC).
 * Cost: the indexes of the chain plus the superseded blocks. Run under the VM's lease.
 */
import { addIndexHashes } from './folded-disk.ts';
import { ChainState, type IndexRef } from './chain-state.ts';
import { encodeIndex, type ChainIndex } from './index-codec.ts';
import { foldIndexes } from './index-fold.ts';
import { blockKey, chainPrefix, deltaIndexKey, keyIndexKey, pointKey } from './keys.ts';
import type { PointManifest } from './manifest.ts';
import type { Repository } from './repository.ts';
import { forEachLimited } from './limited.ts';

export interface RemovalResult {
  readonly pointId: string;
  /** Index objects written by folds (0 when the point had no successor). */
  readonly foldedIndexes: number;
  readonly deletedIndexes: number;
  readonly deletedBlocks: number;
  /** Steps 1–2 (folds and commit) and step 3 (deleting what is superseded), milliseconds. */
  readonly commitMs: number;
  readonly cleanupMs: number;
}

/** Seqs of the other restore points on `chainId`, ascending. */
function otherSeqs(points: readonly PointManifest[], except: string, chainId: string): number[] {
  const seqs = new Set<number>();
  for (const point of points) {
    if (point.pointId === except) continue;
    for (const disk of point.disks) if (disk.chainId === chainId) seqs.add(disk.seq);
  }
  return [...seqs].sort((x, y) => x - y);
}

function walkKeys(chain: ChainState, seqs: readonly number[]): Map<string, IndexRef> {
  const refs = new Map<string, IndexRef>();
  for (const seq of seqs) for (const ref of chain.walk(seq)) refs.set(ref.key, ref);
  return refs;
}

export async function removePoint(
  repository: Repository,
  vmId: string,
  pointId: string,
): Promise<RemovalResult> {
  const { store } = repository;
  const startMs = performance.now();
  // Cleanup deletes are cheap metadata operations: more in flight than puts.
  const concurrency = Math.max(16, store.properties.maxConcurrency);
  // Cleanup need not be durable: an undone delete leaves an unreferenced object that GC sweeps.
  const deferred = { durable: false } as const;
  const target = await repository.readPoint(vmId, pointId);
  const points = await repository.listPoints(vmId);
  let foldedIndexes = 0;
  const before = new Map<
    string,
    { chain: ChainState; refs: Map<string, IndexRef>; others: number[] }
  >();

  // Step 1: folds.
  for (const disk of target.disks) {
    const chain = await repository.loadChain(vmId, disk.chainId);
    const others = otherSeqs(points, pointId, disk.chainId);
    before.set(disk.chainId, { chain, refs: walkKeys(chain, [...others, disk.seq]), others });
    const successorSeq = others.find((seq) => seq > disk.seq);
    if (successorSeq === undefined) continue;
    // The successor's walk from the target's index up to the successor (usually one delta; more
    // when seqs in between have no restore point, e.g. after a partial copy) folds into one index.
    const path = chain.walk(successorSeq);
    const from = path.findIndex((ref) => ref.seq === disk.seq);
    if (from < 0) continue; // the successor no longer depends on this point: already folded
    const first = path[from];
    if (first === undefined) continue;
    let folded = await repository.readIndex(first);
    for (const ref of path.slice(from + 1))
      folded = foldIndexes(folded, await repository.readIndex(ref));
    const key =
      folded.kind === 'key'
        ? keyIndexKey(vmId, disk.chainId, folded.seq)
        : deltaIndexKey(vmId, disk.chainId, folded.seq, folded.baseSeq ?? 0);
    await store.put(key, encodeIndex(folded));
    foldedIndexes += 1;
  }

  // Step 2: the commit point.
  await store.delete(pointKey(vmId, pointId));

  const commitMs = performance.now() - startMs;

  // Step 3: delete what no remaining point references.
  let deletedIndexes = 0;
  let deletedBlocks = 0;
  for (const [chainId, { refs: beforeRefs, others }] of before) {
    if (others.length === 0) {
      const keys: string[] = [];
      for await (const info of store.list(chainPrefix(vmId, chainId))) keys.push(info.key);
      await forEachLimited(keys, concurrency, (key) => store.delete(key, deferred));
      const indexCount = keys.filter((key) => key.includes('/indexes/')).length;
      deletedIndexes += indexCount;
      deletedBlocks += keys.length - indexCount;
      continue;
    }
    const chain = await repository.loadChain(vmId, chainId);
    const afterRefs = walkKeys(chain, others);
    const removed = [...beforeRefs.values()].filter((ref) => !afterRefs.has(ref.key));
    if (removed.length === 0) continue;
    const live = new Set<string>();
    for (const ref of afterRefs.values()) addIndexHashes(live, await repository.readIndex(ref));
    const candidates = new Set<string>();
    const removedIndexes: ChainIndex[] = [];
    for (const ref of removed) removedIndexes.push(await repository.readIndex(ref));
    for (const index of removedIndexes) addIndexHashes(candidates, index);
    const superseded = [...candidates].filter((hash) => !live.has(hash));
    await forEachLimited(superseded, concurrency, async (hash) => {
      await store.delete(blockKey(vmId, chainId, Buffer.from(hash, 'latin1')), deferred);
    });
    deletedBlocks += superseded.length;
    await forEachLimited(removed, concurrency, (ref) => store.delete(ref.key, deferred));
    deletedIndexes += removed.length;
  }
  return {
    pointId,
    foldedIndexes,
    deletedIndexes,
    deletedBlocks,
    commitMs,
    cleanupMs: performance.now() - startMs - commitMs,
  };
}
