/**
 * XAPI-simulator side: the pool's records (host, SRs, networks, PIFs, VMs, VBDs, VDIs, tasks)
 * with XAPI's field names, and each VDI's backing raw image file in the simulator's folder.
 */
import { randomUUID } from 'node:crypto';
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';

export type SimRecord = Record<string, unknown>;

export const NULL_REF = 'OpaqueRef:NULL';

export type SimClass =
  'pool' | 'host' | 'SR' | 'network' | 'PIF' | 'VM' | 'VBD' | 'VDI' | 'VIF' | 'task';

export class SimApiError extends Error {
  readonly xapiCode: string;
  readonly xapiParams: readonly string[];
  constructor(code: string, params: readonly string[] = []) {
    super(`${code} ${params.join(' ')}`);
    this.xapiCode = code;
    this.xapiParams = params;
  }
}

export function newRef(): string {
  return `OpaqueRef:${randomUUID()}`;
}

export interface SimDiskSpec {
  readonly nameLabel: string;
  readonly sizeBytes: number;
  /** SR uuid (default: the first SR). */
  readonly srUuid?: string;
  readonly tags?: readonly string[];
}

export class PoolDb {
  readonly dir: string;
  readonly tables = new Map<SimClass, Map<string, SimRecord>>();
  /** VDI ref → image file path (undefined once data_destroyed). */
  readonly vdiFiles = new Map<string, string>();
  poolRef = '';
  masterRef = '';
  memberRef = '';
  readonly srRefs: string[] = [];
  managementNetworkRef = '';
  storageNetworkRef = '';

  constructor(dir: string) {
    this.dir = dir;
    for (const cls of [
      'pool',
      'host',
      'SR',
      'network',
      'PIF',
      'VM',
      'VBD',
      'VDI',
      'VIF',
      'task',
    ] as const) {
      this.tables.set(cls, new Map());
    }
  }

  table(cls: SimClass): Map<string, SimRecord> {
    const table = this.tables.get(cls);
    if (table === undefined) throw new Error(`no table ${cls}`);
    return table;
  }

  insert(cls: SimClass, fields: SimRecord): string {
    const ref = newRef();
    this.table(cls).set(ref, { uuid: randomUUID(), other_config: {}, ...fields });
    return ref;
  }

  get(cls: SimClass, ref: unknown): SimRecord {
    const record = typeof ref === 'string' ? this.table(cls).get(ref) : undefined;
    if (record === undefined) throw new SimApiError('HANDLE_INVALID', [cls, String(ref)]);
    return record;
  }

  byUuid(cls: SimClass, uuid: unknown): string {
    for (const [ref, record] of this.table(cls)) if (record['uuid'] === uuid) return ref;
    throw new SimApiError('UUID_INVALID', [cls, String(uuid)]);
  }

  /** A ref or a uuid (the HTTP handlers accept both). */
  resolve(cls: SimClass, refOrUuid: string): string {
    if (this.table(cls).has(refOrUuid)) return refOrUuid;
    return this.byUuid(cls, refOrUuid);
  }

