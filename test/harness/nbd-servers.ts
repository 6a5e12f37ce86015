/**
 * Real NBD servers for tests: qemu-nbd, nbdkit and qemu-storage-daemon, on a unix socket or
 * 127.0.0.1, optionally with TLS, each stopped by pid. `uri` is the NBD URI a client uses.
 */
import { join } from 'node:path';
import { unlink } from 'node:fs/promises';
import { requireTool } from './tools.ts';
import { canConnect, freePort, startDaemon, type Daemon } from './process.ts';
import type { Pki } from './pki.ts';

export interface NbdServer extends Daemon {
  /** NBD URI (nbd+unix:///name?socket=… or nbd://127.0.0.1:port/name; nbds… with TLS). */
  readonly uri: string;
  readonly socketPath?: string;
  readonly port?: number;
}

export interface Listen {
  /** Unix socket (default) or TCP on 127.0.0.1. */
  readonly transport?: 'unix' | 'tcp';
  readonly tls?: Pki;
  /** Ask clients for a certificate (server verify-peer). */
  readonly verifyPeer?: boolean;
}

let counter = 0;

async function endpoint(dir: string, listen: Listen, exportName: string) {
  counter += 1;
  const scheme = listen.tls === undefined ? 'nbd' : 'nbds';
  if ((listen.transport ?? 'unix') === 'unix') {
    const socketPath = join(dir, `nbd-${process.pid}-${counter}.sock`);
    return {
      socketPath,
      uri: `${scheme}+unix:///${exportName}?socket=${socketPath}`,
      ready: () => canConnect({ path: socketPath }),
    };
  }
  const port = await freePort();
  return {
    port,
    uri: `${scheme}://127.0.0.1:${port}/${exportName}`,
    ready: () => canConnect({ host: '127.0.0.1', port }),
  };
}

function withStop(daemon: Daemon, socketPath: string | undefined): Daemon {
  return {
    pid: daemon.pid,
    stop: async () => {
      await daemon.stop();
      if (socketPath !== undefined) await unlink(socketPath).catch(() => undefined);
    },
  };
}

export async function startQemuNbd(options: {
  dir: string;
  image: string;
  format: 'raw' | 'qcow2';
  readOnly?: boolean;
  /** Persistent bitmaps to export (-B). */
  bitmaps?: readonly string[];
  /** Max simultaneous clients (-e); > 1 gives CAN_MULTI_CONN on read-only exports. */
  shared?: number;
  exportName?: string;
  listen?: Listen;
  extraArgs?: readonly string[];
}): Promise<NbdServer> {
  const listen = options.listen ?? {};
  const exportName = options.exportName ?? '';
  const at = await endpoint(options.dir, listen, exportName);
  counter += 1;
  const pidFile = join(options.dir, `qemu-nbd-${process.pid}-${counter}.pid`);
  const args = [
    '-t',
    '-f',
    options.format,
    '-e',
    String(options.shared ?? 8),
    '--fork',
    `--pid-file=${pidFile}`,
  ];
  if (options.readOnly === true) args.push('-r');
  for (const bitmap of options.bitmaps ?? []) args.push('-B', bitmap);
  if (exportName !== '') args.push('-x', exportName);
  if (at.socketPath !== undefined) args.push('-k', at.socketPath);
  else args.push('-b', '127.0.0.1', '-p', String(at.port));
  if (listen.tls !== undefined) {
    args.push(
      '--object',
      `tls-creds-x509,id=tls0,endpoint=server,dir=${listen.tls.serverDir},verify-peer=${listen.verifyPeer === true ? 'on' : 'off'}`,
      '--tls-creds',
      'tls0',
    );
  }
  args.push(...(options.extraArgs ?? []), options.image);
  const daemon = await startDaemon({
    command: requireTool('qemu-nbd'),
    args,
    pidFile,
    ready: at.ready,
    what: 'qemu-nbd',
  });
  return {
    ...withStop(daemon, at.socketPath),
    uri: at.uri,
    ...(at.socketPath === undefined ? { port: at.port } : { socketPath: at.socketPath }),
  };
}

/**
 * nbdkit with a plugin and filters, e.g. plugin 'memory' args ['size=1G'], or filters
 * ['error', 'delay'] with args ['error-rate=10%', 'delay-read=10ms'].
 */
export async function startNbdkit(options: {
  dir: string;
  plugin: string;
  args?: readonly string[];
  filters?: readonly string[];
  readOnly?: boolean;
  listen?: Listen;
}): Promise<NbdServer> {
  const listen = options.listen ?? {};
  const at = await endpoint(options.dir, listen, '');
  counter += 1;
  const pidFile = join(options.dir, `nbdkit-${process.pid}-${counter}.pid`);
  const args = ['-P', pidFile];
  if (options.readOnly === true) args.push('-r');
  if (at.socketPath !== undefined) args.push('-U', at.socketPath);
  else args.push('-i', '127.0.0.1', '-p', String(at.port));
  if (listen.tls !== undefined) {
    args.push('--tls=require', `--tls-certificates=${listen.tls.serverDir}`);
    if (listen.verifyPeer === true) args.push('--tls-verify-peer');
  }
  for (const filter of options.filters ?? []) args.push(`--filter=${filter}`);
  args.push(options.plugin, ...(options.args ?? []));
  const daemon = await startDaemon({
    command: requireTool('nbdkit'),
    args,
    pidFile,
    ready: at.ready,
    what: 'nbdkit',
  });
  return {
    ...withStop(daemon, at.socketPath),
    uri: at.uri,
    ...(at.socketPath === undefined ? { port: at.port } : { socketPath: at.socketPath }),
  };
}

export interface QsdInstance extends Daemon {
  readonly qmpSocketPath: string;
}

/** qemu-storage-daemon with a QMP socket; extra command-line args (blockdevs, exports) optional. */
export async function startQsd(options: {
  dir: string;
  args?: readonly string[];
}): Promise<QsdInstance> {
  counter += 1;
  const qmpSocketPath = join(options.dir, `qmp-${process.pid}-${counter}.sock`);
  const pidFile = join(options.dir, `qsd-${process.pid}-${counter}.pid`);
  const args = [
    '--chardev',
    `socket,path=${qmpSocketPath},server=on,wait=off,id=qmp0`,
    '--monitor',
    'chardev=qmp0',
    ...(options.args ?? []),
    '--pidfile',
    pidFile,
    '--daemonize',
  ];
  const daemon = await startDaemon({
    command: requireTool('qemu-storage-daemon'),
    args,
    pidFile,
    ready: () => canConnect({ path: qmpSocketPath }),
    what: 'qemu-storage-daemon',
  });
  return { ...daemon, qmpSocketPath };
}
