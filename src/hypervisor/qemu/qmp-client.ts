/**
 * A QMP client (QEMU Machine Protocol: one JSON object per line each way). On connect it checks
 * the greeting and negotiates capabilities; each command carries an `id` and its reply is matched
 * by that id; asynchronous events are kept in a bounded ring so a caller can wait for an event that
 * arrived just before it started waiting (take a cursor before the command, wait after it).
 * Failures are typed QmpErrors: refused commands carry the QMP error class and text.
 */
import type { Socket } from 'node:net';
import { CoreError, silentLogger, type Logger } from '../../core/index.ts';
import { QmpError } from './errors.ts';
import {
  LineReader,
  describeAddress,
  isRecord,
  openSocket,
  parseGreeting,
  type QmpAddress,
  type QmpGreeting,
} from './qmp-wire.ts';

export type { QmpAddress, QmpGreeting } from './qmp-wire.ts';

export interface QmpEvent {
  readonly event: string;
  readonly data: Readonly<Record<string, unknown>>;
  readonly timestampMs: number;
  /** Position in this connection's event sequence (1, 2, ...). */
  readonly seq: number;
}

export interface QmpConnectOptions {
  readonly connectTimeoutMs?: number;
  /** Default time limit of a command. */
  readonly commandTimeoutMs?: number;
  readonly logger?: Logger;
  readonly signal?: AbortSignal;
}

export interface QmpCallOptions {
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

const eventRingSize = 512;

interface Pending {
  readonly command: string;
  resolve(value: unknown): void;
  reject(error: Error): void;
}

interface EventWaiter {
  readonly predicate: (event: QmpEvent) => boolean;
  resolve(event: QmpEvent): void;
  reject(error: Error): void;
}

export class QmpClient {
  readonly greeting: QmpGreeting;
  readonly address: string;
  readonly #socket: Socket;
  readonly #logger: Logger;
  readonly #commandTimeoutMs: number;
  readonly #pending = new Map<number, Pending>();
  readonly #events: QmpEvent[] = [];
  readonly #waiters = new Set<EventWaiter>();
  readonly #listeners = new Set<(event: QmpEvent) => void>();
  #nextId = 1;
  #eventSeq = 0;
  #closedError: QmpError | undefined;

  private constructor(
    socket: Socket,
    greeting: QmpGreeting,
    address: string,
    options: QmpConnectOptions,
  ) {
    this.#socket = socket;
    this.greeting = greeting;
    this.address = address;
    this.#logger = options.logger ?? silentLogger;
    this.#commandTimeoutMs = options.commandTimeoutMs ?? 30_000;
  }