  /** The standard pool: two hosts (master 127.0.0.1, member 127.0.0.2), two SRs, networks. */
  createPool(): void {
    this.masterRef = this.insert('host', {
      name_label: 'xcp-host-1',
      hostname: 'xcp-host-1',
      address: '127.0.0.1',
      enabled: true,
      PIFs: [],
    });
    this.memberRef = this.insert('host', {
      name_label: 'xcp-host-2',
      hostname: 'xcp-host-2',
      address: '127.0.0.2',
      enabled: true,
      PIFs: [],
    });
    this.poolRef = this.insert('pool', { name_label: 'sim-pool', master: this.masterRef });
    this.srRefs.push(
      this.insert('SR', {
        name_label: 'Local storage',
        type: 'ext',
        content_type: 'user',
        shared: false,
        VDIs: [],
        PBDs: [],
        physical_size: 1 << 40,
        physical_utilisation: 0,
        sm_config: {},
      }),
      this.insert('SR', {
        name_label: 'Shared NFS',
        type: 'nfs',
        content_type: 'user',
        shared: true,
        VDIs: [],
        PBDs: [],
        physical_size: 1 << 40,
        physical_utilisation: 0,
        sm_config: {},
      }),
    );
    this.managementNetworkRef = this.insertNetwork('Pool-wide network associated with eth0');
    this.storageNetworkRef = this.insertNetwork('Backup network', 9000);
    const pif = (network: string, host: string, ip: string): void => {
      const ref = this.insert('PIF', {
        network,
        host,
        IP: ip,
        IPv6: [],
        device: 'eth0',
        currently_attached: true,
        management: network === this.managementNetworkRef,
      });
      (this.get('network', network)['PIFs'] as string[]).push(ref);
      (this.get('host', host)['PIFs'] as string[]).push(ref);
    };
    pif(this.managementNetworkRef, this.masterRef, '127.0.0.1');
    pif(this.managementNetworkRef, this.memberRef, '127.0.0.2');
    pif(this.storageNetworkRef, this.masterRef, '127.0.0.1');
    for (const host of [this.masterRef, this.memberRef]) {
      this.insertVm({
        name_label: `Control domain on host: ${String(this.get('host', host)['name_label'])}`,
        is_control_domain: true,
        power_state: 'Running',
        resident_on: host,
      });
    }
    this.insertVm({ name_label: 'Debian Bookworm 12', is_a_template: true, power_state: 'Halted' });
  }

  /** A network without PIFs (add PIFs to give it addresses). */
  insertNetwork(nameLabel: string, mtu = 1500): string {
    return this.insert('network', {
      name_label: nameLabel,
      name_description: '',
      purpose: [],
      PIFs: [],
      VIFs: [],
      MTU: mtu,
      bridge: `xapi${this.table('network').size}`,
      tags: [],
    });
  }

  insertVm(fields: SimRecord): string {
    return this.insert('VM', {
      name_label: '',
      name_description: '',
      user_version: 1,
      power_state: 'Halted',
      memory_static_min: 536_870_912,
      memory_static_max: 2_147_483_648,
      memory_dynamic_min: 1_073_741_824,
      memory_dynamic_max: 2_147_483_648,
      VCPUs_max: 2,
      VCPUs_at_startup: 2,
      VCPUs_params: {},
      HVM_boot_policy: 'BIOS order',
      HVM_boot_params: { order: 'cd' },
      HVM_shadow_multiplier: 1,
      PV_bootloader: '',
      PV_kernel: '',
      PV_ramdisk: '',
      PV_args: '',
      PV_bootloader_args: '',
      PV_legacy_args: '',
      platform: { viridian: 'true', acpi: '1', apic: 'true', pae: 'true', nx: 'true' },
      actions_after_shutdown: 'destroy',
      actions_after_reboot: 'restart',
      actions_after_crash: 'restart',
      domain_type: 'hvm',
      has_vendor_device: false,
      is_a_template: false,
      is_control_domain: false,
      is_a_snapshot: false,
      snapshot_of: NULL_REF,
      snapshots: [],
      snapshot_time: '19700101T00:00:00Z',
      VBDs: [],
      VIFs: [],
      VTPMs: [],
      suspend_VDI: NULL_REF,
      resident_on: NULL_REF,
      blocked_operations: {},
      tags: [],
      ...fields,
    });
  }

