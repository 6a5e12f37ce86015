import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatRunLogText } from '../../src/cli/render/run-log-text.ts';
import { summarizeStatus, type RunLog } from '../../src/jobs/index.ts';

const MiB = 1024 * 1024;

const log: RunLog = {
  runId: 'r1',
  jobId: 'nightly',
  jobName: 'Nightly',
  scheduleId: 'night',
  trigger: 'schedule',
  forceFull: false,
  startedMs: Date.UTC(2026, 10, 26, 2, 0, 0),
  endedMs: Date.UTC(2026, 10, 26, 2, 0, 5),
  status: 'success',
  warnings: [],
  machines: [
    {
      machineId: 'vm1',
      name: 'web-01',
      status: 'success',
      startedMs: 0,
      endedMs: 5000,
      phases: { snapshotMs: 120, transferMs: 4000, mergeMs: 40 },
      warnings: [],
      retention: [{ remoteId: 'local', merged: 1, removed: 0 }],
      disks: [
        {
          diskId: 'd0',
          name: 'disk0',
          sizeBytes: 4096 * MiB,
          read: 'full',
          transport: { type: 'nbd', connections: 2, tls: true },
          changeTracker: 'qemu-dirty-bitmap',
          bytesRead: 100 * MiB,
          blocksRead: 50,
          blocksChanged: 3,
          durationMs: 1000,
          fallbacks: [],
          remotes: [
            {
              remoteId: 'local',
              kind: 'delta',
              method: 'tracker',
              status: 'success',
              bytesWritten: 6 * MiB,
              blocksWritten: 3,
            },
            {
              remoteId: 's3',
              kind: 'key',
              reason: 'NO_BASE',
              status: 'success',
              bytesWritten: 100 * MiB,
              blocksWritten: 50,
            },
          ],
        },
        {
          diskId: 'd1',
          name: 'disk1',
          sizeBytes: 1024 * MiB,
          read: 'full',
          transport: { type: 'stream', format: 'vhd' },
          changeTracker: 'none',
          bytesRead: 0,
          blocksRead: 0,
          blocksChanged: 0,
          durationMs: 0,
          fallbacks: [{ from: 'nbd', to: 'stream', reason: 'the host has no NBD-enabled network' }],
          remotes: [
            {
              remoteId: 'local',
              kind: 'delta',
              method: 'hash-compare',
              reason: 'NO_CHANGE_TRACKER',
              status: 'failure',
              bytesWritten: 0,
              blocksWritten: 0,
              error: { code: 'STORAGE_IO', message: 'disk full' },
            },
          ],
        },
      ],
    },
  ],
};

test('the text log says NBD was used, why a key was made, and every fallback', () => {
  const text = formatRunLogText(log);
  assert.match(text, /Transfer data using NBD \(2 connections, TLS\)/);
  assert.match(
    text,
    /→ s3: key \(the remote holds no earlier backup of this disk\), 50 blocks, 100 MiB written/,
  );
  assert.match(text, /→ local: delta, 3 blocks, 6 MiB written/);
  assert.match(text, /fallback: nbd → stream: the host has no NBD-enabled network/);
  assert.match(text, /Transfer data using the vhd export stream/);
  assert.match(
    text,
    /delta by block hashes \(no usable change tracker: NO_CHANGE_TRACKER\), FAILED STORAGE_IO disk full/,
  );
  assert.match(text, /retention on local: 1 merged into the key/);
  assert.match(text, /started 2026-11-26 02:00:00 UTC, 5.00 s, schedule/);
});

test('run status summary', () => {
  assert.equal(summarizeStatus([{ status: 'success' }, { status: 'success' }]), 'success');
  assert.equal(summarizeStatus([{ status: 'success' }, { status: 'failure' }]), 'partial');
  assert.equal(summarizeStatus([{ status: 'failure' }]), 'failure');
});
