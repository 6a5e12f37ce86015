// Block buffers reused end to end (raw file source -> writer -> restore -> raw file sink), inline
// and with a worker pool, through a tee of two remotes whose writers both release: whatever the
// reuse, every restore is bit-exact.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomFillSync } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DiskTee } from '../../src/disk/index.ts';
import { openRawFileSink, openRawFileSource } from '../../src/disk/raw-file-disk.ts';
import { LocalObjectStore } from '../../src/storage/index.ts';
import { openPointDisk, Repository, writeBackup } from '../../src/repository/index.ts';
import { makeTempDir } from '../harness/index.ts';

const blockSizeBytes = 64 * 1024;
const blocks = 96;

function makeImage(): Buffer {
  const image = Buffer.alloc(blocks * blockSizeBytes + 1000); // a partial last block too
  for (let index = 0; index <= blocks; index += 1) {
    const start = index * blockSizeBytes;
    const end = Math.min(image.length, start + blockSizeBytes);
    if (index % 5 === 0) continue; // zero blocks
    if (index % 3 === 0)
      image.fill(index, start, end); // compressible
    else randomFillSync(image, start, end - start);
  }
  return image;
}

for (const blockWorkers of [0, 1]) {
  test(`reused buffers keep every byte (${blockWorkers} block workers, two remotes)`, async () => {
    const dir = await makeTempDir('vmd-reuse-');
    const repositories: Repository[] = [];
    try {
      const path = join(dir.path, 'disk.raw');
      const image = makeImage();
      await writeFile(path, image);
      for (const name of ['a', 'b']) {
        repositories.push(
          await Repository.init(new LocalObjectStore(join(dir.path, name), { durable: false }), {
            blockSizeBytes,
            blockWorkers,
          }),
        );
      }
      const source = await openRawFileSource(path, { blockSizeBytes, readAhead: 6 });
      const tee = new DiskTee(source, 2, { windowBlocks: 3 });
      await Promise.all(
        repositories.map((repository, i) =>
          writeBackup(repository, {
            vmId: 'vm',
            disks: [{ diskId: 'd', mode: 'key', source: tee.views[i] ?? assert.fail() }],
          }),
        ),
      );
      await tee.close();
      for (const [i, repository] of repositories.entries()) {
        const [point] = await repository.listPoints('vm');
        assert.ok(point !== undefined);
        const disk = await openPointDisk(repository, 'vm', point.pointId, 'd', { readAhead: 5 });
        const out = join(dir.path, `restored-${i}.raw`);
        const sink = await openRawFileSink(out, disk.sizeBytes);
        for await (const block of disk.readBlocks()) {
          await sink.writeBlock(block.index, block.data, blockSizeBytes);
          block.release?.();
        }
        await sink.close();
        assert.ok((await readFile(out)).equals(image), `remote ${i} restores bit-exact`);
      }
    } finally {
      for (const repository of repositories) await repository.close();
      await dir.remove();
    }
  });
}
