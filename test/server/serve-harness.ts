/**
 * Starts `node bin/vmdelta.js serve` as a real child process on a free port with its own data
 * folder, creates its first user through `vmdelta user set-password`, and gives small fetch
 * helpers (session cookie, JSON, server-sent events).
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { canConnect, freePort, startChild, type Daemon } from '../harness/index.ts';

const execFileAsync = promisify(execFile);
const BIN = join(import.meta.dirname, '..', '..', 'bin', 'vmdelta.js');

export const USER = 'admin';
export const PASSWORD = 'correct horse battery';

export interface Served extends Daemon {
  readonly url: string;
  readonly output: () => string;
}

export async function setPassword(
  dataDir: string,
  name = USER,
  password = PASSWORD,
): Promise<void> {
  await execFileAsync('node', [BIN, 'user', 'set-password', name], {
    env: { ...process.env, VMDELTA_DATA_DIR: dataDir, VMDELTA_PASSWORD: password },
  });
}

export async function startServe(
  dataDir: string,
  extraArgs: readonly string[] = [],
): Promise<Served> {
  const port = await freePort();
  const scheme = extraArgs.includes('--tls-cert') ? 'https' : 'http';
  const url = `${scheme}://127.0.0.1:${port}`;
  const child = await startChild({
    command: 'node',
    args: [BIN, 'serve', '--data-dir', dataDir, '--port', String(port), ...extraArgs],
    what: 'vmdelta serve',
    ready: () => canConnect({ host: '127.0.0.1', port }),
  });
  return { url, pid: child.pid, stop: () => child.stop(), output: () => child.output() };
}

export async function login(url: string, user = USER, password = PASSWORD): Promise<string> {
  const response = await fetch(`${url}/api/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user, password }),
  });
  if (response.status !== 200) throw new Error(`login answered ${response.status}`);
  const cookie = response.headers.get('set-cookie') ?? '';
  return cookie.split(';')[0] ?? '';
}

export interface ApiAnswer {
  readonly status: number;
  readonly json: unknown;
  readonly text: string;
}

export async function call(
  url: string,
  cookie: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<ApiAnswer> {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: {
      cookie,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  let json: unknown = undefined;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, json, text };
}

export interface SseEvent {
  readonly type: string;
  readonly data: Record<string, unknown>;
}

/** Collects server-sent events until `until` holds for one of them (or the timeout). */
export async function collectEvents(
  url: string,
  cookie: string,
  until: (event: SseEvent) => boolean,
  options: { timeoutMs?: number; onOpen?: () => Promise<void>; query?: string } = {},
): Promise<SseEvent[]> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), options.timeoutMs ?? 30_000);
  const events: SseEvent[] = [];
  try {
    const response = await fetch(`${url}/api/events${options.query ?? ''}`, {
      headers: { cookie, accept: 'text/event-stream' },
      signal: controller.signal,
    });
    if (response.body === null) throw new Error('no event stream');
    await options.onOpen?.();
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const type = /^event: (.*)$/m.exec(frame)?.[1];
        const data = /^data: (.*)$/m.exec(frame)?.[1];
        if (type === undefined || data === undefined) continue;
        const event = { type, data: JSON.parse(data) as Record<string, unknown> };
        events.push(event);
        if (until(event)) return events;
      }
    }
    return events;
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
}
