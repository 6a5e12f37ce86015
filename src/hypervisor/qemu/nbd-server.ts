/**
 * QEMU's built-in NBD server, which serves the point-in-time exports: on a unix socket (default)
 * or TCP, with TLS (a tls-creds-x509 object) for TCP. One server per QEMU process: if one is
 * already running (libvirt, another scope), it is used as configured and left running.
 */
import { stat, unlink } from 'node:fs/promises';
import { HypervisorError } from '../errors.ts';
import { qmpErrorDesc } from './errors.ts';
import type { QmpClient } from './qmp-client.ts';
import { parseBlockExports } from './qmp-types.ts';

export type QemuNbdServerConfig =
  | { readonly transport: 'unix'; readonly socketPath: string }
  | {
      readonly transport: 'tcp';
      readonly host: string;
      readonly port: number;
      /** Server credentials directory (ca-cert.pem, server-cert.pem, server-key.pem). */
      readonly tlsCredsDir?: string;
      /** Require client certificates. */
      readonly verifyPeer?: boolean;
    };

export const tlsObjectId = 'vmd-tls';

export interface NbdServerHandle {
  readonly startedByUs: boolean;
  readonly tls: boolean;
  uriFor(exportName: string): string;
}

export async function ensureNbdServer(
  client: QmpClient,
  config: QemuNbdServerConfig,
): Promise<NbdServerHandle> {
  let args: Record<string, unknown>;
  let tls = false;
  if (config.transport === 'unix') {
    args = { addr: { type: 'unix', data: { path: config.socketPath } } };
  } else {
    args = { addr: { type: 'inet', data: { host: config.host, port: String(config.port) } } };
    if (config.tlsCredsDir !== undefined) {
      tls = true;
      try {
        await client.execute('object-add', {
          'qom-type': 'tls-creds-x509',
          id: tlsObjectId,
          endpoint: 'server',
          dir: config.tlsCredsDir,
          'verify-peer': config.verifyPeer ?? false,
        });
      } catch (error) {
        if (!/duplicate|already/i.test(qmpErrorDesc(error))) throw error;
      }
      args = { ...args, 'tls-creds': tlsObjectId };
    }
  }
  let startedByUs = true;
  try {
    await client.execute('nbd-server-start', args);
  } catch (error) {
    if (!/already running/i.test(qmpErrorDesc(error))) throw error;
    startedByUs = false;
    // QMP cannot tell where a running server listens: a unix socket we did not find is not it.
    if (
      config.transport === 'unix' &&
      !(await stat(config.socketPath).then(
        () => true,
        () => false,
      ))
    ) {
      throw new HypervisorError(
        'HYPERVISOR_NBD_SERVER_UNKNOWN',
        `the machine already runs an NBD server, not on ${config.socketPath}: give its address in the source configuration (nbdServer)`,
        { details: { socketPath: config.socketPath } },
      );
    }
  }
  const uriFor = (exportName: string): string =>
    config.transport === 'unix'
      ? `nbd+unix:///${exportName}?socket=${config.socketPath}`
      : `${tls ? 'nbds' : 'nbd'}://${config.host}:${config.port}/${exportName}`;
  return { startedByUs, tls, uriFor };
}

/** Stops the server if we started it and no export is left on it. */
export async function releaseNbdServer(
  client: QmpClient,
  handle: NbdServerHandle,
  config: QemuNbdServerConfig,
): Promise<void> {
  if (!handle.startedByUs) return;
  const exports = parseBlockExports(await client.execute('query-block-exports'));
  if (exports.length > 0) return;
  await client.execute('nbd-server-stop');
  if (config.transport === 'unix') await unlink(config.socketPath).catch(() => undefined);
}
