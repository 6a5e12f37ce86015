// Seeding a new remote by copy: the target is created with the source's block size, hash and
// compression (objects are copied as they are), so a remote written with sha256 (the hash before
// BLAKE3 became the default) or another block size seeds a fresh remote, which then goes on
// taking backups; copying into an existing repository with another hash is a typed error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { App, copyBackups } from '../../src/app/index.ts';
import { LocalObjectStore } from '../../src/storage/index.ts';
import {
  openPointDisk,
  Repository,
  RepositoryError,
  writeBackup,
} from '../../src/repository/index.ts';
import { makeTempDir } from '../harness/index.ts';
import { deltaSource, fullSource, readImage } from '../repository/helpers.ts';

const BLOCK = 64 * 1024;

test('a copy seeds a new remote with the source parameters; a hash mismatch is refused', async () => {
  const tmp = await makeTempDir('vmd-seed-');
  try {
    const paths = {
      old: join(tmp.path, 'old'),
      fresh: join(tmp.path, 'fresh'),
      other: join(tmp.path, 'other'),
    };
    const source = await Repository.init(new LocalObjectStore(paths.old), {
      blockSizeBytes: BLOCK,
      hash: 'sha256',
      compression: { codec: 'zstd', level: 3 },
      blockWorkers: 0,
    });
    const image = Buffer.alloc(BLOCK * 5 + 1000);
    for (let i = 0; i < image.length; i += 1) image[i] = (i * 7) % 253;
    const point = await writeBackup(source, {
      vmId: 'vm',
      disks: [{ diskId: 'd', mode: 'key', source: fullSource(image, BLOCK) }],
    });
    // An existing repository with the default hash cannot take sha256 objects.
    await Repository.init(new LocalObjectStore(paths.other), { blockSizeBytes: BLOCK });

    const configFile = join(tmp.path, 'config.json');
    await writeFile(
      configFile,
      JSON.stringify({
        remotes: Object.entries(paths).map(([id, path]) => ({
          id,
          store: { type: 'local', path },
        })),
      }),
    );
    const app = App.open({ dataDir: join(tmp.path, 'data'), configFile });
    try {
      const result = await copyBackups(app, { from: 'old', to: 'fresh' });
      assert.equal(result.copiedPoints, 1);
      const fresh = (await app.remote('fresh')).repository;
      assert.equal(fresh.config.hash, 'sha256');
      assert.equal(fresh.config.blockSizeBytes, BLOCK);
      assert.deepEqual(fresh.config.compression, { codec: 'zstd', level: 3 });
      assert.notEqual(fresh.config.repositoryId, source.config.repositoryId);
      const restored = await readImage(await openPointDisk(fresh, 'vm', point.pointId, 'd'));
      assert.ok(restored.equals(image), 'the seeded point restores bit-exact');

      // The seeded remote continues incrementally: a delta on top of the copied key.
      image.fill(0x5a, BLOCK * 2, BLOCK * 2 + 100);
      const delta = await writeBackup(fresh, {
        vmId: 'vm',
        disks: [{ diskId: 'd', mode: 'delta', source: deltaSource(image, BLOCK, [2]) }],
      });
      assert.equal(delta.disks[0]?.writtenAs, 'delta');
      assert.equal(delta.disks[0].storedBlockCount, 1);
      const newest = await readImage(await openPointDisk(fresh, 'vm', delta.pointId, 'd'));
      assert.ok(newest.equals(image));

      await assert.rejects(
        copyBackups(app, { from: 'old', to: 'other' }),
        (error: unknown) =>
          error instanceof RepositoryError &&
          error.code === 'REPO_CONFIG_MISMATCH' &&
          /block hash \(sha256 and blake3\)/.test(error.message),
      );
    } finally {
      await app.close();
    }
  } finally {
    await tmp.remove();
  }
});
