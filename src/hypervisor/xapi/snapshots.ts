/**
 * Snapshot helpers (xapi.md §3, §8, §9): VM.snapshot (with `ignore_vdis` where XAPI knows it),
 * tagging the snapshot VM and its VDIs in other_config with our keys, and releasing a snapshot
 * (VM.destroy does not delete disks: each VDI is destroyed or data_destroyed after), retrying
 * VDI_IN_USE with back-off.
 */
import { XapiCodes } from './constants.ts';
import { XapiError, isXapiCode } from './errors.ts';
import { getVmRecord, listVmDisks } from './inventory.ts';
import type { XapiSession } from './session.ts';
import { callAsync } from './tasks.ts';

export interface SnapshotOptions {
  readonly nameLabel: string;
  /** VDI refs left out of the snapshot (xapi ≥ 21.4.0; dropped on older hosts). */
  readonly ignoreVdis?: readonly string[];
  /** other_config keys set on the snapshot VM and each of its VDIs. */
  readonly tags?: Readonly<Record<string, string>>;
  readonly signal?: AbortSignal;
}

export interface SnapshotResult {
  readonly snapshotRef: string;
  /** Snapshot VDI refs, in userdevice order. */
  readonly vdiRefs: readonly string[];
}

/** Sets one other_config key (remove then add: add fails on an existing key). */
export async function setOtherConfigKey(
  session: XapiSession,
  className: 'VM' | 'VDI',
  ref: string,
  key: string,
  value: string,
): Promise<void> {
  await session.call(`${className}.remove_from_other_config`, [ref, key]);
  await session.call(`${className}.add_to_other_config`, [ref, key, value]);
}

export async function snapshotVm(
  session: XapiSession,
  vmRef: string,
  options: SnapshotOptions,
): Promise<SnapshotResult> {
  const wait = options.signal === undefined ? {} : { signal: options.signal };
  let result;
  const ignoreVdis = options.ignoreVdis ?? [];
  try {
    result = await callAsync(
      session,
      'VM.snapshot',
      ignoreVdis.length === 0 ? [vmRef, options.nameLabel] : [vmRef, options.nameLabel, ignoreVdis],
      wait,
    );
  } catch (error) {
    if (ignoreVdis.length === 0 || !isXapiCode(error, XapiCodes.MESSAGE_PARAMETER_COUNT_MISMATCH))
      throw error;
    session.logger.log(
      'warn',
      'XAPI too old for VM.snapshot ignore_vdis: snapshotting every disk',
      {},
    );
    result = await callAsync(session, 'VM.snapshot', [vmRef, options.nameLabel], wait);
  }
  if (typeof result !== 'string' || !result.startsWith('OpaqueRef:')) {
    throw new XapiError('XAPI_PROTOCOL', 'VM.snapshot did not return a VM reference');
  }
  const snapshotRef = result;
  // Snapshots come back flagged as templates (xapi.md §3).
  await session.call('VM.set_is_a_template', [snapshotRef, false]);
  const disks = await listVmDisks(session, await getVmRecord(session, snapshotRef));
  for (const [key, value] of Object.entries(options.tags ?? {})) {
    await setOtherConfigKey(session, 'VM', snapshotRef, key, value);
    for (const disk of disks) await setOtherConfigKey(session, 'VDI', disk.vdiRef, key, value);
  }
  return { snapshotRef, vdiRefs: disks.map((disk) => disk.vdiRef) };
}

export interface ReleaseOptions {
  /** 'destroy' removes the VDIs; 'data_destroy' keeps them as cbt_metadata (CBT purge). */
  readonly vdiMode: 'destroy' | 'data_destroy';
  /** Attempts on VDI_IN_USE (default 5) and first back-off (default 1 s, doubled). */
  readonly attempts?: number;
  readonly backoffMs?: number;
}

/** Runs a VDI operation, retrying VDI_IN_USE; a VDI already gone is success for destroy. */
async function vdiOperation(
  session: XapiSession,
  method: 'VDI.destroy' | 'VDI.data_destroy',
  vdiRef: string,
  options: ReleaseOptions,
): Promise<void> {
  const attempts = options.attempts ?? 5;
  let delayMs = options.backoffMs ?? 1000;
  for (let attempt = 1; ; attempt += 1) {
    try {
      await session.call(method, [vdiRef]);
      return;
    } catch (error) {
      if (method === 'VDI.destroy' && isXapiCode(error, XapiCodes.HANDLE_INVALID)) return;
      if (!isXapiCode(error, XapiCodes.VDI_IN_USE) || attempt >= attempts) throw error;
      session.logger.log('info', 'VDI in use, retrying', { method, attempt, delayMs });
      await session.clock.sleep(delayMs);
      delayMs *= 2;
    }
  }
}

export function destroyVdi(
  session: XapiSession,
  vdiRef: string,
  options?: Partial<ReleaseOptions>,
) {
  return vdiOperation(session, 'VDI.destroy', vdiRef, { vdiMode: 'destroy', ...options });
}

/** Frees a snapshot VDI's data, keeping its CBT log (type becomes cbt_metadata). */
export function dataDestroyVdi(
  session: XapiSession,
  vdiRef: string,
  options?: Partial<ReleaseOptions>,
) {
  return vdiOperation(session, 'VDI.data_destroy', vdiRef, { vdiMode: 'data_destroy', ...options });
}

/** Destroys a snapshot VM, then each of its disks (destroy or data_destroy). */
export async function releaseSnapshot(
  session: XapiSession,
  snapshotRef: string,
  options: ReleaseOptions,
): Promise<void> {
  const snapshot = await getVmRecord(session, snapshotRef);
  if (!snapshot.is_a_snapshot) {
    throw new XapiError(
      'XAPI_PROTOCOL',
      `VM ${snapshot.uuid} is not a snapshot: not destroying it`,
      {
        details: { vm: snapshot.uuid },
      },
    );
  }
  const disks = await listVmDisks(session, snapshot);
  await session.call('VM.destroy', [snapshotRef]);
  for (const disk of disks) {
    await vdiOperation(
      session,
      options.vdiMode === 'destroy' ? 'VDI.destroy' : 'VDI.data_destroy',
      disk.vdiRef,
      options,
    );
  }
}