  /** A VDI record with a sparse raw image file of `sizeBytes`. */
  async insertVdi(spec: SimDiskSpec, fields: SimRecord = {}): Promise<string> {
    const srRef =
      spec.srUuid === undefined ? (this.srRefs[0] ?? '') : this.byUuid('SR', spec.srUuid);
    const ref = this.insert('VDI', {
      name_label: spec.nameLabel,
      name_description: '',
      SR: srRef,
      VBDs: [],
      virtual_size: spec.sizeBytes,
      physical_utilisation: spec.sizeBytes,
      type: 'user',
      sharable: false,
      read_only: false,
      sm_config: { 'image-format': 'vhd' },
      xenstore_data: {},
      is_a_snapshot: false,
      snapshot_of: NULL_REF,
      snapshots: [],
      snapshot_time: '19700101T00:00:00Z',
      cbt_enabled: false,
      missing: false,
      allowed_operations: [],
      current_operations: {},
      tags: [...(spec.tags ?? [])],
      ...fields,
    });
    const path = join(this.dir, `${String(this.get('VDI', ref)['uuid'])}.raw`);
    const handle = await open(path, 'w');
    await handle.truncate(spec.sizeBytes);
    await handle.close();
    this.vdiFiles.set(ref, path);
    (this.get('SR', srRef)['VDIs'] as string[]).push(ref);
    return ref;
  }

  insertVbd(fields: SimRecord): string {
    const ref = this.insert('VBD', {
      VDI: NULL_REF,
      type: 'Disk',
      mode: 'RW',
      userdevice: '0',
      device: '',
      bootable: false,
      empty: false,
      currently_attached: false,
      ...fields,
    });
    (this.get('VM', fields['VM'])['VBDs'] as string[]).push(ref);
    const vdi = fields['VDI'];
    if (typeof vdi === 'string' && vdi !== NULL_REF)
      (this.get('VDI', vdi)['VBDs'] as string[]).push(ref);
    return ref;
  }

  /** A VIF of a VM on a network (MAC as given: the caller checks or generates it). */
  insertVif(fields: {
    VM: string;
    network: string;
    device: string;
    MAC: string;
    MTU: number;
  }): string {
    const vm = this.get('VM', fields.VM);
    const network = this.get('network', fields.network);
    const ref = this.insert('VIF', {
      ...fields,
      MAC_autogenerated: false,
      currently_attached: false,
      locking_mode: 'network_default',
      ipv4_allowed: [],
      ipv6_allowed: [],
      qos_algorithm_type: '',
      qos_algorithm_params: {},
    });
    (vm['VIFs'] as string[]).push(ref);
    (network['VIFs'] as string[]).push(ref);
    return ref;
  }

  removeVdi(ref: string): Promise<void> {
    const vdi = this.get('VDI', ref);
    this.table('VDI').delete(ref);
    const sr = this.table('SR').get(vdi['SR'] as string);
    if (sr !== undefined) sr['VDIs'] = (sr['VDIs'] as string[]).filter((r) => r !== ref);
    const parent = this.table('VDI').get(vdi['snapshot_of'] as string);
    if (parent !== undefined)
      parent['snapshots'] = (parent['snapshots'] as string[]).filter((r) => r !== ref);
    const path = this.vdiFiles.get(ref);
    this.vdiFiles.delete(ref);
    return path === undefined ? Promise.resolve() : rm(path, { force: true });
  }

  removeVm(ref: string): void {
    const vm = this.get('VM', ref);
    for (const vbdRef of vm['VBDs'] as string[]) {
      const vbd = this.table('VBD').get(vbdRef);
      if (vbd === undefined) continue;
      const vdi = this.table('VDI').get(vbd['VDI'] as string);
      if (vdi !== undefined) vdi['VBDs'] = (vdi['VBDs'] as string[]).filter((r) => r !== vbdRef);
      this.table('VBD').delete(vbdRef);
    }
    for (const vifRef of (vm['VIFs'] ?? []) as string[]) {
      const vif = this.table('VIF').get(vifRef);
      const network = this.table('network').get(vif?.['network'] as string);
      if (network !== undefined)
        network['VIFs'] = (network['VIFs'] as string[]).filter((r) => r !== vifRef);
      this.table('VIF').delete(vifRef);
    }
    const parent = this.table('VM').get(vm['snapshot_of'] as string);
    if (parent !== undefined)
      parent['snapshots'] = (parent['snapshots'] as string[]).filter((r) => r !== ref);
    this.table('VM').delete(ref);
  }
}
