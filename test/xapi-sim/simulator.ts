/**
 * The XAPI simulator (test tree only): a JSON-RPC + HTTP(S) server on 127.0.0.1 (the pool master)
 * and 127.0.0.2 on the same port (a pool member, which answers HOST_IS_SLAVE to logins and serves
 * redirected transfers), over a realistic pool whose VDIs are raw image files in a folder. Tests
 * write guest data with `writeToVdi` (which CBT records) and flip `faults` to provoke failures.
 * It models XAPI from its documentation and sources: see docs/xapi.md for what a real host may
 * still do differently.
 */
import { randomUUID } from 'node:crypto';
import { readFile, rename } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import type { Pki } from '../harness/index.ts';
import { CbtTracker, type CbtPosition } from './cbt-tracker.ts';
import { SimNbdExports } from './nbd-exports.ts';
import { NULL_REF, PoolDb, SimApiError, type SimDiskSpec } from './pool-db.ts';
import { handleRpc } from './rpc-methods.ts';
import { SimEventLog } from './sim-events.ts';
import {
  defaultFaults,
  type SimContext,
  type SimFaults,
  type SimVhdEncoder,
} from './sim-context.ts';
import { handleTransfer } from './transfers.ts';

export interface XapiSimulatorOptions {
  /** Folder for VDI images and NBD sockets (short path: unix sockets live here). */
  readonly dir: string;
  /** TLS for HTTPS and NBD (harness makePki); without it HTTP only and no NBD. */
  readonly pki?: Pki;
  readonly username?: string;
  readonly password?: string;
  /** The VHD writer used for export_raw_vdi?format=vhd (injected by the VHD work). */
  readonly vhdEncoder?: SimVhdEncoder;
}

export interface SimVmSpec {
  readonly nameLabel: string;
  readonly powerState?: 'Running' | 'Halted';
  readonly disks: readonly SimDiskSpec[];
  /** Adds an empty CD drive (a VBD a backup must skip). */
  readonly cdrom?: boolean;
  /** VIFs, device = position; network by ref, uuid or name label. */
  readonly vifs?: readonly {
    readonly network: string;
    readonly mac: string;
    readonly mtu?: number;
  }[];
  /** Other VM record fields (memory_*, VCPUs_*, platform...). */
  readonly fields?: Readonly<Record<string, unknown>>;
}

export interface SimVm {
  readonly vmRef: string;
  readonly vmUuid: string;
  readonly vdiRefs: readonly string[];
  readonly vdiUuids: readonly string[];
}

export class XapiSimulator {
  readonly db: PoolDb;
  readonly faults: SimFaults = defaultFaults();
  readonly credentials: { readonly username: string; readonly password: string };
  readonly #cbt = new CbtTracker();
  readonly #cbtPositions = new Map<string, CbtPosition>();
  readonly #sessions = new Map<string, { username: string; lastUsedMs: number }>();
  readonly #servers: Server[] = [];
  readonly #sockets = new Set<Socket>();
  readonly #nbd: SimNbdExports | undefined;
  readonly #options: XapiSimulatorOptions;
  readonly #context: SimContext;
  #port = 0;

  private constructor(options: XapiSimulatorOptions) {
    this.#options = options;
    this.db = new PoolDb(options.dir);
    this.credentials = {
      username: options.username ?? 'root',
      password: options.password ?? 'sim-password',
    };
    this.#nbd =
      options.pki === undefined
        ? undefined
        : new SimNbdExports(options.dir, options.pki, this.faults);
    this.#context = this.#makeContext();
  }

  static async start(options: XapiSimulatorOptions): Promise<XapiSimulator> {
    const sim = new XapiSimulator(options);
    sim.db.createPool();
    await sim.#listen();
    return sim;
  }

