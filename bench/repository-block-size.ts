/**
 * Measurements behind the repository defaults (docs/design.md §4.10): for each candidate block
 * size, (1) bytes and objects stored by a delta of a typical write pattern (random 4 KiB writes
 * plus sequential runs) on a 16 GiB disk, (2) sha256 + zstd throughput and ratio on a corpus of
 * real files (/usr), (3) local per-object write cost (temp + fsync + rename).
 * Run: node --import tsx bench/repository-block-size.ts
 */
import { createHash } from 'node:crypto';
import { mkdtemp, open, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Compressor } from 'zstd-napi';
import { GiB, KiB, MiB } from '../src/core/index.ts';
import { corpus } from './corpus.ts';

const sizes = [256 * KiB, 512 * KiB, 1 * MiB, 2 * MiB, 4 * MiB];

function rng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

function deltaFootprint(blockSizeBytes: number): { bytes: number; objects: number } {
  const disk = 16 * GiB;
  const random = rng(42);
  const changed = new Set<number>();
  // 8,000 random 4 KiB writes (32 MiB) and 200 sequential runs of 1 MiB (200 MiB).
  for (let i = 0; i < 8000; i += 1) changed.add(Math.floor((random() * disk) / blockSizeBytes));
  for (let i = 0; i < 200; i += 1) {
    const start = Math.floor(random() * (disk - MiB));
    for (let offset = start; offset < start + MiB; offset += 4 * KiB) {
      changed.add(Math.floor(offset / blockSizeBytes));
    }
  }
  return { bytes: changed.size * blockSizeBytes, objects: changed.size };
}

async function main(): Promise<void> {
  const data = await corpus(256 * MiB);
  console.log(`corpus: ${(data.length / MiB).toFixed(0)} MiB of /usr/lib files`);
  console.log(
    'block    delta-stored  objects  sha256 MiB/s  sha256+zstd1 MiB/s  zstd1 ratio  objects/s (local put)',
  );
  const dir = await mkdtemp(join(tmpdir(), 'vmdelta-bench-'));
  try {
    for (const blockSizeBytes of sizes) {
      const footprint = deltaFootprint(blockSizeBytes);
      const compressor = new Compressor();
      compressor.setParameters({ compressionLevel: 1 });
      let start = performance.now();
      for (let offset = 0; offset + blockSizeBytes <= data.length; offset += blockSizeBytes) {
        createHash('sha256')
          .update(data.subarray(offset, offset + blockSizeBytes))
          .digest();
      }
      const hashMs = performance.now() - start;
      let compressedBytes = 0;
      start = performance.now();
      for (let offset = 0; offset + blockSizeBytes <= data.length; offset += blockSizeBytes) {
        const block = data.subarray(offset, offset + blockSizeBytes);
        createHash('sha256').update(block).digest();
        compressedBytes += Math.min(block.length, compressor.compress(block).length);
      }
      const bothMs = performance.now() - start;
      // Local object writes: temp file, fsync, rename (64 objects).
      const block = data.subarray(0, blockSizeBytes);
      start = performance.now();
      const count = 64;
      for (let i = 0; i < count; i += 1) {
        const temp = join(dir, `t${i}`);
        const handle = await open(temp, 'w');
        await handle.write(block);
        await handle.sync();
        await handle.close();
        await rename(temp, join(dir, `o${blockSizeBytes}-${i}`));
      }
      const putMs = performance.now() - start;
      const mib = data.length / MiB;
      console.log(
        `${String(blockSizeBytes / KiB).padStart(5)} KiB ${(footprint.bytes / MiB).toFixed(0).padStart(8)} MiB ${String(footprint.objects).padStart(8)} ${(mib / (hashMs / 1000)).toFixed(0).padStart(12)} ${(mib / (bothMs / 1000)).toFixed(0).padStart(19)} ${(data.length / compressedBytes).toFixed(2).padStart(12)} ${(count / (putMs / 1000)).toFixed(0).padStart(12)}`,
      );
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
