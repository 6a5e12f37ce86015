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

test('closing a pool with work in flight fails that work instead of leaving it unanswered', async () => {
  const { Repository } = await import('../../src/repository/index.ts');
  const { MemoryObjectStore } = await import('../../src/storage/index.ts');
  const repository = await Repository.init(new MemoryObjectStore(), { blockWorkers: 1 });
  const pool = repository.blockPool;
  assert.ok(pool !== undefined);
  await pool.encode(Buffer.alloc(1024, 1)); // the worker is up
  const inFlight = Array.from({ length: 40 }, (_, i) =>
    pool.encode(Buffer.alloc(2 * 1024 * 1024, i + 1)),
  );
  const settling = Promise.allSettled(inFlight); // observed before close rejects them
  await repository.close();
  const settled = await Promise.race([
    settling,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error('work in flight was never answered')), 10_000).unref(),
    ),
  ]);
  assert.ok(
    settled.some((result) => result.status === 'rejected'),
    'some work was cut short',
  );
  for (const result of settled) {
    if (result.status === 'rejected') {
      assert.match(String(result.reason), /block (pool closed|worker failed)/);
    }
  }
  await assert.rejects(pool.encode(Buffer.alloc(16)), /block pool closed/);
});
