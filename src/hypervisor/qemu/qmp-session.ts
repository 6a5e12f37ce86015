/**
 * A QMP session that (re)connects on demand: a lost connection fails the commands in flight with
 * QMP_DISCONNECTED (retryable; commands are not replayed, as most are not idempotent), and the
 * next call connects again, retrying refused connections with a growing delay.
 */
import { systemClock, type Clock } from '../../core/index.ts';
import { QmpError } from './errors.ts';
import {
  QmpClient,
  type QmpAddress,
  type QmpCallOptions,
  type QmpConnectOptions,
} from './qmp-client.ts';

export interface QmpSessionOptions extends QmpConnectOptions {
  /** Connection attempts per call before giving up (default 3). */
  readonly connectAttempts?: number;
  readonly retryDelayMs?: number;
  readonly clock?: Clock;
}

export class QmpSession {
  readonly address: QmpAddress;
  readonly #options: QmpSessionOptions;
  #client: QmpClient | undefined;
  #connecting: Promise<QmpClient> | undefined;
  /** Number of successful connections so far (1 after the first, 2 after one reconnect...). */
  connections = 0;

  constructor(address: QmpAddress, options: QmpSessionOptions = {}) {
    this.address = address;
    this.#options = options;
  }

  /** A connected client (connects or reconnects when needed). */
  async client(): Promise<QmpClient> {
    if (this.#client !== undefined && !this.#client.closed) return this.#client;
    this.#connecting ??= this.#connect().finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  async execute(
    command: string,
    args?: Readonly<Record<string, unknown>>,
    options?: QmpCallOptions,
  ): Promise<unknown> {
    const client = await this.client();
    return client.execute(command, args, options);
  }

  async close(): Promise<void> {
    const client = this.#client;
    this.#client = undefined;
    await client?.close();
  }

  async #connect(): Promise<QmpClient> {
    const attempts = Math.max(1, this.#options.connectAttempts ?? 3);
    const clock = this.#options.clock ?? systemClock;
    let lastError: unknown;
    for (let attempt = 1; attempt <= attempts; attempt += 1) {
      try {
        const client = await QmpClient.connect(this.address, this.#options);
        this.#client = client;
        this.connections += 1;
        return client;
      } catch (error) {
        lastError = error;
        const retryable = error instanceof QmpError && error.retryable;
        if (!retryable || attempt === attempts) break;
        await clock.sleep((this.#options.retryDelayMs ?? 200) * attempt, this.#options.signal);
      }
    }
    throw lastError;
  }
}
