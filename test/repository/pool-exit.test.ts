// An idle block worker pool must not keep the process alive: a CLI run that forgot (or could not)
// close its repository still exits. Runs a child process that starts the workers and returns.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const child = fileURLToPath(new URL('./fixtures/pool-exit-child.ts', import.meta.url));

test('a process with an idle, unclosed worker pool exits by itself', async () => {
  const run = spawn(process.execPath, ['--import', 'tsx', child], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  run.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => {
      run.kill('SIGKILL');
      resolve(null);
    }, 20_000);
    run.on('exit', (exitCode) => {
      clearTimeout(timer);
      resolve(exitCode);
    });
  });
  assert.equal(out.trim(), 'encoded 32');
  assert.equal(code, 0, 'the process must exit on its own (null: killed after 20 s)');
});
