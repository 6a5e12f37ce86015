/** Test helpers for the VHD tests: deterministic disks with their raw image, file helpers, oracles. */
import { writeFile } from 'node:fs/promises';
import assert from 'node:assert/strict';
import { MemoryDisk, blockLengthBytes } from '../../src/disk/index.ts';
import { checkVhdFile } from '../../src/vhd/index.ts';
import { requireTool, run } from '../harness/index.ts';

export const MiB = 1024 * 1024;

/** Deterministic pseudo-random bytes (xorshift32), so failures reproduce. */
export function patternBytes(lengthBytes: number, seed: number): Buffer {
  const buffer = Buffer.allocUnsafe(lengthBytes);
  let x = seed >>> 0 || 1;
  for (let offset = 0; offset + 4 <= lengthBytes; offset += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buffer.writeUInt32LE(x >>> 0, offset);
  }
  buffer.fill(seed & 0xff, lengthBytes - (lengthBytes % 4));
  return buffer;
}

export interface TestDisk {
  readonly disk: MemoryDisk;
  readonly raw: Buffer;
}

/**
 * A disk with the given blocks present, filled with patterns. For a delta, `base` is the image
 * the delta applies to, and `raw` is the resulting image.
 */
export function makeDisk(options: {
  sizeBytes: number;
  blockSizeBytes: number;
  present: readonly number[];
  seed: number;
  kind?: 'full' | 'delta';
  base?: Buffer;
}): TestDisk {
  const { sizeBytes, blockSizeBytes } = options;
  const raw = Buffer.alloc(sizeBytes);
  options.base?.copy(raw, 0, 0, Math.min(sizeBytes, options.base.length));
  const data = new Map<number, Buffer>();
  for (const index of options.present) {
    const block = patternBytes(
      blockLengthBytes(index, sizeBytes, blockSizeBytes),
      options.seed * 7919 + index,
    );
    if (index % 5 === 4) block.fill(0, 0, Math.min(block.length, 4096)); // some zero sectors too
    data.set(index, block);
    block.copy(raw, index * blockSizeBytes);
  }
  return {
    disk: new MemoryDisk({ sizeBytes, blockSizeBytes, kind: options.kind ?? 'full', data }),
    raw,
  };
}

export async function writeRaw(path: string, raw: Buffer): Promise<void> {
  await writeFile(path, raw);
}

/** The vhd-util check rules (src/vhd/check.ts) hold for a file we wrote. */
export async function assertVhdUtilRules(path: string): Promise<void> {
  const report = await checkVhdFile(path);
  assert.deepEqual(report.problems, [], `${path} violates vhd-util check rules`);
}

export async function qemuCompare(rawPath: string, vhdPath: string): Promise<void> {
  const out = await run(requireTool('qemu-img'), [
    'compare',
    '-f',
    'raw',
    '-F',
    'vpc',
    rawPath,
    vhdPath,
  ]);
  assert.match(out, /Images are identical/);
}

/** Reads a VHD chain (child first) with libvhdi's Python binding and writes the merged raw image. */
export async function libvhdiFlatten(chain: readonly string[], outPath: string): Promise<void> {
  requireTool('vhdiinfo');
  const script = `
import sys, pyvhdi
paths = sys.argv[2:]
files = []
for p in paths:
    f = pyvhdi.file()
    f.open(p)
    files.append(f)
for i in range(len(files) - 2, -1, -1):
    files[i].set_parent(files[i + 1])
top = files[0]
size = top.get_media_size()
top.seek_offset(0, 0)
with open(sys.argv[1], 'wb') as out:
    left = size
    while left > 0:
        chunk = top.read_buffer(min(left, 4 * 1024 * 1024))
        if not chunk:
            raise SystemExit('short read at %d' % (size - left))
        out.write(chunk)
        left -= len(chunk)
`;
  await run('/usr/bin/python3', ['-c', script, outPath, ...chain]);
}
