// `vmdelta user set-password` reads the password from stdin (or VMDELTA_PASSWORD) and stores only
// a scrypt hash in the job store; short passwords are refused; `vmdelta user token` prints a token
// whose hash, not the token, is stored.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { JobStore } from '../../src/app/index.ts';
import { verifyPassword } from '../../src/server/index.ts';
import { makeTempDir } from '../harness/index.ts';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'vmdelta.js');

test('user set-password from stdin, refused when short; user token stored hashed', async () => {
  const tmp = await makeTempDir('vmd-user-');
  try {
    const dataDir = join(tmp.path, 'data');
    const env: NodeJS.ProcessEnv = { ...process.env, VMDELTA_DATA_DIR: dataDir };
    delete env['VMDELTA_PASSWORD'];
    const short = spawnSync('node', [BIN, 'user', 'set-password', 'admin'], {
      input: 'short\n',
      env,
      encoding: 'utf8',
    });
    assert.notEqual(short.status, 0);
    assert.match(short.stderr, /at least 8 characters/);
    const set = spawnSync('node', [BIN, 'user', 'set-password', 'admin'], {
      input: 'from stdin, long enough\n',
      env,
      encoding: 'utf8',
    });
    assert.equal(set.status, 0, set.stderr);
    const token = spawnSync('node', [BIN, 'user', 'token', 'admin', 'ci'], {
      env,
      encoding: 'utf8',
    });
    assert.equal(token.status, 0, token.stderr);
    const printed = token.stdout.trim();
    assert.match(printed, /^vmd_/);
    const store = JobStore.open(join(dataDir, 'vmdelta.db'));
    try {
      const hash = store.getUserPasswordHash('admin') ?? '';
      assert.match(hash, /^scrypt\$/);
      assert.equal(await verifyPassword('from stdin, long enough', hash), true);
      const sha = createHash('sha256').update(printed).digest('hex');
      assert.equal(store.findApiToken(sha)?.userName, 'admin');
    } finally {
      store.close();
    }
    const db = await readFile(join(dataDir, 'vmdelta.db'));
    assert.ok(!db.includes('from stdin, long enough'), 'the password is not stored');
    assert.ok(!db.includes(printed), 'the token is not stored');
  } finally {
    await tmp.remove();
  }
});
