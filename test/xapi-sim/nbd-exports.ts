/**
 * XAPI-simulator side: NBD for VDI.get_nbd_info (xapi.md §6). Each VDI gets a real qemu-nbd
 * (read-only, TLS required, like xapi-nbd's FORCEDTLS) with a secret export name
 * `/<vdi-uuid>?session_id=<secret>`, behind one TCP relay per host address, which can cut
 * connections (the dropped-connection toggle). The port is a free one, not 10809.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { startQemuNbd, type NbdServer, type Pki } from '../harness/index.ts';
import type { SimFaults, SimNbdEntry } from './sim-context.ts';

interface VdiExport {
  readonly server: NbdServer;
  readonly exportName: string;
  readonly relays: Map<string, { server: Server; port: number }>;
}

export class SimNbdExports {
  readonly #dir: string;
  readonly #pki: Pki;
  readonly #faults: SimFaults;
  readonly #exports = new Map<string, Promise<VdiExport>>();
  readonly #sockets = new Set<Socket>();
  readonly #clients = new Set<Socket>();
  readonly #stopping = new Set<Promise<void>>();

  constructor(dir: string, pki: Pki, faults: SimFaults) {
    this.#dir = dir;
    this.#pki = pki;
    this.#faults = faults;
  }

  /** Number of NBD client connections currently relayed. */
  get openConnections(): number {
    return this.#clients.size;
  }

  async info(
    vdiUuid: string,
    imagePath: string,
    addresses: readonly string[],
  ): Promise<SimNbdEntry[]> {
    let pending = this.#exports.get(vdiUuid);
    if (pending === undefined) {
      pending = this.#start(vdiUuid, imagePath);
      this.#exports.set(vdiUuid, pending);
    }
    const vdiExport = await pending;
    const cert = await readFile(this.#pki.serverCertFile, 'utf8');
    const entries: SimNbdEntry[] = [];
    for (const address of addresses) {
      let relay = vdiExport.relays.get(address);
      if (relay === undefined) {
        relay = await this.#relay(address, vdiExport.server.socketPath ?? '');
        vdiExport.relays.set(address, relay);
      }
      entries.push({
        address,
        port: relay.port,
        cert,
        exportname: vdiExport.exportName,
        subject: 'localhost',
      });
    }
    return entries;
  }

  async #start(vdiUuid: string, imagePath: string): Promise<VdiExport> {
    const exportName = `/${vdiUuid}?session_id=OpaqueRef:${randomUUID()}`;
    const server = await startQemuNbd({
      dir: this.#dir,
      image: imagePath,
      format: 'raw',
      readOnly: true,
      shared: 16,
      exportName,
      listen: { transport: 'unix', tls: this.#pki },
    });
    return { server, exportName, relays: new Map() };
  }

  #relay(address: string, socketPath: string): Promise<{ server: Server; port: number }> {
    const server = createServer((client) => {
      const upstream = createConnection({ path: socketPath });
      this.#sockets.add(client);
      this.#sockets.add(upstream);
      this.#clients.add(client);
      let sentBytes = 0;
      const close = (): void => {
        client.destroy();
        upstream.destroy();
        this.#sockets.delete(client);
        this.#sockets.delete(upstream);
        this.#clients.delete(client);
      };
      upstream.on('data', (chunk: Buffer) => {
        sentBytes += chunk.length;
        const limit = this.#faults.dropNbdAfterBytes;
        if (limit !== undefined && sentBytes > limit) {
          close();
          return;
        }
        if (!client.write(chunk)) upstream.pause();
      });
      client.on('drain', () => upstream.resume());
      client.pipe(upstream);
      client.on('error', close);
      upstream.on('error', close);
      client.on('close', close);
      upstream.on('close', close);
    });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, address, () => {
        const bound = server.address();
        resolve({ server, port: typeof bound === 'object' && bound !== null ? bound.port : 0 });
      });
    });
  }

  /** Cuts every relayed NBD connection now. */
  dropConnections(): void {
    for (const socket of this.#sockets) socket.destroy();
    this.#sockets.clear();
    this.#clients.clear();
  }

  async stop(vdiUuid: string): Promise<void> {
    const pending = this.#exports.get(vdiUuid);
    if (pending === undefined) return;
    this.#exports.delete(vdiUuid);
    const vdiExport = await pending.catch(() => undefined);
    if (vdiExport === undefined) return;
    for (const relay of vdiExport.relays.values()) relay.server.close();
    await vdiExport.server.stop();
  }

  /** Stops a VDI's server in the background (XAPI's destroy does not wait for xapi-nbd). */
  stopLater(vdiUuid: string): void {
    const stopping = this.stop(vdiUuid).catch(() => undefined);
    this.#stopping.add(stopping);
    void stopping.then(() => this.#stopping.delete(stopping));
  }

  async stopAll(): Promise<void> {
    this.dropConnections();
    for (const uuid of [...this.#exports.keys()]) await this.stop(uuid);
    await Promise.all([...this.#stopping]);
  }
}
