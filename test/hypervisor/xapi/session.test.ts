import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  XapiError,
  callAsync,
  openXapiSession,
  type XapiSession,
} from '../../../src/hypervisor/xapi/index.ts';
import { leakedSecrets, startSim } from './sim-fixture.ts';

test('login with password, calls, logout (HTTP)', async () => {
  const fx = await startSim();
  try {
    const session = await fx.connect();
    assert.equal(fx.sim.sessionCount, 1);
    const pools = (await session.call('pool.get_all')) as string[];
    assert.equal(pools.length, 1);
    await session.close();
    assert.equal(fx.sim.sessionCount, 0, 'logout destroyed the session');
    await session.close();
    assert.throws(() => session.revealSessionRef(), XapiError);
  } finally {
    await fx.close();
  }
});

test('a wrong password is XAPI_AUTH_FAILED and does not leak the password', async () => {
  const fx = await startSim();
  try {
    const error = await fx.connect({ password: 'not-the-password-123' }).catch((e: unknown) => e);
    assert.ok(error instanceof XapiError);
    assert.equal(error.code, 'XAPI_AUTH_FAILED');
    assert.equal(error.xapiCode, 'SESSION_AUTHENTICATION_FAILED');
    assert.deepEqual(
      leakedSecrets([error.message, JSON.stringify(error.details)], ['not-the-password-123']),
      [],
    );
  } finally {
    await fx.close();
  }
});

test('HOST_IS_SLAVE: login on a pool member reconnects to the master', async () => {
  const fx = await startSim();
  try {
    const session = await fx.connect({ url: fx.sim.memberUrl });
    assert.equal(session.masterOrigin.hostname, '127.0.0.1');
    assert.ok(Array.isArray(await session.call('VM.get_all')));
    assert.ok(fx.logger.records.some((r) => r.message.includes('reconnecting to the master')));
  } finally {
    await fx.close();
  }
});

test('SESSION_INVALID: one re-login and the call is retried', async () => {
  const fx = await startSim();
  try {
    const session = await fx.connect();
    const before = session.revealSessionRef();
    fx.sim.expireSessions();
    const hosts = (await session.call('host.get_all')) as string[];
    assert.equal(hosts.length, 2);
    assert.notEqual(session.revealSessionRef(), before, 'a new session was opened');
    // Concurrent calls after an expiry share one re-login.
    fx.sim.expireSessions();
    await Promise.all([
      session.call('host.get_all'),
      session.call('SR.get_all'),
      session.call('VM.get_all'),
    ]);
    assert.equal(fx.sim.sessionCount, 1);
  } finally {
    await fx.close();
  }
});

test('session expiry by idle time gives SESSION_INVALID, handled', async () => {
  const fx = await startSim();
  try {
    const session = await fx.connect();
    fx.sim.faults.sessionTtlMs = 30;
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.equal(((await session.call('SR.get_all')) as string[]).length, 2);
    assert.ok(fx.logger.records.some((r) => r.message.includes('expired')));
  } finally {
    await fx.close();
  }
});

async function expectXapiError(promise: Promise<unknown>): Promise<XapiError> {
  const error = await promise.catch((e: unknown) => e);
  assert.ok(error instanceof XapiError, `expected an XapiError, got ${String(error)}`);
  return error;
}

for (const errorStyle of ['2.0', '1.0'] as const) {
  test(`XAPI errors are typed with code and params (JSON-RPC ${errorStyle} form)`, async () => {
    const fx = await startSim();
    try {
      fx.sim.faults.errorStyle = errorStyle;
      const session = await fx.connect();
      const invalid = await expectXapiError(session.call('VM.get_record', ['OpaqueRef:nope']));
      assert.equal(invalid.code, 'XAPI_CALL_FAILED');
      assert.equal(invalid.xapiCode, 'HANDLE_INVALID');
      assert.deepEqual(invalid.xapiParams, ['VM', 'OpaqueRef:nope']);
      const unknown = await expectXapiError(session.call('VM.fly', []));
      assert.equal(unknown.xapiCode, 'MESSAGE_METHOD_UNKNOWN');
      const uuid = await expectXapiError(session.call('VDI.get_by_uuid', ['0000']));
      assert.equal(uuid.xapiCode, 'UUID_INVALID');
    } finally {
      await fx.close();
    }
  });
}

