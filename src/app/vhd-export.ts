/**
 * Export of a restore point as VHD files other tools open: one dynamic VHD, or the chain as a key
 * VHD plus one differencing VHD per later restore point of the disk's chain (each child names its
 * parent by UUID, timestamp and file name, in the same folder). A differencing file holds the
 * blocks whose content differs from the previous point (blocks that became zero are written as
 * zeros), read from the repository with every hash checked.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  BlockSet,
  zeroBlock,
  blockLengthBytes,
  type Block,
  type DiskSource,
} from '../disk/index.ts';
import type { ProgressListener } from '../core/index.ts';
import { openPointDisk, type PointDisk } from '../repository/index.ts';
import { writeVhdFile, type VhdPlan } from '../vhd/index.ts';
import type { App } from './app.ts';
import { reportingDisk } from './disk-progress.ts';
import { AppError } from './errors.ts';

/** The blocks of `newer` whose content differs from `older`, as a delta DiskSource. */
export function pointDelta(older: PointDisk, newer: PointDisk): DiskSource {
  const changed = new BlockSet(newer.folded.blockCount);
  for (let index = 0; index < newer.folded.blockCount; index += 1) {
    const before = older.folded.hashOf(index);
    const after = newer.folded.hashOf(index);
    const same =
      before === undefined ? after === undefined : after !== undefined && before.equals(after);
    if (!same) changed.add(index);
  }
  return {
    sizeBytes: newer.sizeBytes,
    blockSizeBytes: newer.blockSizeBytes,
    kind: 'delta',
    blocks: changed,
    async *readBlocks(): AsyncIterable<Block> {
      for (const index of changed) {
        yield {
          index,
          data: newer.folded.present.has(index)
            ? await newer.readBlock(index)
            : zeroBlock(blockLengthBytes(index, newer.sizeBytes, newer.blockSizeBytes)),
        };
      }
    },
    close: () => Promise.resolve(),
  };
}

export interface ExportedVhd {
  readonly pointId: string;
  readonly path: string;
  readonly kind: 'dynamic' | 'differencing';
  readonly parentPath?: string;
}

/** Writes the disk's chain up to `pointId` as key.vhd + differencing files, oldest first. */
export async function exportVhdChain(
  app: App,
  request: {
    remoteId: string;
    vmId: string;
    pointId: string;
    diskId: string;
    dir: string;
    /** Phase 'export', item "file i of n": blocks and bytes written to that file (ten a second). */
    onProgress?: ProgressListener;
  },
): Promise<ExportedVhd[]> {
  const { repository } = await app.remote(request.remoteId);
  const points = await repository.listPoints(request.vmId);
  const target = points.find((p) => p.pointId === request.pointId);
  const entry = target?.disks.find((d) => d.diskId === request.diskId);
  if (target === undefined || entry === undefined) {
    throw new AppError(
      'APP_CONFIG_INVALID',
      `no disk ${request.diskId} in restore point ${request.vmId}/${request.pointId}`,
    );
  }
  const chain = points.filter(
    (p) =>
      p.createdMs <= target.createdMs &&
      p.disks.some((d) => d.diskId === request.diskId && d.chainId === entry.chainId),
  );
  await mkdir(request.dir, { recursive: true });
  const files: ExportedVhd[] = [];
  let previous: { disk: PointDisk; plan: VhdPlan; fileName: string } | undefined;
  try {
    for (const [i, point] of chain.entries()) {
      const disk = await openPointDisk(repository, request.vmId, point.pointId, request.diskId);
      const fileName = `${request.vmId}-${request.diskId}-${String(i).padStart(3, '0')}-${point.pointId}.vhd`;
      const path = join(request.dir, fileName);
      const item = `file ${i + 1} of ${chain.length}`;
      if (previous === undefined) {
        const plan = await writeVhdFile(
          reportingDisk(disk, request.onProgress, 'export', item),
          path,
        );
        files.push({ pointId: point.pointId, path, kind: 'dynamic' });
        previous = { disk, plan, fileName };
      } else {
        const delta = pointDelta(previous.disk, disk);
        const plan = await writeVhdFile(
          reportingDisk(delta, request.onProgress, 'export', item),
          path,
          {
            parent: {
              uuid: previous.plan.uuid,
              timestamp: previous.plan.timestamp,
              fileName: previous.fileName,
            },
          },
        );
        files.push({
          pointId: point.pointId,
          path,
          kind: 'differencing',
          parentPath: join(request.dir, previous.fileName),
        });
        await previous.disk.close();
        previous = { disk, plan, fileName };
      }
    }
  } finally {
    await previous?.disk.close();
  }
  return files;
}
