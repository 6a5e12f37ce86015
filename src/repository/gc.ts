/**
 * Garbage collection, mark and sweep (docs/design.md §4.8). Mark: every committed manifest's
 * chain walks, their indexes and the blocks those reference. Sweep: every object under `data/`
 * that is not marked and is older than the safety window (writers in progress put blocks and
 * indexes before their manifest; the window protects them). A VM whose manifests or live indexes
 * cannot be read is not swept at all: GC never deletes when unsure. One chain in memory at a time.
 */
import { describeError, ProgressMeter, type ProgressListener } from '../core/index.ts';
import { DATA_PREFIX, DEFAULT_GC_SAFETY_WINDOW_MS } from './constants.ts';
import { addIndexHashes } from './folded-disk.ts';
import { parseDataKey, parsePointKey } from './keys.ts';
import type { Repository } from './repository.ts';
import { forEachLimited } from './limited.ts';

export interface GcOptions {
  readonly safetyWindowMs?: number;
  readonly dryRun?: boolean;
  /** Phase 'gc': objects under data/ examined so far (no totals: the sweep lists as it goes). */
  readonly onProgress?: ProgressListener;
}

export interface GcResult {
  readonly deletedObjects: number;
  readonly deletedBytes: number;
  /** Unreferenced objects kept because they are younger than the safety window. */
  readonly keptYoungObjects: number;
  /** VMs or chains not swept because something referenced could not be read. */
  readonly skipped: readonly { readonly scope: string; readonly reason: string }[];
}

interface ChainLiveness {
  readonly indexKeys: Set<string>;
  readonly blockHashes: Set<string>;
}

export async function collectGarbage(
  repository: Repository,
  options: GcOptions = {},
): Promise<GcResult> {
  const { store } = repository;
  const windowMs = options.safetyWindowMs ?? DEFAULT_GC_SAFETY_WINDOW_MS;
  const cutoffMs = repository.clock.nowMs() - windowMs;
  const skipped: { scope: string; reason: string }[] = [];
  const unsafeVms = new Set<string>();
  // vmId -> chainId -> committed seqs
  const referenced = new Map<string, Map<string, Set<number>>>();
  const { points, invalid } = await repository.scanPoints();
  for (const bad of invalid) {
    const parsed = parsePointKey(bad.key);
    if (parsed !== undefined) unsafeVms.add(parsed.vmId);
    skipped.push({ scope: bad.key, reason: describeError(bad.error) });
  }
  for (const point of points) {
    const chains = referenced.get(point.vmId) ?? new Map<string, Set<number>>();
    referenced.set(point.vmId, chains);
    for (const disk of point.disks) {
      const seqs = chains.get(disk.chainId) ?? new Set<number>();
      seqs.add(disk.seq);
      chains.set(disk.chainId, seqs);
    }
  }

  let deletedObjects = 0;
  let deletedBytes = 0;
  let keptYoungObjects = 0;
  let currentChain: string | undefined;
  let liveness: ChainLiveness | 'unsafe' | undefined;

  const loadLiveness = async (
    vmId: string,
    chainId: string,
  ): Promise<ChainLiveness | 'unsafe' | undefined> => {
    const seqs = referenced.get(vmId)?.get(chainId);
    if (seqs === undefined) return undefined;
    try {
      const chain = await repository.loadChain(vmId, chainId);
      const indexKeys = new Set<string>();
      const blockHashes = new Set<string>();
      for (const seq of seqs) {
        for (const ref of chain.walk(seq)) {
          if (indexKeys.has(ref.key)) continue;
          indexKeys.add(ref.key);
          addIndexHashes(blockHashes, await repository.readIndex(ref));
        }
      }
      return { indexKeys, blockHashes };
    } catch (error) {
      skipped.push({ scope: `${DATA_PREFIX}${vmId}/${chainId}/`, reason: describeError(error) });
      return 'unsafe';
    }
  };

  const pendingDeletes: string[] = [];
  const flush = async (): Promise<void> => {
    const keys = pendingDeletes.splice(0);
    await forEachLimited(keys, Math.min(16, store.properties.maxConcurrency), (key) =>
      store.delete(key),
    );
  };

  const meter = new ProgressMeter(options.onProgress);
  meter.start('gc');
  for await (const info of store.list(DATA_PREFIX)) {
    meter.add(1, 0);
    const parsed = parseDataKey(info.key);
    if (parsed === undefined || unsafeVms.has(parsed.vmId)) continue;
    const chainScope =
      parsed.chainId === undefined ? undefined : `${parsed.vmId}/${parsed.chainId}`;
    if (chainScope !== currentChain) {
      currentChain = chainScope;
      liveness =
        parsed.chainId === undefined ? undefined : await loadLiveness(parsed.vmId, parsed.chainId);
    }
    if (liveness === 'unsafe') continue;
    let live = false;
    if (liveness !== undefined) {
      if (parsed.type === 'key' || parsed.type === 'delta') live = liveness.indexKeys.has(info.key);
      else if (parsed.type === 'block') {
        live = liveness.blockHashes.has(Buffer.from(parsed.hashHex, 'hex').toString('latin1'));
      }
    }
    if (live) continue;
    if (info.modifiedMs > cutoffMs) {
      keptYoungObjects += 1;
      continue;
    }
    if (options.dryRun !== true) {
      pendingDeletes.push(info.key);
      if (pendingDeletes.length >= 64) await flush();
    }
    deletedObjects += 1;
    deletedBytes += info.sizeBytes;
  }
  await flush();
  meter.report();
  return { deletedObjects, deletedBytes, keptYoungObjects, skipped };
}
