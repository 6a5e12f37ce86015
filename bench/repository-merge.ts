/**
 * Merge and memory benchmarks on a local repository (fsync on):
 *  merge:  key backup of a fully written 4/16/64 GiB disk, one delta with 1 GiB changed (512
 *          blocks), then "merge the oldest delta into the key" (removePoint of the key point).
 *          Reported: the fold + commit time (goal <= 0.1 s) and the deletion of the 512 superseded
 *          blocks, with index sizes (time grows with the index, not with the data).
 *  memory: key backup, delta, full restore read and merge of a 1 TiB sparse disk (8 GiB written
 *          spread over it): peak RSS (goal <= 256 MiB).
 * Synthetic data: each block is zeros plus a unique stamp (cheap to compress; hashing is real).
 * Run: node --import tsx bench/repository-merge.ts [workdir] [merge-only|memory-only]
 * (MERGE_GIB=4,16 picks the disk sizes of the merge part; default 4,16,64)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { GiB, MiB, TiB, formatBytes } from '../src/core/index.ts';
import { BlockSet, type Block, type DiskKind, type DiskSource } from '../src/disk/index.ts';
import { LocalObjectStore } from '../src/storage/index.ts';
import { openPointDisk, removePoint, Repository, writeBackup } from '../src/repository/index.ts';

const BLOCK = 2 * MiB;

function synthetic(
  sizeBytes: number,
  kind: DiskKind,
  blocks: BlockSet,
  version: number,
): DiskSource {
  return {
    sizeBytes,
    blockSizeBytes: BLOCK,
    kind,
    blocks,
    async *readBlocks(): AsyncIterable<Block> {
      for (const index of blocks) {
        const data = Buffer.alloc(BLOCK);
        data.writeUInt32LE(index, 0);
        data.writeUInt32LE(version + 1, 4);
        await Promise.resolve();
        yield { index, data };
      }
    },
    close: () => Promise.resolve(),
  };
}

function spread(blockCount: number, count: number, seed: number): BlockSet {
  const set = new BlockSet(blockCount);
  let state = seed;
  while (set.count < count) {
    state = (state * 1664525 + 1013904223) >>> 0;
    set.add(state % blockCount);
  }
  return set;
}

async function mergeBench(work: string, sizeBytes: number): Promise<void> {
  const blockCount = sizeBytes / BLOCK;
  const repo = await Repository.init(new LocalObjectStore(join(work, `merge-${sizeBytes / GiB}`)), {
    blockWorkers: 2,
  });
  try {
    let start = performance.now();
    const key = await writeBackup(repo, {
      vmId: 'vm',
      createdMs: 1,
      disks: [
        {
          diskId: 'd',
          mode: 'key',
          source: synthetic(sizeBytes, 'full', BlockSet.all(blockCount), 0),
        },
      ],
    });
    const keySeconds = (performance.now() - start) / 1000;
    const changed = spread(blockCount, GiB / BLOCK, 7);
    await writeBackup(repo, {
      vmId: 'vm',
      createdMs: 2,
      disks: [{ diskId: 'd', mode: 'delta', source: synthetic(sizeBytes, 'delta', changed, 1) }],
    });
    start = performance.now();
    const result = await removePoint(repo, 'vm', key.pointId);
    const totalSeconds = (performance.now() - start) / 1000;
    console.log(
      `${String(sizeBytes / GiB).padStart(3)} GiB disk (key index ${formatBytes(48 + 36 * blockCount + 32)}, key backup ${keySeconds.toFixed(1)} s): merge oldest delta (1 GiB changed): fold + commit ${(result.commitMs / 1000).toFixed(3)} s (goal <= 0.1 s), then deleting ${result.deletedBlocks} superseded blocks + ${result.deletedIndexes} indexes ${(result.cleanupMs / 1000).toFixed(3)} s; total ${totalSeconds.toFixed(3)} s`,
    );
  } finally {
    await repo.close();
  }
}

async function memoryBench(work: string): Promise<void> {
  let peak = 0;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 20);
  const sizeBytes = 1 * TiB;
  const blockCount = sizeBytes / BLOCK;
  const repo = await Repository.init(new LocalObjectStore(join(work, 'memory')), {
    blockWorkers: Number(process.env['BLOCK_WORKERS'] ?? 2),
  });
  try {
    const start = performance.now();
    const present = spread(blockCount, (8 * GiB) / BLOCK, 3);
    const key = await writeBackup(repo, {
      vmId: 'vm',
      createdMs: 1,
      disks: [{ diskId: 'd', mode: 'key', source: synthetic(sizeBytes, 'full', present, 0) }],
    });
    const delta = await writeBackup(repo, {
      vmId: 'vm',
      createdMs: 2,
      disks: [
        {
          diskId: 'd',
          mode: 'delta',
          source: synthetic(sizeBytes, 'delta', spread(blockCount, 512, 9), 1),
        },
      ],
    });
    const disk = await openPointDisk(repo, 'vm', delta.pointId, 'd');
    let readBytes = 0;
    for await (const block of disk.readBlocks()) {
      readBytes += block.data.length;
      block.release?.(); // as restores do
    }
    await removePoint(repo, 'vm', key.pointId);
    clearInterval(sampler);
    peak = Math.max(peak, process.memoryUsage.rss(), process.resourceUsage().maxRSS * 1024);
    console.log(
      `1 TiB sparse disk (8 GiB written): key + delta + restore read (${formatBytes(readBytes)}) + merge in ${((performance.now() - start) / 1000).toFixed(1)} s, peak RSS ${formatBytes(peak)} (goal <= 256 MiB)`,
    );
  } finally {
    clearInterval(sampler);
    await repo.close();
  }
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(process.argv[2] ?? '/var/tmp', 'vmdelta-merge-'));
  try {
    if (process.argv[3] !== 'merge-only') await memoryBench(work);
    if (process.argv[3] === 'memory-only') return;
    for (const size of (process.env['MERGE_GIB'] ?? '4,16,64').split(',').map(Number)) {
      await mergeBench(work, size * GiB);
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
