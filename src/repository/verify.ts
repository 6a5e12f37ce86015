/**
 * Verify (docs/design.md §4.8): structure — every manifest parses, every disk's chain walks to a
 * key, every index decodes and every referenced block object exists with a sane header; data —
 * every referenced block (or a random sample) is read back, decompressed and re-hashed. Problems
 * are collected as findings, never thrown on the first.
 *
 * With a progress listener, a first 'scan' pass folds every chain only to count its blocks (index
 * reads, no block I/O), so that 'verify' reports against exact totals: one object and the block's
 * plain length in bytes per referenced block checked (stat'ed, and read back when sampled).
 */
import {
  describeError,
  ProgressMeter,
  VmdeltaError,
  type ProgressListener,
} from '../core/index.ts';
import { BLOCK_HEADER_BYTES } from './constants.ts';
import { RepositoryError } from './errors.ts';
import { blockKey } from './keys.ts';
import type { ChainState } from './chain-state.ts';
import { forEachLimited } from './limited.ts';
import type { DiskEntry } from './manifest.ts';
import type { Repository } from './repository.ts';

export interface VerifyOptions {
  readonly vmId?: string;
  /** Share of referenced blocks read back and re-hashed: 0 = structure only, 1 = all (default 0). */
  readonly dataSample?: number;
  /** Random source for sampling (tests pass a seeded one). */
  readonly random?: () => number;
  /**
   * Progress, at most ten reports a second: 'scan' (chains counted of all), then 'verify' (blocks
   * and their plain bytes checked of all referenced; its last report covers every block).
   */
  readonly onProgress?: ProgressListener;
}

export interface VerifyFinding {
  readonly code: string;
  /** The object concerned (manifest, index or block key). */
  readonly key: string;
  readonly message: string;
  /** Restore points affected, "vm/point". */
  readonly points: readonly string[];
}

export interface VerifyResult {
  readonly findings: readonly VerifyFinding[];
  readonly checkedPoints: number;
  readonly checkedIndexes: number;
  readonly checkedBlocks: number;
  readonly readBlocks: number;
}

function codeOf(error: unknown): string {
  return error instanceof VmdeltaError ? error.code : 'UNKNOWN';
}

interface ChainBlocks {
  readonly indexKeys: Set<string>;
  readonly blocks: Map<string, { hash: Buffer; lengthBytes: number; points: Set<string> }>;
}

interface ChainRefs {
  readonly vmId: string;
  readonly chainId: string;
  readonly disks: { label: string; disk: DiskEntry }[];
}

/** Walks and folds every disk of a chain: its index keys and referenced blocks, with findings. */
async function collectChain(
  repository: Repository,
  { vmId, chainId, disks }: ChainRefs,
  findings: VerifyFinding[],
): Promise<ChainBlocks> {
  const indexKeys = new Set<string>();
  const blocks = new Map<string, { hash: Buffer; lengthBytes: number; points: Set<string> }>();
  let state: ChainState | undefined;
  for (const { label, disk } of disks) {
    try {
      state ??= await repository.loadChain(vmId, chainId);
      for (const ref of state.walk(disk.seq)) indexKeys.add(ref.key);
      const folded = await repository.foldDisk(vmId, disk, state);
      for (const blockIndex of folded.present) {
        const hash = folded.hashOf(blockIndex);
        if (hash === undefined) continue;
        const key = blockKey(vmId, chainId, hash);
        const known = blocks.get(key);
        if (known === undefined) {
          blocks.set(key, {
            hash: Buffer.from(hash),
            lengthBytes: folded.lengthOf(blockIndex),
            points: new Set([label]),
          });
        } else known.points.add(label);
      }
    } catch (error) {
      const key =
        error instanceof RepositoryError && typeof error.details['key'] === 'string'
          ? error.details['key']
          : `data/${vmId}/${chainId}/`;
      findings.push({ code: codeOf(error), key, message: describeError(error), points: [label] });
    }
  }
  return { indexKeys, blocks };
}

export async function verifyRepository(
  repository: Repository,
  options: VerifyOptions = {},
): Promise<VerifyResult> {
  const findings: VerifyFinding[] = [];
  const sample = options.dataSample ?? 0;
  const random = options.random ?? Math.random;
  const meter = new ProgressMeter(options.onProgress);
  const { points, invalid } = await repository.scanPoints(options.vmId);
  for (const bad of invalid) {
    findings.push({
      code: bad.error.code,
      key: bad.key,
      message: bad.error.message,
      points: [bad.key],
    });
  }
  // One chain at a time: memory is one chain's referenced blocks.
  const chains = new Map<string, ChainRefs>();
  for (const point of points) {
    for (const disk of point.disks) {
      const scope = `${point.vmId}/${disk.chainId}`;
      const chain = chains.get(scope) ?? { vmId: point.vmId, chainId: disk.chainId, disks: [] };
      chain.disks.push({ label: `${point.vmId}/${point.pointId}`, disk });
      chains.set(scope, chain);
    }
  }
  let totalBlocks = 0;
  let totalBytes = 0;
  if (meter.listening) {
    meter.start('scan', { totalObjects: chains.size });
    for (const chain of chains.values()) {
      const { blocks } = await collectChain(repository, chain, []);
      totalBlocks += blocks.size;
      for (const block of blocks.values()) totalBytes += block.lengthBytes;
      meter.add(1, 0);
    }
    meter.report();
  }
  meter.start('verify', { totalObjects: totalBlocks, totalBytes });
  const concurrency = Math.min(8, repository.store.properties.maxConcurrency);
  let checkedIndexes = 0;
  let checkedBlocks = 0;
  let readBlocks = 0;
  for (const chain of chains.values()) {
    const { vmId, chainId } = chain;
    const { indexKeys, blocks } = await collectChain(repository, chain, findings);
    checkedIndexes += indexKeys.size;
    checkedBlocks += blocks.size;
    await forEachLimited(blocks, concurrency, async ([key, block]) => {
      try {
        const affected = [...block.points];
        const info = await repository.store.stat(key);
        if (info === undefined) {
          findings.push({
            code: 'REPO_OBJECT_MISSING',
            key,
            message: `${key} is referenced but absent`,
            points: affected,
          });
          return;
        }
        if (info.sizeBytes < BLOCK_HEADER_BYTES) {
          findings.push({
            code: 'REPO_BLOCK_CORRUPT',
            key,
            message: `${key}: ${info.sizeBytes} bytes, shorter than a header`,
            points: affected,
          });
          return;
        }
        if (sample <= 0 || (sample < 1 && random() >= sample)) return;
        readBlocks += 1;
        try {
          await repository.readBlockObject(vmId, chainId, block.hash, block.lengthBytes);
        } catch (error) {
          findings.push({
            code: codeOf(error),
            key,
            message: describeError(error),
            points: affected,
          });
        }
      } finally {
        meter.add(1, block.lengthBytes);
      }
    });
  }
  meter.report();
  return {
    findings,
    checkedPoints: points.length,
    checkedIndexes,
    checkedBlocks,
    readBlocks,
  };
}
