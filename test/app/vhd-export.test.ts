// A restore point exported as a key VHD plus differencing VHDs: libvhdi (a reader nobody here
// wrote) opens every prefix of the chain and reads exactly the disk at that point; every file
// passes the vhd-util check rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { App, exportVhdChain } from '../../src/app/index.ts';
import { MemoryDisk } from '../../src/disk/index.ts';
import { LocalObjectStore } from '../../src/storage/index.ts';
import { Repository, writeBackup } from '../../src/repository/index.ts';
import { makeTempDir } from '../harness/index.ts';
import { assertVhdUtilRules, libvhdiFlatten } from '../vhd/helpers.ts';

const MiB = 1024 * 1024;
const BLOCK = 2 * MiB;
const SIZE = 5 * BLOCK + 512 * 1024;

test('a restore point exports as a VHD chain that libvhdi reads bit-exact at every point', async () => {
  const tmp = await makeTempDir('vmd-vhdx-');
  try {
    const remotePath = join(tmp.path, 'nas');
    const repository = await Repository.init(new LocalObjectStore(remotePath), {
      blockSizeBytes: BLOCK,
    });
    const image = Buffer.alloc(SIZE);
    const snapshots: Buffer[] = [];
    const pointIds: string[] = [];
    const blockOf = (i: number) =>
      Buffer.from(image.subarray(i * BLOCK, Math.min(SIZE, (i + 1) * BLOCK)));
    const writes: [number, number, number][][] = [
      [
        [0, 3 * MiB, 0x11],
        [5 * BLOCK, 100_000, 0x22],
      ],
      [[MiB, 4096, 0x33]],
      [
        [0, BLOCK, 0x00],
        [4 * BLOCK, 700_000, 0x44],
      ],
    ];
    for (const [run, batch] of writes.entries()) {
      const changed = new Set<number>();
      for (const [offset, length, value] of batch) {
        image.fill(value, offset, offset + length);
        for (
          let i = Math.floor(offset / BLOCK);
          i <= Math.floor((offset + length - 1) / BLOCK);
          i += 1
        )
          changed.add(i);
      }
      const data = new Map(
        [...(run === 0 ? Array.from({ length: 6 }, (_, i) => i) : changed)].map((i) => [
          i,
          blockOf(i),
        ]),
      );
      const point = await writeBackup(repository, {
        vmId: 'vm1',
        createdMs: 1_700_000_000_000 + run * 1000,
        disks: [
          {
            diskId: 'd0',
            source: new MemoryDisk({
              sizeBytes: SIZE,
              blockSizeBytes: BLOCK,
              kind: run === 0 ? 'full' : 'delta',
              data,
            }),
            mode: run === 0 ? 'key' : 'delta',
          },
        ],
      });
      pointIds.push(point.pointId);
      snapshots.push(Buffer.from(image));
    }
    const configFile = join(tmp.path, 'config.json');
    await writeFile(
      configFile,
      JSON.stringify({ remotes: [{ id: 'nas', store: { type: 'local', path: remotePath } }] }),
    );
    const app = App.open({ dataDir: join(tmp.path, 'data'), configFile });
    try {
      const files = await exportVhdChain(app, {
        remoteId: 'nas',
        vmId: 'vm1',
        pointId: pointIds[2] ?? '',
        diskId: 'd0',
        dir: join(tmp.path, 'out'),
      });
      assert.deepEqual(
        files.map((f) => f.kind),
        ['dynamic', 'differencing', 'differencing'],
      );
      for (const file of files) await assertVhdUtilRules(file.path);
      for (let n = 1; n <= 3; n += 1) {
        const chain = files
          .slice(0, n)
          .map((f) => f.path)
          .reverse();
        const out = join(tmp.path, `flat-${n}.raw`);
        await libvhdiFlatten(chain, out);
        assert.ok(
          (await readFile(out)).equals(snapshots[n - 1] ?? Buffer.alloc(0)),
          `chain of ${n} file(s) reads the disk at point ${n}`,
        );
      }
    } finally {
      await app.close();
    }
  } finally {
    await tmp.remove();
  }
});
