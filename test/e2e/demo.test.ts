// The README's demo scenario with assertions: real qemu-storage-daemon, real NBD exports read by
// vmdelta's NBD client, local-folder remotes, retention merges, restores proven bit-exact, and a
// remote seeded by copy that continues with deltas.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { Writable } from 'node:stream';
import { MiB } from '../../src/core/index.ts';
import { runDemo } from '../../src/cli/demo/run-demo.ts';
import { requireTool } from '../harness/index.ts';

test('demo: key then deltas over NBD, merges, bit-exact restores, seeded remote continues with a delta', async () => {
  requireTool('qemu-storage-daemon');
  requireTool('qemu-img');
  let printed = '';
  const stdout = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      printed += chunk.toString();
      callback();
    },
  });
  const result = await runDemo(
    { stdout, stderr: stdout, env: {} },
    { keep: false, diskSizesBytes: [40 * MiB, 24 * MiB] },
  );
  const kinds = result.runs.map((run) =>
    run.machines[0]?.disks
      .map((d) => `${d.read}:${d.remotes.map((r) => r.kind).join(',')}`)
      .join(' '),
  );
  assert.deepEqual(kinds.slice(0, 5), [
    'full:key full:key',
    'delta:delta delta:delta',
    'delta:delta delta:delta',
    'delta:delta delta:delta',
    'delta:delta delta:delta',
  ]);
  for (const run of result.runs) {
    for (const disk of run.machines[0]?.disks ?? []) {
      assert.deepEqual(disk.transport, { type: 'nbd', connections: 2, tls: false });
      assert.equal(disk.changeTracker, 'qemu-dirty-bitmap');
    }
  }
  assert.equal(result.pointsOnFirstRemote, 3, 'retention 3: two deltas were merged away');
  assert.ok(
    result.runs.slice(3).every((run) => (run.machines[0]?.retention[0]?.removed ?? 0) >= 1),
  );
  const seeded = result.seededRun.machines[0]?.disks ?? [];
  assert.deepEqual(
    seeded.map((d) => d.remotes.map((r) => `${r.remoteId}:${r.kind}`).join()),
    ['seeded:delta', 'seeded:delta'],
  );
  assert.equal(result.restores.length, 8, 'three kept points and the seeded one, two disks each');
  for (const restore of result.restores)
    assert.equal(
      restore.restoredSha256,
      restore.expectedSha256,
      `${restore.remoteId} ${restore.pointId} ${restore.diskId}`,
    );
  assert.match(printed, /Transfer data using NBD \(2 connections\)/);
  assert.match(printed, /Every restore is bit-exact/);
  assert.equal(existsSync(result.dir), false, 'the demo cleans up');
});
