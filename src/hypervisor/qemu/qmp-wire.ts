/**
 * QMP wire helpers: opening the socket (with a time limit and abort), splitting the byte stream
 * into bounded lines, and parsing the greeting.
 */
import { createConnection, type Socket } from 'node:net';
import { CoreError } from '../../core/index.ts';
import { QmpError } from './errors.ts';

export type QmpAddress =
  { readonly socketPath: string } | { readonly host: string; readonly port: number };

export interface QmpGreeting {
  readonly version: { readonly major: number; readonly minor: number; readonly micro: number };
  readonly package: string;
  readonly capabilities: readonly string[];
}

const maxLineBytes = 32 * 1024 * 1024;

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function describeAddress(address: QmpAddress): string {
  return 'socketPath' in address ? address.socketPath : `${address.host}:${address.port}`;
}

export function parseGreeting(line: string, where: string): QmpGreeting {
  let message: unknown;
  try {
    message = JSON.parse(line);
  } catch (error) {
    throw new QmpError('QMP_PROTOCOL', `${where} is not a QMP socket (greeting is not JSON)`, {
      cause: error,
    });
  }
  const qmp = isRecord(message) ? message['QMP'] : undefined;
  if (!isRecord(qmp)) throw new QmpError('QMP_PROTOCOL', `${where} sent no QMP greeting`);
  const version = isRecord(qmp['version']) ? qmp['version'] : {};
  const qemu = isRecord(version['qemu']) ? version['qemu'] : {};
  const num = (value: unknown): number => (typeof value === 'number' ? value : 0);
  return {
    version: { major: num(qemu['major']), minor: num(qemu['minor']), micro: num(qemu['micro']) },
    package: typeof version['package'] === 'string' ? version['package'] : '',
    capabilities: Array.isArray(qmp['capabilities'])
      ? qmp['capabilities'].filter((c): c is string => typeof c === 'string')
      : [],
  };
}

export async function openSocket(
  address: QmpAddress,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<Socket> {
  const where = describeAddress(address);
  return new Promise<Socket>((resolve, reject) => {
    const socket =
      'socketPath' in address
        ? createConnection({ path: address.socketPath })
        : createConnection({ host: address.host, port: address.port });
    const fail = (error: Error): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      reject(error);
    };
    const onAbort = (): void =>
      fail(new CoreError('CANCELLED', `connecting to QMP ${where} cancelled`));
    const timer = setTimeout(
      () =>
        fail(
          new QmpError('QMP_CONNECT_FAILED', `QMP ${where}: connect timed out`, {
            retryable: true,
          }),
        ),
      timeoutMs,
    );
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('error', (error) =>
      fail(
        new QmpError('QMP_CONNECT_FAILED', `QMP ${where}: ${error.message}`, {
          retryable: true,
          cause: error,
        }),
      ),
    );
    socket.once('connect', () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.removeAllListeners('error');
      resolve(socket);
    });
  });
}

/** Splits a socket's bytes into lines, bounded in length; first line by promise, then a callback. */
export class LineReader {
  #buffer = '';
  #onLine: ((line: string) => void) | undefined;
  readonly #queue: string[] = [];
  #waiting: ((line: string) => void) | undefined;
  #failure: Error | undefined;
  #failWaiting: ((error: Error) => void) | undefined;

  constructor(socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.#buffer += chunk;
      if (this.#buffer.length > maxLineBytes) {
        this.#buffer = '';
        const error = new QmpError('QMP_PROTOCOL', `a QMP line exceeds ${maxLineBytes} bytes`);
        this.#failure = error;
        this.#failWaiting?.(error);
        socket.destroy();
        return;
      }
      for (;;) {
        const end = this.#buffer.indexOf('\n');
        if (end < 0) break;
        const line = this.#buffer.slice(0, end).trim();
        this.#buffer = this.#buffer.slice(end + 1);
        if (line !== '') this.#deliver(line);
      }
    });
    socket.on('close', () => {
      const error = new QmpError('QMP_DISCONNECTED', 'QMP socket closed', { retryable: true });
      this.#failure ??= error;
      this.#failWaiting?.(error);
    });
  }

  #deliver(line: string): void {
    if (this.#onLine !== undefined) this.#onLine(line);
    else if (this.#waiting !== undefined) {
      const waiting = this.#waiting;
      this.#waiting = undefined;
      this.#failWaiting = undefined;
      waiting(line);
    } else this.#queue.push(line);
  }

  next(timeoutMs: number): Promise<string> {
    const queued = this.#queue.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting = undefined;
        reject(
          new QmpError('QMP_TIMEOUT', `no QMP greeting within ${timeoutMs} ms`, {
            retryable: true,
          }),
        );
      }, timeoutMs);
      this.#waiting = (line) => {
        clearTimeout(timer);
        resolve(line);
      };
      this.#failWaiting = (error) => {
        clearTimeout(timer);
        reject(error);
      };
    });
  }

  /** From now on every line goes to `onLine` (queued lines first). */
  attach(onLine: (line: string) => void): void {
    this.#onLine = onLine;
    for (const line of this.#queue.splice(0)) onLine(line);
  }
}
