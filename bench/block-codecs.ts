/**
 * Per-core speed of the block work behind the repository defaults (docs/design.md §4.10): block
 * hashes (sha256, BLAKE3) and zstd levels, as the repository runs them (BlockEncoder: compress
 * and frame; decodeBlockObject: decompress and check the hash), on 2 MiB blocks of a 256 MiB
 * corpus of /usr/lib files, one thread. References measured in the same run on the same corpus:
 * `sha256sum` (file in the page cache) and the zstd CLI's own benchmark (`zstd -b<level> -B2M`).
 * Run: node --import tsx bench/block-codecs.ts
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MiB } from '../src/core/index.ts';
import {
  BLOCK_HASH_NAMES,
  BlockEncoder,
  decodeBlockObject,
  hashBlock,
} from '../src/repository/index.ts';
import { corpus } from './corpus.ts';

const BLOCK = 2 * MiB;
const LEVELS = (process.env['LEVELS'] ?? '1,-1,-3,3').split(',').map(Number);

function best(runs: number, fn: () => void): number {
  let seconds = Infinity;
  for (let run = 0; run < runs; run += 1) {
    const start = performance.now();
    fn();
    seconds = Math.min(seconds, (performance.now() - start) / 1000);
  }
  return seconds;
}

/** zstd CLI benchmark: [compress, decompress] MB/s (10^6 bytes) for `level` on `file`. */
function zstdCli(file: string, level: number): [number, number] | undefined {
  const levelArgs = level < 0 ? [`--fast=${-level}`, '-b'] : [`-b${level}`];
  try {
    const out = execFileSync('zstd', [...levelArgs, '-B2M', '-i2', file], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const speeds = [...out.matchAll(/([\d.]+) MB\/s/g)].map((m) => Number(m[1]));
    const [compress, decompress] = speeds.slice(-2);
    return compress === undefined || decompress === undefined ? undefined : [compress, decompress];
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  const data = await corpus(256 * MiB);
  const blocks: Buffer[] = [];
  for (let at = 0; at < data.length; at += BLOCK) blocks.push(data.subarray(at, at + BLOCK));
  const mib = data.length / MiB;
  const rate = (seconds: number): string => `${(mib / seconds).toFixed(0).padStart(6)} MiB/s`;
  const dir = await mkdtemp(join(tmpdir(), 'vmdelta-codecs-'));
  const file = join(dir, 'corpus.bin');
  await writeFile(file, data);
  try {
    console.log(
      `corpus: ${mib.toFixed(0)} MiB of /usr/lib files, ${blocks.length} blocks of 2 MiB, one thread`,
    );
    execFileSync('sha256sum', [file], { stdio: 'ignore' }); // into the page cache
    const sha256sum = best(3, () => execFileSync('sha256sum', [file], { stdio: 'ignore' }));
    for (const name of BLOCK_HASH_NAMES) {
      const seconds = best(3, () => {
        for (const block of blocks) hashBlock(block, name);
      });
      console.log(
        `hash ${name.padEnd(7)} ${rate(seconds)}   sha256sum ${rate(sha256sum)} -> ratio ${(sha256sum / seconds).toFixed(2)}x`,
      );
    }
    for (const level of LEVELS) {
      const encoder = new BlockEncoder({ codec: 'zstd', level });
      const hashes = blocks.map((block) => hashBlock(block, 'blake3'));
      let objects: Buffer[] = [];
      const encode = best(2, () => {
        objects = blocks.map((block, i) => encoder.encode(block, hashes[i] ?? Buffer.alloc(32)));
      });
      const decode = best(2, () => {
        for (const [i, object] of objects.entries()) {
          decodeBlockObject(
            'b',
            object,
            hashes[i] ?? Buffer.alloc(32),
            blocks[i]?.length ?? 0,
            'blake3',
          );
        }
      });
      let storedBytes = 0;
      for (const object of objects) storedBytes += object.length;
      const cli = zstdCli(file, level);
      const cliText =
        cli === undefined
          ? 'zstd CLI: n/a'
          : `zstd CLI ${(cli[0] / 1.048576).toFixed(0)} / ${(cli[1] / 1.048576).toFixed(0)} MiB/s -> ratios ${(mib / encode / (cli[0] / 1.048576)).toFixed(2)}x / ${(mib / decode / (cli[1] / 1.048576)).toFixed(2)}x`;
      console.log(
        `zstd ${String(level).padStart(3)}: encode ${rate(encode)}, decode + BLAKE3 check ${rate(decode)}, stored ${(storedBytes / data.length).toFixed(3)} of plain; ${cliText}`,
      );
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
