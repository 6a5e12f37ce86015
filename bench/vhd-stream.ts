/**
 * Benchmark: VHD stream throughput against qemu-img in the same run.
 *   write: 4 GiB of 2 MiB blocks (read from a raw file) -> dynamic VHD file, vs
 *          `qemu-img convert -f raw -O vpc -o subformat=dynamic,force_size=on`
 *   parse: a 4 GiB dynamic VHD read as a stream into blocks, vs
 *          `qemu-img convert -n -f vpc x.vhd --target-image-opts driver=null-co,...` (discarding)
 * Every block holds non-zero data, so nobody can skip work. Run:
 *   node --import tsx bench/vhd-stream.ts [sizeGiB]
 */
import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BlockSet, openVhdStreamDisk, type Block, type DiskSource } from '../src/disk/index.ts';
import { writeVhdFile } from '../src/vhd/index.ts';
import { GiB, MiB, formatRate } from '../src/core/index.ts';

const exec = promisify(execFile);
const sizeBytes = Number(process.argv[2] ?? '4') * GiB;
const blockSizeBytes = 2 * MiB;
const blockCount = sizeBytes / blockSizeBytes;

/** Best of `runs` timings, each after a sync so earlier writeback does not leak in. */
async function timed(what: () => Promise<unknown>, runs = 3): Promise<number> {
  let best = Infinity;
  for (let run = 0; run < runs; run += 1) {
    await exec('sync');
    const start = performance.now();
    await what();
    best = Math.min(best, performance.now() - start);
  }
  return best;
}

async function makeRaw(path: string): Promise<void> {
  const handle = await open(path, 'w');
  try {
    const block = Buffer.alloc(blockSizeBytes);
    for (let index = 0; index < blockCount; index += 1) {
      for (let offset = 0; offset < blockSizeBytes; offset += 4096)
        block.writeUInt32LE(index * 7919 + offset, offset);
      await handle.write(block, 0, blockSizeBytes, index * blockSizeBytes);
    }
  } finally {
    await handle.close();
  }
}

/** All blocks of a raw file as a full DiskSource (sequential 2 MiB reads, one buffer per block). */
async function rawSource(path: string): Promise<DiskSource & { done: () => Promise<void> }> {
  const handle = await open(path, 'r');
  return {
    sizeBytes,
    blockSizeBytes,
    kind: 'full',
    blocks: BlockSet.all(blockCount),
    readBlocks: async function* (): AsyncGenerator<Block> {
      for (let index = 0; index < blockCount; index += 1) {
        const data = Buffer.allocUnsafe(blockSizeBytes);
        await handle.read(data, 0, blockSizeBytes, index * blockSizeBytes);
        yield { index, data };
      }
    },
    close: () => handle.close(),
    done: () => handle.close(),
  };
}

function line(name: string, oursMs: number, theirsMs: number, reference: string): void {
  const ratio = theirsMs / oursMs;
  console.log(
    `${name.padEnd(6)} vmdelta ${formatRate(sizeBytes, oursMs).padStart(11)} (${(oursMs / 1000).toFixed(2)} s)  ` +
      `${reference} ${formatRate(sizeBytes, theirsMs).padStart(11)} (${(theirsMs / 1000).toFixed(2)} s)  ratio ${ratio.toFixed(2)}x`,
  );
}

const dir = await mkdtemp(join(tmpdir(), 'vmdelta-bench-vhd-'));
try {
  const raw = join(dir, 'src.raw');
  const ours = join(dir, 'ours.vhd');
  const theirs = join(dir, 'qemu.vhd');
  console.log(`vhd-stream: ${sizeBytes / GiB} GiB, every 2 MiB block non-zero, files in ${dir}`);
  await makeRaw(raw);
  await exec('cat', [raw]).catch(() => undefined); // warm the page cache for both sides
  const qemuWriteMs = await timed(() =>
    exec('qemu-img', [
      'convert',
      '-f',
      'raw',
      '-O',
      'vpc',
      '-o',
      'subformat=dynamic,force_size=on',
      raw,
      theirs,
    ]),
  );
  const oursWriteMs = await timed(async () => {
    const source = await rawSource(raw);
    await writeVhdFile(source, ours);
    await source.done();
  });
  line('write', oursWriteMs, qemuWriteMs, 'qemu-img convert raw->vpc');

  const qemuParseMs = await timed(() =>
    exec('qemu-img', [
      'convert',
      '-n',
      '-f',
      'vpc',
      ours,
      '--target-image-opts',
      `driver=null-co,size=${sizeBytes}`,
    ]),
  );
  let blocks = 0;
  const oursParseMs = await timed(async () => {
    blocks = 0;
    const disk = await openVhdStreamDisk(createReadStream(ours, { highWaterMark: 1 * MiB }));
    for await (const block of disk.readBlocks())
      if (block.data.length === blockSizeBytes) blocks += 1;
  });
  if (blocks !== blockCount) throw new Error(`parsed ${blocks} blocks, expected ${blockCount}`);
  line('parse', oursParseMs, qemuParseMs, 'qemu-img convert vpc->null');
  const { stdout } = await exec('qemu-img', ['compare', '-f', 'raw', '-F', 'vpc', raw, ours]);
  console.log(`check: qemu-img compare raw vs our VHD: ${stdout.trim()}`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
