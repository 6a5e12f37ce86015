/**
 * Who is calling: a session cookie (HttpOnly, SameSite=Strict, Secure under HTTPS) given by a
 * user/password login, or an API token sent as `Authorization: Bearer <token>`. Passwords are
 * checked against the scrypt hashes in the job store; API tokens are stored as SHA-256 only;
 * sessions live in memory (a restart logs everyone out) and expire after `sessionTtlMs`.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { JobStore } from '../../app/index.ts';
import type { Clock } from '../../core/index.ts';
import { hashPassword, verifyPassword } from './password-hash.ts';

export const SESSION_COOKIE = 'vmdelta_session';
const TOKEN_PREFIX = 'vmd_';

const sha256Hex = (text: string): string => createHash('sha256').update(text).digest('hex');

/** A verification with a fixed hash, so unknown users take as long as wrong passwords. */
let dummyHash: Promise<string> | undefined;

export function parseCookies(header: string | undefined): Map<string, string> {
  const cookies = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    cookies.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  return cookies;
}

export class Authenticator {
  readonly #store: JobStore;
  readonly #clock: Clock;
  readonly #sessionTtlMs: number;
  readonly #sessions = new Map<string, { user: string; expiresMs: number }>();

  constructor(store: JobStore, clock: Clock, sessionTtlMs = 12 * 3_600_000) {
    this.#store = store;
    this.#clock = clock;
    this.#sessionTtlMs = sessionTtlMs;
  }

  /** A new session token for valid credentials, undefined otherwise. */
  async login(user: string, password: string): Promise<string | undefined> {
    const stored = this.#store.getUserPasswordHash(user);
    if (stored === undefined) {
      dummyHash ??= hashPassword(randomBytes(16).toString('hex'));
      await verifyPassword(password, await dummyHash);
      return undefined;
    }
    if (!(await verifyPassword(password, stored))) return undefined;
    const token = randomBytes(32).toString('base64url');
    this.#sessions.set(sha256Hex(token), {
      user,
      expiresMs: this.#clock.nowMs() + this.#sessionTtlMs,
    });
    return token;
  }

  logout(req: IncomingMessage): void {
    const token = parseCookies(req.headers.cookie).get(SESSION_COOKIE);
    if (token !== undefined) this.#sessions.delete(sha256Hex(token));
  }

  /** The user behind the request's session cookie or bearer token, if any. */
  authenticate(req: IncomingMessage): string | undefined {
    const authorization = req.headers.authorization;
    if (authorization?.startsWith('Bearer ') === true) {
      const token = authorization.slice('Bearer '.length).trim();
      return this.#store.findApiToken(sha256Hex(token))?.userName;
    }
    const session = parseCookies(req.headers.cookie).get(SESSION_COOKIE);
    if (session === undefined) return undefined;
    const key = sha256Hex(session);
    const entry = this.#sessions.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresMs <= this.#clock.nowMs()) {
      this.#sessions.delete(key);
      return undefined;
    }
    return entry.user;
  }

  sessionCookie(token: string, secure: boolean): string {
    const maxAgeS = Math.floor(this.#sessionTtlMs / 1000);
    return `${SESSION_COOKIE}=${token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeS}${secure ? '; Secure' : ''}`;
  }

  static clearedCookie(): string {
    return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`;
  }
}

/** Creates an API token for `userName`; the token is shown once, only its hash is stored. */
export function createApiToken(
  store: JobStore,
  userName: string,
  label: string,
  nowMs: number,
): string {
  const token = `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
  store.addApiToken({ tokenSha256: sha256Hex(token), label, userName, createdMs: nowMs });
  return token;
}
