// `remote add --compression`: the remote's repository is created with that compression when it is
// first used; bad values are usage errors that save nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { EXIT_USAGE } from '../../src/cli/exit-codes.ts';
import { LocalObjectStore } from '../../src/storage/index.ts';
import { Repository } from '../../src/repository/index.ts';
import { makeTempDir } from '../harness/index.ts';
import { cliInDataDir } from './capture-io.ts';

test('remote add --compression sets the new repository compression; bad values are refused', async () => {
  const tmp = await makeTempDir('vmd-cmp-');
  try {
    const dataDir = join(tmp.path, 'data');
    const cli = cliInDataDir(dataDir);
    for (const bad of ['lz4', 'zstd:20', 'zstd:-8', 'zstd:1.5', 'zstd:']) {
      const result = await cli('remote', 'add', 'x', '--path', tmp.path, '--compression', bad);
      assert.equal(result.code, EXIT_USAGE, bad);
      assert.match(result.err, /expected none, zstd or zstd:<level>/, bad);
    }
    assert.equal(
      (JSON.parse((await cli('remote', 'list', '--json')).out) as unknown[]).length,
      0,
      'nothing saved',
    );

    const path = join(tmp.path, 'nas');
    assert.equal(
      (await cli('remote', 'add', 'nas', '--path', path, '--compression', 'zstd:5')).code,
      0,
    );
    const listed = JSON.parse((await cli('remote', 'list', '--json')).out) as {
      compression: unknown;
    }[];
    assert.deepEqual(listed[0]?.compression, { codec: 'zstd', level: 5 });
    // First use creates the repository with it (backup list opens the remote).
    assert.equal((await cli('backup', 'list', '--remote', 'nas')).code, 0);
    const repository = await Repository.open(new LocalObjectStore(path));
    assert.deepEqual(repository.config.compression, { codec: 'zstd', level: 5 });
    assert.equal(repository.config.hash, 'blake3');

    const plain = join(tmp.path, 'plain');
    assert.equal(
      (await cli('remote', 'add', 'plain', '--path', plain, '--compression', 'none')).code,
      0,
    );
    assert.equal((await cli('backup', 'list', '--remote', 'plain')).code, 0);
    const none = await Repository.open(new LocalObjectStore(plain));
    assert.deepEqual(none.config.compression, { codec: 'none' });
  } finally {
    await tmp.remove();
  }
});
