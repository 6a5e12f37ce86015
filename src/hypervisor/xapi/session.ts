/**
 * An XAPI session over JSON-RPC (xapi.md §1): login_with_password with originator "vmdelta",
 * HOST_IS_SLAVE followed to the master, SESSION_INVALID answered by one re-login and a retry,
 * errors mapped to XapiError with XAPI's code and parameters, logout on close. The password and
 * the session reference never appear in messages or logs.
 */
import { inspect } from 'node:util';
import { systemClock, type Clock, type Logger, silentLogger } from '../../core/index.ts';
import {
  API_VERSION,
  JSONRPC_PATH,
  MAX_LOGIN_REDIRECTS,
  ORIGINATOR,
  XapiCodes,
} from './constants.ts';
import { XapiError } from './errors.ts';
import {
  closeXapiEndpoint,
  openXapiEndpoint,
  originOnHost,
  readXapiBody,
  sendXapiRequest,
  type XapiEndpoint,
} from './http-client.ts';
import { formatJsonRpcRequest, parseJsonRpcResponse } from './json-rpc.ts';
import type { XapiTlsTrust } from './tls-trust.ts';

export interface XapiSessionOptions {
  /** https://host[:port] (or http:// for tests); the pool master or any pool member. */
  readonly url: string;
  readonly username: string;
  readonly password: string;
  /** Certificate trust for https (default: CA-verified against the system store). */
  readonly trust?: XapiTlsTrust;
  /** Per-call time limit (default 5 min; event.from and big get_all_records can be slow). */
  readonly callTimeoutMs?: number;
  /** Largest JSON-RPC reply accepted (default 512 MiB). */
  readonly maxReplyBytes?: number;
  readonly logger?: Logger;
  readonly clock?: Clock;
}

/** XAPI codes worth retrying later by whoever knows the operation (marked `retryable`). */
const RETRYABLE_CODES = new Set([
  'VDI_IN_USE',
  'OTHER_OPERATION_IN_PROGRESS',
  'TOO_BUSY',
  'HOST_STILL_BOOTING',
  'HOST_OFFLINE',
]);

let requestCounter = 0;

/** Replaces every secret occurring in `text` by a placeholder. */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  let result = text;
  for (const secret of secrets) {
    if (secret.length >= 4) result = result.split(secret).join('<redacted>');
  }
  return result;
}

export class XapiSession {
  readonly #options: XapiSessionOptions;
  readonly #trust: XapiTlsTrust | undefined;
  readonly #endpoints = new Map<string, XapiEndpoint>();
  readonly #logger: Logger;
  readonly clock: Clock;
  #master: XapiEndpoint;
  #sessionRef: string | undefined;
  #login: Promise<void> | undefined;
  #closed = false;

  private constructor(options: XapiSessionOptions) {
    this.#options = options;
    this.#trust = options.trust;
    this.#logger = options.logger ?? silentLogger;
    this.clock = options.clock ?? systemClock;
    this.#master = this.endpointFor(new URL(options.url));
  }

  /** Logs in (following HOST_IS_SLAVE) and returns the open session. */
  static async open(options: XapiSessionOptions): Promise<XapiSession> {
    const session = new XapiSession(options);
    try {
      await session.#relogin(undefined);
    } catch (error) {
      session.#closeEndpoints();
      throw error;
    }
    return session;
  }

