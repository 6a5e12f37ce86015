/**
 * Backup sources on a pool (xapi.md §2): VMs that are not templates, control domains or
 * snapshots, and their disks: VBDs of type Disk with a VDI, each marked excluded when its VDI's
 * name starts with "[NOBAK]" (Xen Orchestra's rule) or it carries the tag "vmdelta:no-backup".
 */
import { EXCLUDE_NAME_PREFIX, EXCLUDE_TAG, NULL_REF } from './constants.ts';
import {
  parseRecord,
  parseRecordMap,
  vbdRecordSchema,
  vdiRecordSchema,
  vmRecordSchema,
  type VbdRecord,
  type VdiRecord,
  type VmRecord,
} from './records.ts';
import type { XapiSession } from './session.ts';

export interface VmEntry {
  readonly ref: string;
  readonly record: VmRecord;
}

export interface VmDisk {
  readonly vbdRef: string;
  readonly vbd: VbdRecord;
  readonly vdiRef: string;
  readonly vdi: VdiRecord;
  /** Excluded from backups by the naming or tag rule. */
  readonly excluded: boolean;
}

export function isBackupSourceVm(record: VmRecord): boolean {
  return !record.is_a_template && !record.is_control_domain && !record.is_a_snapshot;
}

export function isVdiExcluded(vdi: Pick<VdiRecord, 'name_label' | 'tags'>): boolean {
  return vdi.name_label.startsWith(EXCLUDE_NAME_PREFIX) || (vdi.tags ?? []).includes(EXCLUDE_TAG);
}

/** Every VM of the pool that can be backed up, sorted by name. */
export async function listBackupSourceVms(session: XapiSession): Promise<VmEntry[]> {
  const records = parseRecordMap(vmRecordSchema, await session.call('VM.get_all_records'), 'VM');
  return [...records]
    .filter(([, record]) => isBackupSourceVm(record))
    .map(([ref, record]) => ({ ref, record }))
    .sort((a, b) => a.record.name_label.localeCompare(b.record.name_label));
}

export async function getVmRecord(session: XapiSession, vmRef: string): Promise<VmRecord> {
  return parseRecord(vmRecordSchema, await session.call('VM.get_record', [vmRef]), 'VM');
}

export async function getVdiRecord(session: XapiSession, vdiRef: string): Promise<VdiRecord> {
  return parseRecord(vdiRecordSchema, await session.call('VDI.get_record', [vdiRef]), 'VDI');
}

/** The Disk VBDs of a VM (or snapshot VM) that have a VDI, in userdevice order. */
export async function listVmDisks(session: XapiSession, vm: VmRecord): Promise<VmDisk[]> {
  const disks: VmDisk[] = [];
  for (const vbdRef of vm.VBDs) {
    const vbd = parseRecord(vbdRecordSchema, await session.call('VBD.get_record', [vbdRef]), 'VBD');
    if (vbd.type !== 'Disk' || vbd.VDI === NULL_REF || vbd.empty) continue;
    const vdi = await getVdiRecord(session, vbd.VDI);
    disks.push({ vbdRef, vbd, vdiRef: vbd.VDI, vdi, excluded: isVdiExcluded(vdi) });
  }
  return disks.sort((a, b) => Number(a.vbd.userdevice) - Number(b.vbd.userdevice));
}

/** Resolves a uuid to a ref (references are per-server: store uuids, xapi.md §1). */
export async function refByUuid(
  session: XapiSession,
  className: 'VM' | 'VDI' | 'SR' | 'network',
  uuid: string,
): Promise<string> {
  return String(await session.call(`${className}.get_by_uuid`, [uuid]));
}
