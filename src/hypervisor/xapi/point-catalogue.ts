/**
 * Our snapshots on the pool (xapi.md §8, §12): snapshot VMs and VDIs tagged with our keys for one
 * scope (the job and repository lineage) and VM, named `[vmdelta <scope>] <vm>`. Only the
 * references the engine hands back are bases; every other snapshot of the scope is a leftover of
 * an interrupted run (never a base) and is removed, including one that died before its tagging.
 */
import type { PointNotice } from '../hypervisor.ts';
import { OtherConfigKeys } from './constants.ts';
import { getVdiRecord, getVmRecord, listVmDisks } from './inventory.ts';
import { vdiRecordSchema, parseRecord, type VdiRecord, type VmRecord } from './records.ts';
import type { XapiSession } from './session.ts';
import { destroyVdi, releaseSnapshot, type ReleaseOptions } from './snapshots.ts';

export function snapshotLabelPrefix(scope: string): string {
  return `[vmdelta ${scope}] `;
}

export function isOurSnapshotVm(record: VmRecord, scope: string): boolean {
  return (
    record.is_a_snapshot &&
    (record.other_config[OtherConfigKeys.job] === scope ||
      record.name_label.startsWith(snapshotLabelPrefix(scope)))
  );
}

export function isOurVdi(record: VdiRecord, scope: string, vmUuid: string): boolean {
  return (
    record.other_config[OtherConfigKeys.job] === scope &&
    record.other_config[OtherConfigKeys.vm] === vmUuid
  );
}

export interface LeftoverOptions {
  readonly scope: string;
  readonly vmUuid: string;
  readonly vm: VmRecord;
  /** Live disk VDI refs of the VM (their snapshot lists hold orphaned snapshot VDIs). */
  readonly liveVdiRefs: readonly string[];
  /** Snapshot VDI uuids the engine still references: kept. */
  readonly keepVdiUuids: ReadonlySet<string>;
  readonly release: Partial<ReleaseOptions>;
}

/** Our snapshot VMs and VDIs of this scope and VM that no reference uses. */
export async function findLeftovers(
  session: XapiSession,
  options: Omit<LeftoverOptions, 'release'>,
): Promise<{ snapshotVms: string[]; vdis: string[] }> {
  const snapshotVms: string[] = [];
  const kept = new Set<string>();
  for (const ref of options.vm.snapshots) {
    const record = await getVmRecord(session, ref).catch(() => undefined);
    if (record === undefined || !isOurSnapshotVm(record, options.scope)) continue;
    const disks = await listVmDisks(session, record);
    if (disks.some((disk) => options.keepVdiUuids.has(disk.vdi.uuid))) {
      for (const disk of disks) kept.add(disk.vdiRef);
      continue;
    }
    snapshotVms.push(ref);
    for (const disk of disks) kept.add(disk.vdiRef); // released with their VM
  }
  const vdis: string[] = [];
  for (const liveRef of options.liveVdiRefs) {
    const live = await getVdiRecord(session, liveRef);
    for (const ref of live.snapshots ?? []) {
      if (kept.has(ref)) continue;
      const value = await session.call('VDI.get_record', [ref]).catch(() => undefined);
      if (value === undefined) continue;
      const record = parseRecord(vdiRecordSchema, value, 'VDI');
      if (!isOurVdi(record, options.scope, options.vmUuid)) continue;
      if (options.keepVdiUuids.has(record.uuid) || record.VBDs.length > 0) continue;
      vdis.push(ref);
    }
  }
  return { snapshotVms, vdis };
}

/** Removes the leftovers of interrupted runs; returns the notice for the run log, if any. */
export async function removeLeftovers(
  session: XapiSession,
  options: LeftoverOptions,
): Promise<PointNotice | undefined> {
  const { snapshotVms, vdis } = await findLeftovers(session, options);
  for (const ref of snapshotVms) {
    await releaseSnapshot(session, ref, { vdiMode: 'destroy', ...options.release });
  }
  for (const ref of vdis) await destroyVdi(session, ref, options.release);
  if (snapshotVms.length === 0 && vdis.length === 0) return undefined;
  return {
    code: 'LEFTOVERS_REMOVED',
    message: 'Snapshots of an interrupted backup run were removed (never used as a base).',
    details: { snapshotVms: snapshotVms.length, vdis: vdis.length },
  };
}