test('SESSION_INVALID after the re-login is reported, without the session reference', async () => {
  const fx = await startSim();
  try {
    const session = await fx.connect();
    fx.sim.faults.sessionTtlMs = -1; // every session is already stale when used
    const error = await expectXapiError(session.call('host.get_all'));
    assert.equal(error.xapiCode, 'SESSION_INVALID');
    assert.deepEqual(error.xapiParams, ['<redacted>']);
    assert.deepEqual(leakedSecrets([error.message], [session.revealSessionRef()]), []);
  } finally {
    await fx.close();
  }
});

test('Async calls: task polled, result parsed from XML-RPC, task destroyed; failures typed', async () => {
  const fx = await startSim();
  try {
    const vm = await fx.sim.addVm({
      nameLabel: 'web',
      disks: [{ nameLabel: 'root', sizeBytes: 1 << 20 }],
    });
    const session = await fx.connect();
    const snapshotRef = await callAsync(session, 'VM.snapshot', [vm.vmRef, 'snap']);
    assert.ok(typeof snapshotRef === 'string' && snapshotRef.startsWith('OpaqueRef:'));
    assert.equal(await session.call('VM.get_is_a_snapshot', [snapshotRef]), true);
    assert.deepEqual(await session.call('task.get_all'), [], 'the task was destroyed');
    const failure = await expectXapiError(callAsync(session, 'VM.destroy', [vm.vmRef]));
    assert.equal(failure.code, 'XAPI_TASK_FAILED');
    assert.equal(failure.xapiCode, 'VM_BAD_POWER_STATE');
    assert.deepEqual(await session.call('task.get_all'), []);
    const cancelled = new AbortController();
    cancelled.abort();
    await assert.rejects(
      callAsync(session, 'VM.snapshot', [vm.vmRef, 'x'], { signal: cancelled.signal }),
      {
        code: 'CANCELLED',
      },
    );
  } finally {
    await fx.close();
  }
});

test('Async calls watched with event.from: no status polling, same results and typed failures', async () => {
  const fx = await startSim();
  try {
    fx.sim.faults.asyncDelayMs = 150;
    const vm = await fx.sim.addVm({
      nameLabel: 'web',
      disks: [{ nameLabel: 'root', sizeBytes: 1 << 20 }],
    });
    const session = await fx.connect();
    const snapshotRef = await callAsync(session, 'VM.snapshot', [vm.vmRef, 'snap'], {
      watch: 'events',
      eventTimeoutSeconds: 0.05,
    });
    assert.ok(typeof snapshotRef === 'string' && snapshotRef.startsWith('OpaqueRef:'));
    await assert.rejects(callAsync(session, 'VM.destroy', [vm.vmRef], { watch: 'events' }), {
      code: 'XAPI_TASK_FAILED',
      xapiCode: 'VM_BAD_POWER_STATE',
    });
    const methods = fx.logger.records.map((r) => r.fields['method']);
    assert.ok(
      methods.filter((m) => m === 'event.from').length >= 3,
      'event.from blocked then returned',
    );
    assert.equal(methods.includes('task.get_status'), false, 'no polling');
    assert.deepEqual(await session.call('task.get_all'), []);
  } finally {
    await fx.close();
  }
});

test('MESSAGE_PARAMETER_COUNT_MISMATCH: the newer parameter is dropped and the call retried', async () => {
  const fx = await startSim();
  try {
    fx.sim.faults.noIgnoreVdis = true;
    const session: XapiSession = await fx.connect();
    const direct = await expectXapiError(session.call('VM.get_record', ['a', 'b']));
    assert.equal(direct.xapiCode, 'MESSAGE_PARAMETER_COUNT_MISMATCH');
    const hosts = await session.callWithOptional('host.get_all', [], ['newer']);
    assert.equal((hosts as string[]).length, 2);
    assert.ok(fx.logger.records.some((r) => r.message.includes('newer parameter')));
  } finally {
    await fx.close();
  }
});

