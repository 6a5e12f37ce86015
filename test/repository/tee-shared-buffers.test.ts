// Two repositories written from one disk read (a DiskTee, as a job with two remotes does), with
// block worker pools: the views share block buffers, so no writer may transfer (detach) a block
// buffer it does not own; both remotes must restore bit-exact, on every store.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomFillSync } from 'node:crypto';
import { DiskTee } from '../../src/disk/index.ts';
import { openPointDisk, Repository, writeBackup } from '../../src/repository/index.ts';
import { fullSource, readImage, storeFactories } from './helpers.ts';

for (const factory of storeFactories) {
  test(`a tee into two pooled repositories restores bit-exact on both (${factory.name})`, async () => {
    const blockSizeBytes = 64 * 1024;
    const image = Buffer.alloc(32 * blockSizeBytes);
    for (let index = 0; index < 32; index += 3) {
      randomFillSync(image, index * blockSizeBytes, blockSizeBytes);
    }
    // Compressible blocks too, so both codecs cross the worker slots.
    image.fill(0x41, 4 * blockSizeBytes, 6 * blockSizeBytes);
    const stores = await Promise.all([0, 1].map(() => factory.create()));
    const repositories = await Promise.all(
      stores.map(({ store }) => Repository.init(store, { blockSizeBytes, blockWorkers: 1 })),
    );
    try {
      const tee = new DiskTee(fullSource(image, blockSizeBytes), 2);
      await Promise.all(
        repositories.map((repository, i) =>
          writeBackup(repository, {
            vmId: 'vm',
            disks: [{ diskId: 'd', mode: 'key', source: tee.views[i] ?? assert.fail('no view') }],
          }),
        ),
      );
      for (const repository of repositories) {
        const [point] = await repository.listPoints('vm');
        assert.ok(point !== undefined);
        const disk = await openPointDisk(repository, 'vm', point.pointId, 'd');
        assert.ok((await readImage(disk)).equals(image), 'restored image differs');
      }
    } finally {
      await Promise.all(repositories.map((repository) => repository.close()));
      await Promise.all(stores.map(({ cleanup }) => cleanup()));
    }
  });
}
