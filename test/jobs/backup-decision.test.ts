import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decideDiskBackup, type RemoteDiskState } from '../../src/jobs/index.ts';

const GiB = 1024 ** 3;
const source = { sizeBytes: 4 * GiB, deltaBase: 'bm-3' };
const onRemote = (
  remoteId: string,
  chainBackupCount: number,
  sourceReference = 'bm-3',
): RemoteDiskState => ({
  remoteId,
  last: { sourceReference, sizeBytes: 4 * GiB, chainBackupCount },
});

test('a remote without a base gets a key without forcing keys on the others', () => {
  const decision = decideDiskBackup({
    fullInterval: 20,
    forceFull: false,
    source,
    remotes: [onRemote('a', 3), { remoteId: 'b' }],
  });
  assert.deepEqual(decision.remotes, [
    { remoteId: 'a', kind: 'delta', method: 'tracker' },
    { remoteId: 'b', kind: 'key', reason: 'NO_BASE' },
  ]);
  assert.equal(decision.read, 'full', 'the full disk is read once for remote b');
});

test('fullInterval N gives one key then N-1 deltas', () => {
  const kinds: string[] = [];
  let chainBackupCount = 0;
  for (let run = 0; run < 7; run += 1) {
    const remote: RemoteDiskState =
      chainBackupCount === 0 ? { remoteId: 'r' } : onRemote('r', chainBackupCount);
    const decision = decideDiskBackup({
      fullInterval: 3,
      forceFull: false,
      source,
      remotes: [remote],
    });
    const kind = decision.remotes[0]?.kind ?? 'none';
    kinds.push(kind);
    chainBackupCount = kind === 'key' ? 1 : chainBackupCount + 1;
  }
  assert.deepEqual(kinds, ['key', 'delta', 'delta', 'key', 'delta', 'delta', 'key']);
});

test('reasons: forced, size change, interval, tracker mismatch, no tracker', () => {
  const decide = (over: Partial<Parameters<typeof decideDiskBackup>[0]>) =>
    decideDiskBackup({
      fullInterval: 0,
      forceFull: false,
      source,
      remotes: [onRemote('r', 5)],
      ...over,
    }).remotes[0];
  assert.deepEqual(decide({ forceFull: true }), { remoteId: 'r', kind: 'key', reason: 'FORCED' });
  assert.deepEqual(decide({ source: { ...source, sizeBytes: 8 * GiB } }), {
    remoteId: 'r',
    kind: 'key',
    reason: 'SIZE_CHANGED',
  });
  assert.deepEqual(decide({ fullInterval: 5 }), {
    remoteId: 'r',
    kind: 'key',
    reason: 'KEY_INTERVAL',
  });
  assert.deepEqual(decide({ remotes: [onRemote('r', 2, 'bm-2')] }), {
    remoteId: 'r',
    kind: 'delta',
    method: 'hash-compare',
    reason: 'TRACKER_BASE_MISMATCH',
  });
  assert.deepEqual(
    decide({
      source: { sizeBytes: 4 * GiB, deltaBase: undefined, noDeltaReason: 'BITMAP_MISSING' },
    }),
    {
      remoteId: 'r',
      kind: 'delta',
      method: 'hash-compare',
      reason: 'BITMAP_MISSING',
    },
  );
});

test('the run reads only deltas exactly when every remote takes a tracked delta', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          has: fc.boolean(),
          count: fc.integer({ min: 1, max: 30 }),
          ref: fc.constantFrom('bm-3', 'bm-2'),
        }),
        { minLength: 1, maxLength: 4 },
      ),
      fc.integer({ min: 0, max: 25 }),
      fc.boolean(),
      (remotes, fullInterval, forceFull) => {
        const states = remotes.map((r, i): RemoteDiskState =>
          r.has ? onRemote(`r${i}`, r.count, r.ref) : { remoteId: `r${i}` },
        );
        const decision = decideDiskBackup({ fullInterval, forceFull, source, remotes: states });
        const tracked = decision.remotes.every((r) => r.kind === 'delta' && r.method === 'tracker');
        assert.equal(decision.read, tracked ? 'delta' : 'full');
        if (forceFull) assert.ok(decision.remotes.every((r) => r.kind === 'key'));
        for (const [i, r] of decision.remotes.entries()) {
          const state = states[i];
          if (state?.last === undefined) assert.equal(r.kind, 'key');
          if (
            fullInterval > 0 &&
            state?.last !== undefined &&
            state.last.chainBackupCount >= fullInterval
          )
            assert.equal(r.kind, 'key');
        }
      },
    ),
  );
});