  /** Connects, reads the greeting and negotiates capabilities. */
  static async connect(address: QmpAddress, options: QmpConnectOptions = {}): Promise<QmpClient> {
    const where = describeAddress(address);
    const socket = await openSocket(address, options.connectTimeoutMs ?? 10_000, options.signal);
    const lines = new LineReader(socket);
    try {
      const first = await lines.next(options.connectTimeoutMs ?? 10_000);
      const greeting = parseGreeting(first, where);
      const client = new QmpClient(socket, greeting, where, options);
      lines.attach((line) => {
        client.#onLine(line);
      });
      socket.on('close', () => {
        client.#onClose(
          new QmpError('QMP_DISCONNECTED', `QMP ${where} closed`, { retryable: true }),
        );
      });
      socket.on('error', (error) => {
        client.#onClose(
          new QmpError('QMP_DISCONNECTED', `QMP ${where}: ${error.message}`, {
            retryable: true,
            cause: error,
          }),
        );
      });
      await client.execute('qmp_capabilities', undefined, {
        timeoutMs: options.connectTimeoutMs ?? 10_000,
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      });
      return client;
    } catch (error) {
      socket.destroy();
      throw error;
    }
  }

  get closed(): boolean {
    return this.#closedError !== undefined;
  }

  /** Sends a command and resolves with its `return` value. */
  execute(
    command: string,
    args?: Readonly<Record<string, unknown>>,
    options: QmpCallOptions = {},
  ): Promise<unknown> {
    if (this.#closedError !== undefined) return Promise.reject(this.#closedError);
    const id = this.#nextId;
    this.#nextId += 1;
    const message = JSON.stringify(
      args === undefined ? { execute: command, id } : { execute: command, arguments: args, id },
    );
    const timeoutMs = options.timeoutMs ?? this.#commandTimeoutMs;
    return new Promise<unknown>((resolve, reject) => {
      const cleanup = (): void => {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        this.#pending.delete(id);
      };
      const onAbort = (): void => {
        cleanup();
        reject(
          new CoreError('CANCELLED', `QMP ${command} cancelled`, { cause: options.signal?.reason }),
        );
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(
          new QmpError('QMP_TIMEOUT', `QMP ${command} got no reply within ${timeoutMs} ms`, {
            retryable: true,
            details: { command, timeoutMs },
          }),
        );
      }, timeoutMs);
      if (options.signal?.aborted === true) {
        onAbort();
        return;
      }
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.#pending.set(id, {
        command,
        resolve: (value) => {
          cleanup();
          resolve(value);
        },
        reject: (error) => {
          cleanup();
          reject(error);
        },
      });
      this.#logger.log('debug', 'qmp command', { command, id });
      this.#socket.write(`${message}\n`);
    });
  }

  /** A cursor for waitForEvent: events after it count, earlier ones do not. */
  eventCursor(): number {
    return this.#eventSeq;
  }

  /**
   * Resolves with the first event (after `afterSeq`, default: from now on) matching `predicate`.
   * Take the cursor before sending the command that causes the event.
   */
  waitForEvent(
    predicate: (event: QmpEvent) => boolean,
    options: QmpCallOptions & { readonly afterSeq?: number; readonly what?: string } = {},
  ): Promise<QmpEvent> {
    const afterSeq = options.afterSeq ?? this.#eventSeq;
    for (const event of this.#events) {
      if (event.seq > afterSeq && predicate(event)) return Promise.resolve(event);
    }
    if (this.#closedError !== undefined) return Promise.reject(this.#closedError);
    const timeoutMs = options.timeoutMs ?? this.#commandTimeoutMs;
    const what = options.what ?? 'event';
    return new Promise<QmpEvent>((resolve, reject) => {
      const cleanup = (): void => {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        this.#waiters.delete(waiter);
      };
      const onAbort = (): void => {
        cleanup();
        reject(new CoreError('CANCELLED', `waiting for QMP ${what} cancelled`));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(
          new QmpError('QMP_TIMEOUT', `QMP ${what} did not arrive within ${timeoutMs} ms`, {
            retryable: true,
            details: { what, timeoutMs },
          }),
        );
      }, timeoutMs);
      const waiter: EventWaiter = {
        predicate,
        resolve: (event) => {
          cleanup();
          resolve(event);
        },
        reject: (error) => {
          cleanup();
          reject(error);
        },
      };
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.add(waiter);
    });
  }

  /** Calls `listener` for each event from now on; returns the unsubscribe function. */
  onEvent(listener: (event: QmpEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.#closedError === undefined) {
      this.#onClose(new QmpError('QMP_DISCONNECTED', `QMP ${this.address} closed by us`));
    }
    await new Promise<void>((resolve) => {
      if (this.#socket.destroyed) {
        resolve();
        return;
      }
      this.#socket.once('close', () => resolve());
      this.#socket.end();
      setTimeout(() => {
        this.#socket.destroy();
        resolve();
      }, 1000).unref();
    });
  }

  #onLine(line: string): void {
    let message: unknown;
    try {
      message = JSON.parse(line);
    } catch (error) {
      this.#fail(
        new QmpError('QMP_PROTOCOL', `QMP ${this.address} sent invalid JSON`, { cause: error }),
      );
      return;
    }
    if (!isRecord(message)) {
      this.#fail(new QmpError('QMP_PROTOCOL', `QMP ${this.address} sent a non-object`));
      return;
    }
    if (typeof message['event'] === 'string') {
      this.#onEvent(message);
      return;
    }
    const id = message['id'];
    let pending: Pending | undefined;
    let key: number | undefined;
    if (typeof id === 'number') {
      key = id;
      pending = this.#pending.get(id);
    } else if (this.#pending.size === 1) {
      // QEMU answers without an id when it could not parse the command at all.
      [[key, pending]] = [...this.#pending.entries()] as [[number, Pending]];
    }
    if (pending === undefined || key === undefined) {
      this.#logger.log('debug', 'qmp reply without a waiting command', { id: String(id) });
      return;
    }
    if ('return' in message) {
      pending.resolve(message['return']);
    } else if (isRecord(message['error'])) {
      const error = message['error'];
      const errorClass = typeof error['class'] === 'string' ? error['class'] : 'GenericError';
      const desc = typeof error['desc'] === 'string' ? error['desc'] : 'unknown error';
      pending.reject(
        new QmpError('QMP_COMMAND_FAILED', `QMP ${pending.command}: ${desc}`, {
          details: { command: pending.command, class: errorClass, desc },
        }),
      );
    } else {
      pending.reject(
        new QmpError(
          'QMP_PROTOCOL',
          `QMP reply to ${pending.command} has neither return nor error`,
        ),
      );
    }
  }

  #onEvent(message: Record<string, unknown>): void {
    this.#eventSeq += 1;
    const timestamp = isRecord(message['timestamp']) ? message['timestamp'] : {};
    const seconds = typeof timestamp['seconds'] === 'number' ? timestamp['seconds'] : 0;
    const micro = typeof timestamp['microseconds'] === 'number' ? timestamp['microseconds'] : 0;
    const event: QmpEvent = {
      event: message['event'] as string,
      data: isRecord(message['data']) ? message['data'] : {},
      timestampMs: seconds * 1000 + Math.floor(micro / 1000),
      seq: this.#eventSeq,
    };
    this.#logger.log('debug', 'qmp event', { event: event.event });
    this.#events.push(event);
    if (this.#events.length > eventRingSize) this.#events.shift();
    for (const waiter of [...this.#waiters]) {
      if (waiter.predicate(event)) waiter.resolve(event);
    }
    for (const listener of this.#listeners) listener(event);
  }

  #fail(error: QmpError): void {
    this.#onClose(error);
    this.#socket.destroy();
  }

  #onClose(error: QmpError): void {
    if (this.#closedError !== undefined) return;
    this.#closedError = error;
    for (const pending of [...this.#pending.values()]) pending.reject(error);
    this.#pending.clear();
    for (const waiter of [...this.#waiters]) waiter.reject(error);
  }
}