  /** Origin of the pool master the session is logged in to. */
  get masterOrigin(): URL {
    return new URL(this.#master.origin.href);
  }

  get callTimeoutMs(): number {
    return this.#options.callTimeoutMs ?? 300_000;
  }

  get logger(): Logger {
    return this.#logger;
  }

  /** The keep-alive endpoint for a host's origin (shared by RPC and HTTP handlers). */
  endpointFor(origin: URL): XapiEndpoint {
    const key = origin.origin;
    let endpoint = this.#endpoints.get(key);
    if (endpoint === undefined) {
      endpoint = openXapiEndpoint(origin, this.#trust);
      this.#endpoints.set(key, endpoint);
    }
    return endpoint;
  }

  /** The master's endpoint. */
  get masterEndpoint(): XapiEndpoint {
    return this.#master;
  }

  /** The same scheme, port and trust on another pool host. */
  endpointOnHost(hostname: string): XapiEndpoint {
    return this.endpointFor(originOnHost(this.#master.origin, hostname));
  }

  /**
   * The session reference, for the HTTP handlers' `session_id`. It is a secret: never log it.
   */
  revealSessionRef(): string {
    if (this.#sessionRef === undefined || this.#closed) {
      throw new XapiError('XAPI_PROTOCOL', 'the XAPI session is closed');
    }
    return this.#sessionRef;
  }

  /** Secrets to strip from any text that may reach a message or a log. */
  get secrets(): readonly string[] {
    return [this.#options.password, ...(this.#sessionRef === undefined ? [] : [this.#sessionRef])];
  }

  [inspect.custom](): string {
    return `XapiSession(${this.#master.origin.host})`;
  }

  toString(): string {
    return `XapiSession(${this.#master.origin.host})`;
  }

  toJSON(): { readonly host: string } {
    return { host: this.#master.origin.host };
  }

  /** Calls `method(session, ...params)`; one re-login and retry on SESSION_INVALID. */
  async call(method: string, params: readonly unknown[] = []): Promise<unknown> {
    const usedRef = this.revealSessionRef();
    try {
      return await this.#rpc(this.#master, method, [usedRef, ...params]);
    } catch (error) {
      if (!(error instanceof XapiError) || error.xapiCode !== XapiCodes.SESSION_INVALID)
        throw error;
      this.#logger.log('info', 'XAPI session expired, logging in again', { method });
      await this.#relogin(usedRef);
      return this.#rpc(this.#master, method, [this.revealSessionRef(), ...params]);
    }
  }

  /**
   * Calls `method` with `optional` appended; if XAPI is too old for them
   * (MESSAGE_PARAMETER_COUNT_MISMATCH), calls again without (xapi.md §1).
   */
  async callWithOptional(
    method: string,
    params: readonly unknown[],
    optional: readonly unknown[],
  ): Promise<unknown> {
    if (optional.length === 0) return this.call(method, params);
    try {
      return await this.call(method, [...params, ...optional]);
    } catch (error) {
      if (
        !(error instanceof XapiError) ||
        error.xapiCode !== XapiCodes.MESSAGE_PARAMETER_COUNT_MISMATCH
      )
        throw error;
      this.#logger.log('warn', 'XAPI does not know a newer parameter; calling without it', {
        method,
      });
      return this.call(method, params);
    }
  }

  /** Logs out (errors ignored) and closes every connection. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    const ref = this.#sessionRef;
    this.#closed = true;
    try {
      if (ref !== undefined) await this.#rpc(this.#master, 'session.logout', [ref]);
    } catch (error) {
      this.#logger.log('warn', 'XAPI logout failed', { code: (error as XapiError).code });
    } finally {
      this.#closeEndpoints();
    }
  }

  #closeEndpoints(): void {
    for (const endpoint of this.#endpoints.values()) closeXapiEndpoint(endpoint);
    this.#endpoints.clear();
  }

  /** Logs in again unless another caller already replaced `staleRef`. */
  async #relogin(staleRef: string | undefined): Promise<void> {
    if (this.#sessionRef !== staleRef) return;
    this.#login ??= this.#loginFollowingMaster().finally(() => {
      this.#login = undefined;
    });
    await this.#login;
  }

  async #loginFollowingMaster(): Promise<void> {
    const { username, password } = this.#options;
    for (let attempt = 0; attempt <= MAX_LOGIN_REDIRECTS; attempt += 1) {
      try {
        const ref = await this.#rpc(this.#master, 'session.login_with_password', [
          username,
          password,
          API_VERSION,
          ORIGINATOR,
        ]);
        if (typeof ref !== 'string' || !ref.startsWith('OpaqueRef:')) {
          throw new XapiError('XAPI_PROTOCOL', 'login did not return a session reference');
        }
        this.#sessionRef = ref;
        this.#logger.log('info', 'logged in to XAPI', { host: this.#master.origin.host });
        return;
      } catch (error) {
        if (error instanceof XapiError && error.xapiCode === XapiCodes.HOST_IS_SLAVE) {
          const masterAddress = error.xapiParams[0];
          if (masterAddress === undefined || masterAddress === '') throw error;
          this.#logger.log('info', 'XAPI host is a pool member, reconnecting to the master', {
            from: this.#master.origin.host,
            master: masterAddress,
          });
          this.#master = this.endpointOnHost(masterAddress);
          continue;
        }
        if (
          error instanceof XapiError &&
          error.xapiCode === XapiCodes.SESSION_AUTHENTICATION_FAILED
        ) {
          throw new XapiError('XAPI_AUTH_FAILED', `XAPI refused the credentials of ${username}`, {
            cause: error,
            xapiCode: error.xapiCode,
            details: { host: this.#master.origin.host, username },
          });
        }
        throw error;
      }
    }
    throw new XapiError(
      'XAPI_TOO_MANY_REDIRECTS',
      `still redirected by HOST_IS_SLAVE after ${MAX_LOGIN_REDIRECTS} tries`,
    );
  }

  /** One JSON-RPC round trip; XAPI error replies become XapiError with secrets redacted. */
  async #rpc(endpoint: XapiEndpoint, method: string, params: readonly unknown[]): Promise<unknown> {
    requestCounter += 1;
    const id = requestCounter;
    const startMs = this.clock.nowMs();
    const response = await sendXapiRequest(endpoint, {
      method: 'POST',
      path: JSONRPC_PATH,
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: Buffer.from(formatJsonRpcRequest(method, params, id)),
      timeoutMs: this.callTimeoutMs,
    });
    const body = await readXapiBody(response, this.#options.maxReplyBytes ?? 512 * 1024 * 1024);
    if (response.statusCode !== 200) {
      throw new XapiError(
        'XAPI_PROTOCOL',
        `${method}: XAPI answered HTTP ${response.statusCode ?? 0}`,
        { details: { method, statusCode: response.statusCode } },
      );
    }
    const outcome = parseJsonRpcResponse(body.toString('utf8'), id);
    this.#logger.log('debug', 'XAPI call', {
      method,
      ok: outcome.ok,
      durationMs: this.clock.nowMs() - startMs,
    });
    if (outcome.ok) return outcome.result;
    const xapiParams = outcome.xapiParams.map((param) => redactSecrets(param, this.secrets));
    throw new XapiError(
      'XAPI_CALL_FAILED',
      `${method} failed: ${[outcome.xapiCode, ...xapiParams].join(' ')}`,
      {
        xapiCode: outcome.xapiCode,
        xapiParams,
        retryable: RETRYABLE_CODES.has(outcome.xapiCode),
        details: { method },
      },
    );
  }
}

export function openXapiSession(options: XapiSessionOptions): Promise<XapiSession> {
  return XapiSession.open(options);
}
