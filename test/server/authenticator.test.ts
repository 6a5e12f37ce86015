// Sessions and API tokens over a real (in-memory) job store: a session cookie works until it
// expires (fake clock), logout ends it, wrong passwords and unknown users are refused, API tokens
// are stored as hashes only and found by bearer header, and cookies carry HttpOnly/SameSite.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { JobStore } from '../../src/app/index.ts';
import { ManualClock } from '../../src/core/index.ts';
import {
  Authenticator,
  SESSION_COOKIE,
  createApiToken,
  hashPassword,
  parseCookies,
} from '../../src/server/index.ts';

const request = (headers: Record<string, string>): IncomingMessage =>
  ({ headers }) as unknown as IncomingMessage;

test('sessions: login, expiry, logout; wrong passwords and unknown users refused', async () => {
  const store = JobStore.open(':memory:');
  try {
    store.setUserPasswordHash('admin', await hashPassword('a good password'));
    const clock = new ManualClock(1_000_000);
    const auth = new Authenticator(store, clock, 60_000);
    assert.equal(await auth.login('admin', 'wrong'), undefined);
    assert.equal(await auth.login('nobody', 'a good password'), undefined);
    const token = await auth.login('admin', 'a good password');
    assert.ok(token !== undefined && token.length >= 40);
    const withCookie = request({ cookie: `other=1; ${SESSION_COOKIE}=${token}` });
    assert.equal(auth.authenticate(withCookie), 'admin');
    assert.equal(auth.authenticate(request({ cookie: `${SESSION_COOKIE}=forged` })), undefined);
    const cookie = auth.sessionCookie(token, true);
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Strict/);
    assert.match(cookie, /Secure/);
    assert.doesNotMatch(auth.sessionCookie(token, false), /Secure/);
    clock.advance(60_001);
    assert.equal(auth.authenticate(withCookie), undefined, 'expired');
    const second = await auth.login('admin', 'a good password');
    const again = request({ cookie: `${SESSION_COOKIE}=${second ?? ''}` });
    assert.equal(auth.authenticate(again), 'admin');
    auth.logout(again);
    assert.equal(auth.authenticate(again), undefined, 'logged out');
  } finally {
    store.close();
  }
});

test('API tokens: bearer header, stored hashed, removable by label', async () => {
  const store = JobStore.open(':memory:');
  try {
    const auth = new Authenticator(store, new ManualClock(0));
    const token = createApiToken(store, 'admin', 'ci', 0);
    assert.match(token, /^vmd_[A-Za-z0-9_-]{43}$/);
    assert.equal(auth.authenticate(request({ authorization: `Bearer ${token}` })), 'admin');
    assert.equal(auth.authenticate(request({ authorization: 'Bearer vmd_other' })), undefined);
    assert.equal(store.findApiToken(token), undefined, 'the token itself is not a key');
    assert.equal(store.deleteApiTokens('ci'), 1);
    assert.equal(auth.authenticate(request({ authorization: `Bearer ${token}` })), undefined);
    assert.deepEqual(
      [...parseCookies(' a=1; b = two ;=x; c').entries()],
      [
        ['a', '1'],
        ['b', 'two'],
      ],
    );
  } finally {
    store.close();
  }
});
