/**
 * XAPI-simulator side: the VM, VDI, CBT, NBD and network methods with XAPI's error codes
 * (VDI_IN_USE, VDI_NO_CBT_METADATA, VDI_INCOMPATIBLE_TYPE, NETWORK_INCOMPATIBLE_PURPOSES, …).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { encodeCbtBitmap } from './cbt-tracker.ts';
import { NULL_REF, SimApiError, type SimRecord } from './pool-db.ts';
import type { SimContext } from './sim-context.ts';
import { xapiDateTime } from './sim-tasks.ts';

const execFileAsync = promisify(execFile);

function str(value: unknown): string {
  return typeof value === 'string' ? value : String(value);
}

function isAttached(ctx: SimContext, vdi: SimRecord): boolean {
  return (vdi['VBDs'] as string[]).some(
    (vbd) => ctx.db.table('VBD').get(vbd)?.['currently_attached'] === true,
  );
}

function consumeInUse(ctx: SimContext, vdiRef: string, operation: string): void {
  const uuid = str(ctx.db.get('VDI', vdiRef)['uuid']);
  const remaining = ctx.faults.vdiInUse.get(uuid) ?? 0;
  if (remaining > 0) {
    ctx.faults.vdiInUse.set(uuid, remaining - 1);
    throw new SimApiError('VDI_IN_USE', [vdiRef, operation]);
  }
}

async function snapshotVdi(ctx: SimContext, vdiRef: string, nowMs: number): Promise<string> {
  const source = ctx.db.get('VDI', vdiRef);
  const snapshotRef = await ctx.db.insertVdi(
    {
      nameLabel: str(source['name_label']),
      sizeBytes: Number(source['virtual_size']),
      srUuid: str(ctx.db.get('SR', source['SR'])['uuid']),
    },
    {
      is_a_snapshot: true,
      snapshot_of: vdiRef,
      snapshot_time: xapiDateTime(nowMs),
      other_config: { ...(source['other_config'] as Record<string, string>) },
      cbt_enabled: source['cbt_enabled'],
      tags: [...(source['tags'] as string[])],
    },
  );
  const from = ctx.db.vdiFiles.get(vdiRef);
  const to = ctx.db.vdiFiles.get(snapshotRef);
  if (from === undefined || to === undefined) throw new SimApiError('VDI_MISSING', [vdiRef]);
  await execFileAsync('cp', ['--reflink=auto', '--sparse=always', from, to]);
  const position = ctx.cbt.snapshot(str(source['uuid']));
  if (position !== undefined) ctx.cbtPositions.set(snapshotRef, position);
  (source['snapshots'] as string[]).push(snapshotRef);
  return snapshotRef;
}

export async function vmSnapshot(ctx: SimContext, params: readonly unknown[]): Promise<string> {
  const [vmRef, name, ignore] = params;
  const vm = ctx.db.get('VM', vmRef);
  if (
    vm['is_a_snapshot'] === true ||
    vm['is_a_template'] === true ||
    vm['is_control_domain'] === true
  ) {
    throw new SimApiError('OPERATION_NOT_ALLOWED', ['VM.snapshot is not allowed on this VM']);
  }
  const ignored = new Set(Array.isArray(ignore) ? ignore.map(str) : []);
  const nowMs = Date.now();
  const snapshotRef = ctx.db.insertVm({
    name_label: str(name),
    is_a_snapshot: true,
    is_a_template: true,
    snapshot_of: vmRef,
    snapshot_time: xapiDateTime(nowMs),
    power_state: 'Halted',
    other_config: { ...(vm['other_config'] as Record<string, string>) },
  });
  for (const vbdRef of vm['VBDs'] as string[]) {
    const vbd = ctx.db.get('VBD', vbdRef);
    const common = {
      VM: snapshotRef,
      userdevice: vbd['userdevice'],
      device: vbd['device'],
      mode: vbd['mode'],
    };
    if (vbd['type'] === 'Disk' && vbd['VDI'] !== NULL_REF && !ignored.has(str(vbd['VDI']))) {
      const vdiRef = await snapshotVdi(ctx, str(vbd['VDI']), nowMs);
      ctx.db.insertVbd({ ...common, type: 'Disk', VDI: vdiRef, bootable: vbd['bootable'] });
    } else if (vbd['type'] !== 'Disk') {
      ctx.db.insertVbd({ ...common, type: vbd['type'], VDI: NULL_REF, empty: true });
    }
  }
  (vm['snapshots'] as string[]).push(snapshotRef);
  return snapshotRef;
}

export async function vdiDestroy(ctx: SimContext, params: readonly unknown[]): Promise<void> {
  const vdiRef = str(params[0]);
  const vdi = ctx.db.get('VDI', vdiRef);
  if (isAttached(ctx, vdi)) throw new SimApiError('VDI_IN_USE', [vdiRef, 'destroy']);
  consumeInUse(ctx, vdiRef, 'destroy');
  await ctx.stopNbd(vdiRef);
  ctx.cbtPositions.delete(vdiRef);
  await ctx.db.removeVdi(vdiRef);
}

export async function vdiDataDestroy(ctx: SimContext, params: readonly unknown[]): Promise<void> {
  const vdiRef = str(params[0]);
  const vdi = ctx.db.get('VDI', vdiRef);
  if (vdi['type'] === 'cbt_metadata') return;
  if (vdi['is_a_snapshot'] !== true) {
    throw new SimApiError('OPERATION_NOT_ALLOWED', ['VDI.data_destroy needs a snapshot VDI']);
  }
  if (!ctx.cbtPositions.has(vdiRef)) throw new SimApiError('VDI_NO_CBT_METADATA', [vdiRef]);
  if (isAttached(ctx, vdi)) throw new SimApiError('VDI_IN_USE', [vdiRef, 'data_destroy']);
  consumeInUse(ctx, vdiRef, 'data_destroy');
  await ctx.stopNbd(vdiRef);
  vdi['type'] = 'cbt_metadata';
  vdi['physical_utilisation'] = 0;
  const path = ctx.db.vdiFiles.get(vdiRef);
  ctx.db.vdiFiles.delete(vdiRef);
  if (path !== undefined) await execFileAsync('rm', ['-f', path]);
}

export function enableCbt(ctx: SimContext, params: readonly unknown[]): void {
  const vdi = ctx.db.get('VDI', params[0]);
  if (vdi['is_a_snapshot'] === true) {
    throw new SimApiError('OPERATION_NOT_ALLOWED', ['CBT cannot be changed on a snapshot']);
  }
  const sr = ctx.db.get('SR', vdi['SR']);
  if (sr['type'] === 'iso') throw new SimApiError('SR_OPERATION_NOT_SUPPORTED', [str(vdi['SR'])]);
  ctx.cbt.enable(str(vdi['uuid']));
  vdi['cbt_enabled'] = true;
}

export function disableCbt(ctx: SimContext, params: readonly unknown[]): void {
  const vdi = ctx.db.get('VDI', params[0]);
  if (vdi['is_a_snapshot'] === true) {
    throw new SimApiError('OPERATION_NOT_ALLOWED', ['CBT cannot be changed on a snapshot']);
  }
  ctx.cbt.disable(str(vdi['uuid']));
  vdi['cbt_enabled'] = false;
}

export function listChangedBlocks(ctx: SimContext, params: readonly unknown[]): string {
  const [fromRef, toRef] = params.map(str);
  ctx.db.get('VDI', fromRef);
  const to = ctx.db.get('VDI', toRef);
  if (isAttached(ctx, to)) throw new SimApiError('VDI_IN_USE', [str(toRef), 'list_changed_blocks']);
  const from = ctx.cbtPositions.get(str(fromRef));
  const target = ctx.cbtPositions.get(str(toRef));
  const failure = (reason: string): SimApiError =>
    new SimApiError('SR_BACKEND_FAILURE_460', [
      '',
      `Failed to calculate changed blocks for given VDIs. [opterr=${reason}]`,
      '',
    ]);
  if (from === undefined || target === undefined) throw failure('CBT is not enabled on the VDIs');
  const blocks = ctx.cbt.changedBlocks(from, target);
  if (typeof blocks === 'string') throw failure(blocks);
  return encodeCbtBitmap(blocks, Number(to['virtual_size']));
}

export async function getNbdInfo(ctx: SimContext, params: readonly unknown[]): Promise<unknown[]> {
  const vdiRef = str(params[0]);
  const vdi = ctx.db.get('VDI', vdiRef);
  if (vdi['type'] === 'cbt_metadata')
    throw new SimApiError('VDI_INCOMPATIBLE_TYPE', [vdiRef, 'cbt_metadata']);
  const addresses: string[] = [];
  for (const network of ctx.db.table('network').values()) {
    const purpose = network['purpose'] as string[];
    if (!purpose.includes('nbd') && !purpose.includes('insecure_nbd')) continue;
    for (const pifRef of network['PIFs'] as string[]) {
      const pif = ctx.db.get('PIF', pifRef);
      if (pif['currently_attached'] === true && pif['IP'] !== '') addresses.push(str(pif['IP']));
    }
  }
  if (addresses.length === 0) return [];
  return ctx.nbdInfo(vdiRef, addresses);
}

export function addPurpose(ctx: SimContext, params: readonly unknown[]): void {
  const [networkRef, purpose] = params.map(str);
  const network = ctx.db.get('network', networkRef);
  if (purpose !== 'nbd' && purpose !== 'insecure_nbd') {
    throw new SimApiError('INVALID_VALUE', ['purpose', str(purpose)]);
  }
  const other = purpose === 'nbd' ? 'insecure_nbd' : 'nbd';
  for (const [ref, record] of ctx.db.table('network')) {
    if ((record['purpose'] as string[]).includes(other)) {
      throw new SimApiError('NETWORK_INCOMPATIBLE_PURPOSES', [purpose, other, ref]);
    }
  }
  const purposes = network['purpose'] as string[];
  if (!purposes.includes(purpose)) purposes.push(purpose);
}

export function removePurpose(ctx: SimContext, params: readonly unknown[]): void {
  const network = ctx.db.get('network', params[0]);
  network['purpose'] = (network['purpose'] as string[]).filter((p) => p !== params[1]);
}

export function vmDestroy(ctx: SimContext, params: readonly unknown[]): void {
  const vm = ctx.db.get('VM', params[0]);
  if (vm['power_state'] !== 'Halted') {
    throw new SimApiError('VM_BAD_POWER_STATE', [
      str(params[0]),
      'halted',
      str(vm['power_state']).toLowerCase(),
    ]);
  }
  ctx.db.removeVm(str(params[0]));
}

/** VDI.create(record): an empty VDI of virtual_size on SR (sparse raw file). */
export async function vdiCreate(ctx: SimContext, [record]: readonly unknown[]): Promise<string> {
  if (typeof record !== 'object' || record === null) {
    throw new SimApiError('FIELD_TYPE_ERROR', ['VDI record']);
  }
  const fields = record as Record<string, unknown>;
  const sizeBytes = Number(fields['virtual_size']);
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes <= 0) {
    throw new SimApiError('FIELD_TYPE_ERROR', ['virtual_size']);
  }
  const srRef = str(fields['SR']);
  const sr = ctx.db.get('SR', srRef);
  return ctx.db.insertVdi(
    {
      nameLabel: str(fields['name_label'] ?? ''),
      sizeBytes,
      srUuid: str(sr['uuid']),
    },
    {
      name_description: str(fields['name_description'] ?? ''),
      other_config: { ...((fields['other_config'] ?? {}) as Record<string, string>) },
    },
  );
}

function recordArg(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null)
    throw new SimApiError('FIELD_TYPE_ERROR', [what]);
  return value as Record<string, unknown>;
}

/** VBD.create(record): attaches a VDI to a VM at a userdevice position. */
export function vbdCreate(ctx: SimContext, [record]: readonly unknown[]): string {
  const fields = recordArg(record, 'VBD record');
  const vm = ctx.db.get('VM', fields['VM']);
  const vdiRef = str(fields['VDI'] ?? NULL_REF);
  if (vdiRef !== NULL_REF) ctx.db.get('VDI', vdiRef);
  const userdevice = str(fields['userdevice'] ?? '');
  for (const vbdRef of vm['VBDs'] as string[]) {
    if (ctx.db.get('VBD', vbdRef)['userdevice'] === userdevice)
      throw new SimApiError('DEVICE_ALREADY_EXISTS', [userdevice]);
  }
  return ctx.db.insertVbd({
    VM: str(fields['VM']),
    VDI: vdiRef,
    userdevice,
    type: str(fields['type'] ?? 'Disk'),
    mode: str(fields['mode'] ?? 'RW'),
    bootable: fields['bootable'] === true,
    empty: fields['empty'] === true,
    currently_attached: false,
  });
}