test('HTTPS: the pinned certificate is accepted, a wrong pin is refused before any login', async () => {
  const fx = await startSim({ tls: true });
  try {
    const session = await fx.connect();
    assert.equal(((await session.call('host.get_all')) as string[]).length, 2);
    await session.close();
    const wrongPin = 'AB:'.repeat(31) + 'AB';
    const error = await expectXapiError(
      openXapiSession({
        url: fx.sim.url,
        username: fx.sim.credentials.username,
        password: fx.sim.credentials.password,
        trust: { kind: 'pinned', sha256Fingerprints: [wrongPin] },
      }),
    );
    assert.equal(error.code, 'XAPI_TLS_PIN_MISMATCH');
    assert.equal(fx.sim.sessionCount, 0, 'no login reached the server');
  } finally {
    await fx.close();
  }
});

test('HTTPS: CA-verified trust accepts the harness CA and refuses without it; PEM pinning', async () => {
  const fx = await startSim({ tls: true });
  try {
    const { readFile } = await import('node:fs/promises');
    const caPem = await readFile(fx.pki?.caCertFile ?? '', 'utf8');
    const session = await fx.connect({ trust: { kind: 'ca', caPem } });
    assert.equal(((await session.call('SR.get_all')) as string[]).length, 2);
    const serverPem = await readFile(fx.pki?.serverCertFile ?? '', 'utf8');
    const byPem = await fx.connect({ trust: { kind: 'pinned', certificatePems: [serverPem] } });
    assert.equal(((await byPem.call('SR.get_all')) as string[]).length, 2, 'PEM pinning works');
    const wrongPem = await expectXapiError(
      fx.connect({ trust: { kind: 'pinned', certificatePems: [caPem] } }),
    );
    assert.equal(wrongPem.code, 'XAPI_TLS_PIN_MISMATCH', 'the CA is not the host certificate');
    const error = await expectXapiError(fx.connect({ trust: { kind: 'ca' } }));
    assert.equal(error.code, 'XAPI_TRANSPORT');
    assert.equal(error.retryable, true);
  } finally {
    await fx.close();
  }
});

test('HTTPS pinned: HOST_IS_SLAVE to another host under the same pin set', async () => {
  const fx = await startSim({ tls: true });
  try {
    const session = await fx.connect({ url: fx.sim.memberUrl });
    assert.equal(session.masterOrigin.hostname, '127.0.0.1');
  } finally {
    await fx.close();
  }
});

test('neither the password nor the session reference reaches the logs', async () => {
  const fx = await startSim();
  try {
    const session = await fx.connect();
    const ref = session.revealSessionRef();
    fx.sim.expireSessions();
    await session.call('VM.get_all');
    await session.call('VM.get_record', ['OpaqueRef:bad']).catch(() => undefined);
    const texts = fx.logger.records.map((r) => `${r.message} ${JSON.stringify(r.fields)}`);
    texts.push(JSON.stringify(session), String(session));
    assert.deepEqual(
      leakedSecrets(texts, [fx.sim.credentials.password, ref, session.revealSessionRef()]),
      [],
    );
    assert.ok(texts.length > 3);
  } finally {
    await fx.close();
  }
});

test('an unreachable host is a retryable XAPI_TRANSPORT error', async () => {
  const { freePort } = await import('../../harness/index.ts');
  const port = await freePort();
  const error = await expectXapiError(
    openXapiSession({ url: `http://127.0.0.1:${port}`, username: 'root', password: 'secret-pass' }),
  );
  assert.equal(error.code, 'XAPI_TRANSPORT');
  assert.equal(error.retryable, true);
  assert.equal(error.message.includes('secret-pass'), false);
});
