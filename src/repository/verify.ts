/**
 * Verify (docs/design.md §4.8): structure — every manifest parses, every disk's chain walks to a
 * key, every index decodes and every referenced block object exists with a sane header; data —
 * every referenced block (or a random sample) is read back, decompressed and re-hashed. Problems
 * are collected as findings, never thrown on the first.
 */
import { describeError, VmdeltaError } from '../core/index.ts';
import { BLOCK_HEADER_BYTES } from './constants.ts';
import { RepositoryError } from './errors.ts';
import { blockKey } from './keys.ts';
import type { Repository } from './repository.ts';

export interface VerifyOptions {
  readonly vmId?: string;
  /** Share of referenced blocks read back and re-hashed: 0 = structure only, 1 = all (default 0). */
  readonly dataSample?: number;
  /** Random source for sampling (tests pass a seeded one). */
  readonly random?: () => number;
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

export async function verifyRepository(
  repository: Repository,
  options: VerifyOptions = {},
): Promise<VerifyResult> {
  const findings: VerifyFinding[] = [];
  const sample = options.dataSample ?? 0;
  const random = options.random ?? Math.random;
  const { points, invalid } = await repository.scanPoints(options.vmId);
  for (const bad of invalid) {
    findings.push({
      code: bad.error.code,
      key: bad.key,
      message: bad.error.message,
      points: [bad.key],
    });
  }
  // chain scope -> block hash hex -> { lengthBytes, points }
  const checkedIndexKeys = new Set<string>();
  const blocks = new Map<
    string,
    { vmId: string; chainId: string; lengthBytes: number; points: Set<string> }
  >();
  for (const point of points) {
    const label = `${point.vmId}/${point.pointId}`;
    for (const disk of point.disks) {
      try {
        const folded = await repository.foldDisk(point.vmId, disk);
        for (const index of folded.indexes)
          checkedIndexKeys.add(
            `${point.vmId}/${index.chainId}/${index.seq}/${index.baseSeq ?? 'key'}`,
          );
        for (const blockIndex of folded.present) {
          const hash = folded.hashOf(blockIndex);
          if (hash === undefined) continue;
          const key = blockKey(point.vmId, disk.chainId, hash);
          const known = blocks.get(key);
          if (known === undefined) {
            blocks.set(key, {
              vmId: point.vmId,
              chainId: disk.chainId,
              lengthBytes: folded.lengthOf(blockIndex),
              points: new Set([label]),
            });
          } else known.points.add(label);
        }
      } catch (error) {
        const key =
          error instanceof RepositoryError && typeof error.details['key'] === 'string'
            ? error.details['key']
            : `data/${point.vmId}/${disk.chainId}/`;
        findings.push({ code: codeOf(error), key, message: describeError(error), points: [label] });
      }
    }
  }
  let readBlocks = 0;
  for (const [key, block] of blocks) {
    const points = [...block.points];
    const info = await repository.store.stat(key);
    if (info === undefined) {
      findings.push({
        code: 'REPO_OBJECT_MISSING',
        key,
        message: `${key} is referenced but absent`,
        points,
      });
      continue;
    }
    if (info.sizeBytes < BLOCK_HEADER_BYTES) {
      findings.push({
        code: 'REPO_BLOCK_CORRUPT',
        key,
        message: `${key}: ${info.sizeBytes} bytes, shorter than a header`,
        points,
      });
      continue;
    }
    if (sample <= 0 || (sample < 1 && random() >= sample)) continue;
    readBlocks += 1;
    try {
      const hash = Buffer.from(key.slice(key.lastIndexOf('/') + 1), 'hex');
      await repository.readBlockObject(block.vmId, block.chainId, hash, block.lengthBytes);
    } catch (error) {
      findings.push({ code: codeOf(error), key, message: describeError(error), points });
    }
  }
  return {
    findings,
    checkedPoints: points.length,
    checkedIndexes: checkedIndexKeys.size,
    checkedBlocks: blocks.size,
    readBlocks,
  };
}
