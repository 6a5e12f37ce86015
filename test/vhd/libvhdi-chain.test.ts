import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openVhdFileDisk, openVhdStreamDisk, type DiskSource } from '../../src/disk/index.ts';
import { openVhdChain, writeVhdFile, type VhdPlan } from '../../src/vhd/index.ts';
import { makeTempDir, requireTool, run } from '../harness/index.ts';
import { MiB, assertVhdUtilRules, libvhdiFlatten, makeDisk } from './helpers.ts';

async function materialise(disk: DiskSource, base?: Buffer): Promise<Buffer> {
  const raw = Buffer.alloc(disk.sizeBytes);
  base?.copy(raw);
  for await (const { index, data } of disk.readBlocks())
    data.copy(raw, index * disk.blockSizeBytes);
  return raw;
}

test('libvhdi opens our differencing chains and reads the same bytes as the source', async () => {
  const dir = await makeTempDir();
  try {
    const sizeBytes = 20 * MiB + 1536;
    const key = makeDisk({
      sizeBytes,
      blockSizeBytes: 2 * MiB,
      present: [0, 1, 4, 9, 10],
      seed: 100,
    });
    const delta1 = makeDisk({
      sizeBytes,
      blockSizeBytes: 2 * MiB,
      present: [1, 2, 10],
      seed: 200,
      kind: 'delta',
      base: key.raw,
    });
    // 64 KiB source blocks: the VHD blocks of this delta have partial sector bitmaps.
    const delta2 = makeDisk({
      sizeBytes,
      blockSizeBytes: 64 * 1024,
      present: [0, 33, 34, 64, 130, 320],
      seed: 300,
      kind: 'delta',
      base: delta1.raw,
    });
    const paths = ['key.vhd', 'd1.vhd', 'd2.vhd'].map((name) => join(dir.path, name));
    const [keyPath = '', d1Path = '', d2Path = ''] = paths;
    const parentOf = (plan: VhdPlan, fileName: string) => ({
      uuid: plan.uuid,
      timestamp: plan.timestamp,
      fileName,
    });
    const keyPlan = await writeVhdFile(key.disk, keyPath);
    const d1Plan = await writeVhdFile(delta1.disk, d1Path, {
      parent: parentOf(keyPlan, 'key.vhd'),
    });
    await writeVhdFile(delta2.disk, d2Path, { parent: parentOf(d1Plan, 'd1.vhd') });
    for (const path of paths) await assertVhdUtilRules(path);

    // libvhdi, a reader nobody here wrote.
    const info = await run(requireTool('vhdiinfo'), [d2Path]);
    assert.match(info, /Disk type\s*:\s*Differential/);
    assert.match(info, new RegExp(`Parent identifier\\s*:\\s*${d1Plan.uuid}`));
    assert.match(info, /Parent filename\s*:\s*d1\.vhd/);
    for (const [chain, expected] of [
      [[keyPath], key.raw],
      [[d1Path, keyPath], delta1.raw],
      [[d2Path, d1Path, keyPath], delta2.raw],
    ] as const) {
      const out = join(dir.path, 'flat.raw');
      await libvhdiFlatten(chain, out);
      assert.ok((await readFile(out)).equals(expected), `libvhdi read of ${chain.join(' <- ')}`);
    }

    // Our chain reader agrees (locators resolved relative to the child).
    const flat = await openVhdFileDisk(d2Path);
    try {
      assert.equal(flat.kind, 'full');
      assert.deepEqual(flat.blocks.toArray(), [0, 1, 2, 4, 9, 10]);
      assert.ok((await materialise(flat)).equals(delta2.raw));
    } finally {
      await flat.close();
    }
    // One layer alone is a delta; partial blocks are completed from the parent (read-modify).
    const layer = await openVhdFileDisk(d2Path, { layer: true });
    try {
      assert.equal(layer.kind, 'delta');
      assert.deepEqual(layer.blocks.toArray(), [0, 1, 2, 4, 10]);
      assert.ok((await materialise(layer, delta1.raw)).equals(delta2.raw));
    } finally {
      await layer.close();
    }
    // As a stream, a partial block needs the parent...
    const bare = await openVhdStreamDisk(createReadStream(d2Path));
    assert.equal(bare.kind, 'delta');
    await assert.rejects(materialise(bare), {
      code: 'VHD_PARTIAL_BLOCK',
      details: { field: 'bat[0]', index: 0 },
    });
    await bare.close();
    // ...which the chain reader of the parent provides.
    const parent = await openVhdChain(d1Path);
    try {
      const withParent = await openVhdStreamDisk(createReadStream(d2Path), {
        readParentBlock: (index) => parent.readBlock(index),
      });
      assert.ok((await materialise(withParent, delta1.raw)).equals(delta2.raw));
    } finally {
      await parent.close();
    }
    // A whole-block delta streams without a parent.
    const d1Stream = await openVhdStreamDisk(createReadStream(d1Path));
    assert.deepEqual(d1Stream.blocks.toArray(), [1, 2, 10]);
    assert.ok((await materialise(d1Stream, key.raw)).equals(delta1.raw));
  } finally {
    await dir.remove();
  }
});

test('the chain reader checks the parent uuid and reports a missing parent', async () => {
  const dir = await makeTempDir();
  try {
    const sizeBytes = 4 * MiB;
    const key = makeDisk({ sizeBytes, blockSizeBytes: 2 * MiB, present: [0], seed: 1 });
    const delta = makeDisk({
      sizeBytes,
      blockSizeBytes: 2 * MiB,
      present: [1],
      seed: 2,
      kind: 'delta',
      base: key.raw,
    });
    const keyPath = join(dir.path, 'key.vhd');
    const childPath = join(dir.path, 'child.vhd');
    await writeVhdFile(key.disk, keyPath);
    await writeVhdFile(delta.disk, childPath, {
      parent: { uuid: '33333333-3333-4333-8333-333333333333', timestamp: 0, fileName: 'key.vhd' },
    });
    await assert.rejects(openVhdChain(childPath), {
      code: 'VHD_PARENT_MISMATCH',
      details: { field: 'header.parentUuid', parentPath: keyPath },
    });
    const orphan = join(dir.path, 'orphan.vhd');
    await writeVhdFile(delta.disk, orphan, {
      parent: { uuid: '33333333-3333-4333-8333-333333333333', timestamp: 0, fileName: 'gone.vhd' },
    });
    await assert.rejects(openVhdChain(orphan), { code: 'VHD_PARENT_NOT_FOUND' });
  } finally {
    await dir.remove();
  }
});
