/**
 * The QEMU command-line tools the source runs on the hypervisor host: qemu-img (info, create,
 * bitmap, convert) and qemu-nbd (read-only exports of stopped machines' images), with failures
 * turned into HYPERVISOR_TOOL_FAILED carrying the tool's stderr.
 */
import { execFile } from 'node:child_process';
import { readFile, unlink } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { HypervisorError } from '../errors.ts';
import { parseBitmaps, type BitmapInfo } from './qmp-types.ts';

const execFileAsync = promisify(execFile);

export async function runTool(command: string, args: readonly string[]): Promise<string> {
  try {
    const { stdout } = await execFileAsync(command, args, { maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new HypervisorError(
      'HYPERVISOR_TOOL_FAILED',
      `${command} ${args.join(' ')} failed: ${stderr.trim() || String(error)}`,
      { cause: error, details: { command } },
    );
  }
}

export interface ImageInfo {
  readonly format: string;
  readonly virtualSizeBytes: number;
  readonly bitmaps: readonly BitmapInfo[];
}

/** `qemu-img info` of an image (force-share: works while another process has it open). */
export async function imageInfo(qemuImg: string, path: string): Promise<ImageInfo> {
  const text = await runTool(qemuImg, ['info', '-U', '--output=json', path]);
  const info = JSON.parse(text) as {
    format?: unknown;
    'virtual-size'?: unknown;
    'format-specific'?: { data?: { bitmaps?: unknown } };
  };
  const raw = info['format-specific']?.data?.bitmaps;
  const bitmaps: BitmapInfo[] = Array.isArray(raw)
    ? parseBitmaps(
        raw.map((b: { name?: unknown; granularity?: unknown; flags?: unknown }) => {
          const flags = Array.isArray(b.flags) ? (b.flags as unknown[]) : [];
          return {
            name: b.name,
            granularity: b.granularity,
            count: 0,
            recording: flags.includes('auto'),
            persistent: true,
            inconsistent: flags.includes('in-use'),
          };
        }),
        'qemu-img info bitmaps',
      )
    : [];
  return {
    format: typeof info.format === 'string' ? info.format : 'unknown',
    virtualSizeBytes: typeof info['virtual-size'] === 'number' ? info['virtual-size'] : 0,
    bitmaps,
  };
}

/** A qemu-nbd server started with --fork; `stop()` ends it by pid. */
export interface QemuNbdProcess {
  readonly pid: number;
  readonly socketPath: string;
  stop(): Promise<void>;
}

export async function startQemuNbdExport(options: {
  qemuNbd: string;
  image: string;
  format: string;
  exportName: string;
  socketPath: string;
  pidFile: string;
  bitmap?: string;
  shared: number;
  /** Writable export (restores); read-only otherwise. */
  writable?: boolean;
}): Promise<QemuNbdProcess> {
  const args = ['-t', '-e', String(options.shared), '-f', options.format];
  if (options.writable !== true) args.unshift('-r');
  if (options.bitmap !== undefined) args.push('-B', options.bitmap);
  args.push('-x', options.exportName, '-k', options.socketPath, '--fork');
  args.push(`--pid-file=${options.pidFile}`, options.image);
  await runTool(options.qemuNbd, args);
  const pid = Number((await readFile(options.pidFile, 'utf8')).trim());
  for (let i = 0; i < 200 && !(await canConnect(options.socketPath)); i += 1) await sleep(25);
  return {
    pid,
    socketPath: options.socketPath,
    stop: async () => {
      await stopProcess(pid);
      await unlink(options.socketPath).catch(() => undefined);
      await unlink(options.pidFile).catch(() => undefined);
    },
  };
}

export function canConnect(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ path: socketPath });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM, then SIGKILL after 3 s; resolves once the pid is gone. */
export async function stopProcess(pid: number): Promise<void> {
  if (!isAlive(pid)) return;
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 150 && isAlive(pid); i += 1) await sleep(20);
  if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  while (isAlive(pid)) await sleep(20);
}

/** True when `pid` runs a command whose name contains `name` (guards against recycled pids). */
export async function pidRuns(pid: number, name: string): Promise<boolean> {
  try {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.includes(name);
  } catch {
    return false;
  }
}