  get #scheme(): string {
    return this.#options.pki === undefined ? 'http' : 'https';
  }

  /** The pool master's URL. */
  get url(): string {
    return `${this.#scheme}://127.0.0.1:${this.#port}`;
  }

  /** The pool member's URL (logins there answer HOST_IS_SLAVE). */
  get memberUrl(): string {
    return `${this.#scheme}://127.0.0.2:${this.#port}`;
  }

  get sessionCount(): number {
    return this.#sessions.size;
  }

  get nbdConnections(): number {
    return this.#nbd?.openConnections ?? 0;
  }

  #makeContext(): SimContext {
    return {
      db: this.db,
      cbt: this.#cbt,
      faults: this.faults,
      events: new SimEventLog(),
      credentials: this.credentials,
      sessions: this.#sessions,
      cbtPositions: this.#cbtPositions,
      masterAddress: '127.0.0.1',
      hostUrl: (host) => (host === 'master' ? this.url : this.memberUrl),
      nbdInfo: async (vdiRef, addresses) => {
        const path = this.db.vdiFiles.get(vdiRef);
        if (this.#nbd === undefined || path === undefined) return [];
        return this.#nbd.info(String(this.db.get('VDI', vdiRef)['uuid']), path, addresses);
      },
      stopNbd: async (vdiRef) => {
        const vdi = this.db.table('VDI').get(vdiRef);
        if (vdi !== undefined) this.#nbd?.stopLater(String(vdi['uuid']));
        await Promise.resolve();
      },
      vhdEncoder: this.#options.vhdEncoder,
      recordWrite: (vdiRef, offsetBytes, lengthBytes) => {
        const vdi = this.db.get('VDI', vdiRef);
        if (vdi['is_a_snapshot'] !== true)
          this.#cbt.recordWrite(String(vdi['uuid']), offsetBytes, lengthBytes);
      },
    };
  }

  async #listen(): Promise<void> {
    for (const host of ['master', 'member'] as const) {
      const handler = (req: IncomingMessage, res: ServerResponse): void => {
        this.#handle(host, req, res).catch((error: unknown) => {
          if (!res.headersSent) res.writeHead(500, { connection: 'close' });
          res.end(String(error));
        });
      };
      const pki = this.#options.pki;
      const server =
        pki === undefined
          ? createHttpServer(handler)
          : createHttpsServer(
              {
                cert: await readFile(join(pki.serverDir, 'server-cert.pem')),
                key: await readFile(join(pki.serverDir, 'server-key.pem')),
              },
              handler,
            );
      server.on('connection', (socket: Socket) => {
        this.#sockets.add(socket);
        socket.once('close', () => this.#sockets.delete(socket));
      });
      const address = host === 'master' ? '127.0.0.1' : '127.0.0.2';
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.#port, address, () => {
          const bound = server.address();
          if (typeof bound === 'object' && bound !== null) this.#port = bound.port;
          resolve();
        });
      });
      this.#servers.push(server);
    }
  }

  async #handle(
    host: 'master' | 'member',
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<void> {
    if (await handleTransfer(this.#context, host, req, res)) return;
    if (req.method !== 'POST' || req.url !== '/jsonrpc') {
      res.writeHead(404).end();
      return;
    }
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    let request: { method?: unknown; params?: unknown; id?: unknown; jsonrpc?: unknown };
    try {
      request = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof request;
    } catch {
      res.writeHead(400).end();
      return;
    }
    const params = Array.isArray(request.params) ? (request.params as unknown[]) : [];
    let reply: Record<string, unknown>;
    try {
      const result = await handleRpc(this.#context, host, String(request.method), params);
      reply = { result };
    } catch (error) {
      const [code, ...data] =
        error instanceof SimApiError
          ? [error.xapiCode, ...error.xapiParams]
          : ['INTERNAL_ERROR', String(error)];
      reply =
        this.faults.errorStyle === '2.0'
          ? { error: { code: 1, message: code, data } }
          : { result: null, error: [code, ...data] };
    }
    const body = JSON.stringify({
      ...(this.faults.errorStyle === '2.0' ? { jsonrpc: '2.0' } : {}),
      ...reply,
      id: request.id,
    });
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
    });
    res.end(body);
  }

  /** A running VM with Disk VBDs on new VDIs (sparse raw files), plus an optional empty CD. */
  async addVm(spec: SimVmSpec): Promise<SimVm> {
    const vmRef = this.db.insertVm({
      name_label: spec.nameLabel,
      power_state: spec.powerState ?? 'Running',
      resident_on: this.db.masterRef,
      ...spec.fields,
    });
    for (const [device, vif] of (spec.vifs ?? []).entries()) {
      this.db.insertVif({
        VM: vmRef,
        network: this.networkRef(vif.network),
        device: String(device),
        MAC: vif.mac,
        MTU: vif.mtu ?? 1500,
      });
    }
    const vdiRefs: string[] = [];
    for (const [index, disk] of spec.disks.entries()) {
      const vdiRef = await this.db.insertVdi(disk);
      vdiRefs.push(vdiRef);
      this.db.insertVbd({
        VM: vmRef,
        VDI: vdiRef,
        userdevice: String(index),
        device: `xvd${String.fromCharCode(97 + index)}`,
        bootable: index === 0,
        currently_attached: spec.powerState !== 'Halted',
      });
    }
    if (spec.cdrom === true) {
      this.db.insertVbd({ VM: vmRef, type: 'CD', mode: 'RO', userdevice: '3', empty: true });
    }
    return {
      vmRef,
      vmUuid: String(this.db.get('VM', vmRef)['uuid']),
      vdiRefs,
      vdiUuids: vdiRefs.map((ref) => String(this.db.get('VDI', ref)['uuid'])),
    };
  }

  /** A network's ref from its ref, uuid or name label. */
  networkRef(network: string): string {
    for (const [ref, record] of this.db.table('network')) {
      if (ref === network || record['uuid'] === network || record['name_label'] === network)
        return ref;
    }
    throw new Error(`no network ${network}`);
  }

  /** A new network without PIFs; returns its uuid. */
  addNetwork(nameLabel: string, mtu = 1500): string {
    return String(this.db.get('network', this.db.insertNetwork(nameLabel, mtu))['uuid']);
  }

  /** Removes a network (its VIFs go with it), as a pool without it would be. */
  removeNetwork(network: string): void {
    const ref = this.networkRef(network);
    for (const vifRef of this.db.get('network', ref)['VIFs'] as string[]) {
      const vif = this.db.table('VIF').get(vifRef);
      const vm = this.db.table('VM').get(vif?.['VM'] as string);
      if (vm !== undefined) vm['VIFs'] = (vm['VIFs'] as string[]).filter((r) => r !== vifRef);
      this.db.table('VIF').delete(vifRef);
    }
    this.db.table('network').delete(ref);
  }

  vdiPath(vdi: string): string {
    const path = this.db.vdiFiles.get(this.db.resolve('VDI', vdi));
    if (path === undefined) throw new Error(`VDI ${vdi} has no data`);
    return path;
  }

  /** A guest write to a live VDI: changes its image and is recorded by CBT when enabled. */
  async writeToVdi(vdi: string, offsetBytes: number, data: Buffer): Promise<void> {
    const ref = this.db.resolve('VDI', vdi);
    const handle = await open(this.vdiPath(ref), 'r+');
    try {
      await handle.write(data, 0, data.length, offsetBytes);
    } finally {
      await handle.close();
    }
    this.#context.recordWrite(ref, offsetBytes, data.length);
  }

  async readVdi(vdi: string): Promise<Buffer> {
    return readFile(this.vdiPath(vdi));
  }

  /** Every session becomes invalid (the next call gets SESSION_INVALID). */
  expireSessions(): void {
    this.#sessions.clear();
  }

  /** sm's reaction to inconsistent CBT metadata: CBT turned off on the live VDI (xapi.md §7). */
  breakCbt(vdi: string): void {
    const ref = this.db.resolve('VDI', vdi);
    const record = this.db.get('VDI', ref);
    this.#cbt.disable(String(record['uuid']));
    record['cbt_enabled'] = false;
  }

  /** Storage migration: the disk moves to another SR under a new VDI uuid and ref. */
  async migrateVdi(vdi: string, srUuid: string): Promise<{ vdiRef: string; vdiUuid: string }> {
    const oldRef = this.db.resolve('VDI', vdi);
    const old = this.db.get('VDI', oldRef);
    const srRef = this.db.byUuid('SR', srUuid);
    const newRef = this.db.insert('VDI', {
      ...old,
      uuid: randomUUID(),
      SR: srRef,
      snapshots: [],
      cbt_enabled: false,
      other_config: { ...(old['other_config'] as Record<string, string>) },
    });
    const record = this.db.get('VDI', newRef);
    const oldPath = this.vdiPath(oldRef);
    const newPath = join(this.db.dir, `${String(record['uuid'])}.raw`);
    await rename(oldPath, newPath);
    this.db.vdiFiles.set(newRef, newPath);
    this.db.vdiFiles.delete(oldRef);
    for (const vbdRef of old['VBDs'] as string[]) this.db.get('VBD', vbdRef)['VDI'] = newRef;
    this.#cbt.disable(String(old['uuid']));
    for (const snapshotRef of old['snapshots'] as string[]) {
      const snapshot = this.db.table('VDI').get(snapshotRef);
      if (snapshot !== undefined) snapshot['snapshot_of'] = NULL_REF;
    }
    old['VBDs'] = [];
    old['snapshots'] = [];
    await this.db.removeVdi(oldRef);
    (this.db.get('SR', srRef)['VDIs'] as string[]).push(newRef);
    return { vdiRef: newRef, vdiUuid: String(record['uuid']) };
  }

  dropNbdConnections(): void {
    this.#nbd?.dropConnections();
  }

  async stop(): Promise<void> {
    await this.#nbd?.stopAll();
    for (const socket of this.#sockets) socket.destroy();
    await Promise.all(
      this.#servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))),
    );
  }
}
