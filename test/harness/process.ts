/**
 * Starting and stopping real servers for tests: run a command (daemonising itself or not), learn
 * its pid (from a pid file or the child), wait until it is ready, and stop it by pid.
 */
import { spawn, execFile } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';

export const execFileAsync = promisify(execFile);

export interface Daemon {
  readonly pid: number;
  stop(): Promise<void>;
}

/** Runs a command to completion; rejects with its stderr on failure. */
export async function run(
  command: string,
  args: readonly string[],
  options: { cwd?: string } = {},
): Promise<string> {
  try {
    const { stdout } = await execFileAsync(command, args, {
      maxBuffer: 64 * 1024 * 1024,
      ...options,
    });
    return stdout;
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(`${command} ${args.join(' ')} failed: ${stderr.trim() || String(error)}`, {
      cause: error,
    });
  }
}

export async function waitFor(
  check: () => Promise<boolean>,
  what: string,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

export async function fileExists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

export async function canConnect(
  target: { path: string } | { host: string; port: number },
): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection(target as { path: string });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Sends SIGTERM, then SIGKILL after `graceMs`, and waits until the pid is gone. */
export async function stopPid(pid: number, graceMs = 3000): Promise<void> {
  if (!isAlive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await sleep(20);
  if (isAlive(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      return;
    }
    while (isAlive(pid)) await sleep(20);
  }
}

/** Starts a self-daemonising server that writes `pidFile`; resolves once `ready()` holds. */
export async function startDaemon(options: {
  command: string;
  args: readonly string[];
  pidFile: string;
  ready: () => Promise<boolean>;
  what: string;
}): Promise<Daemon> {
  await run(options.command, options.args);
  await waitFor(() => fileExists(options.pidFile), `${options.what} pid file`);
  const pid = Number((await readFile(options.pidFile, 'utf8')).trim());
  try {
    await waitFor(options.ready, options.what);
  } catch (error) {
    await stopPid(pid);
    throw error;
  }
  return { pid, stop: () => stopPid(pid) };
}

/** Starts a foreground server as a child process; resolves once `ready()` holds. */
export async function startChild(options: {
  command: string;
  args: readonly string[];
  ready: () => Promise<boolean>;
  what: string;
  env?: NodeJS.ProcessEnv;
}): Promise<Daemon & { output: () => string }> {
  const child = spawn(options.command, options.args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: options.env ?? process.env,
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${options.what}`);
  let exited = false;
  child.once('exit', () => (exited = true));
  try {
    await waitFor(async () => {
      if (exited) throw new Error(`${options.what} exited early: ${output}`);
      return options.ready();
    }, options.what);
  } catch (error) {
    await stopPid(pid);
    throw new Error(`${options.what} did not start: ${output.slice(-2000)}`, { cause: error });
  }
  return { pid, stop: () => stopPid(pid), output: () => output };
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
