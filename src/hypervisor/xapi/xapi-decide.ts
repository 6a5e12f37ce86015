/**
 * Key or delta for one disk of an XAPI point, and from which base (docs/xapi.md §10 and §12.6):
 * the previous reference must be ours (same VM, disk, scope), its VDI unchanged in identity and
 * size, its base snapshot still there and tagged by us; the CBT bitmap between base and snapshot
 * says what changed, or why it cannot (a purged base without CBT forces a key).
 */
import { describeError } from '../../core/index.ts';
import {
  makeFullReason,
  type DiskInfo,
  type DiskReference,
  type FullReason,
} from '../hypervisor.ts';
import type { CbtBitmap } from './cbt-bitmap.ts';
import { listChangedBlocks } from './cbt.ts';
import { OtherConfigKeys, XapiCodes } from './constants.ts';
import { isXapiCode } from './errors.ts';
import { getVdiRecord, type VmDisk } from './inventory.ts';
import type { DiskBase } from './point-source.ts';
import type { XapiSession } from './session.ts';

export interface DecideInput {
  readonly scope: string;
  readonly machineId: string;
  readonly info: DiskInfo;
  readonly request: { readonly previous?: DiskReference; readonly mode?: 'auto' | 'key' };
  /** The disk in the new snapshot. */
  readonly snap: VmDisk;
  /** Whether CBT was on for the live disk before this point (enabling it now tracks nothing). */
  readonly cbtWasOn: boolean;
}

export interface XapiDiskDecision {
  readonly base?: DiskBase;
  readonly fullReason?: FullReason;
  readonly cbt?: CbtBitmap | FullReason;
}

export async function decideXapiDisk(
  session: XapiSession,
  input: DecideInput,
): Promise<XapiDiskDecision> {
  const { scope, machineId, info, request, snap, cbtWasOn } = input;
  const previous = request.previous;
  if (previous === undefined) return { fullReason: makeFullReason('NO_PREVIOUS_REFERENCE') };
  if (request.mode === 'key') return { fullReason: makeFullReason('KEY_REQUESTED') };
  if (
    previous.kind !== 'xapi' ||
    previous.machineId !== machineId ||
    previous.diskId !== info.id ||
    (previous.attributes?.['scope'] ?? scope) !== scope
  ) {
    return {
      fullReason: makeFullReason('REFERENCE_FOREIGN', {
        kind: previous.kind,
        machineId: previous.machineId,
        diskId: previous.diskId,
      }),
    };
  }
  if (previous.diskIdentity !== info.identity) {
    const stillThere = await session
      .call('VDI.get_by_uuid', [previous.diskIdentity])
      .then(() => true)
      .catch(() => false);
    return {
      fullReason: makeFullReason(stillThere ? 'DISK_REPLACED' : 'VDI_MIGRATED', {
        previousVdi: previous.diskIdentity,
        currentVdi: info.identity,
      }),
    };
  }
  if (previous.sizeBytes !== info.sizeBytes) {
    return {
      fullReason: makeFullReason('DISK_RESIZED', {
        previousSizeBytes: previous.sizeBytes,
        sizeBytes: info.sizeBytes,
      }),
    };
  }
  let baseRef: string;
  try {
    baseRef = String(await session.call('VDI.get_by_uuid', [previous.token]));
  } catch (error) {
    if (!isXapiCode(error, XapiCodes.UUID_INVALID)) throw error;
    return { fullReason: makeFullReason('BASE_MISSING', { base: previous.token }) };
  }
  const baseRecord = await getVdiRecord(session, baseRef);
  if (
    baseRecord.other_config[OtherConfigKeys.job] !== scope ||
    baseRecord.other_config[OtherConfigKeys.vm] !== machineId
  ) {
    return {
      fullReason: makeFullReason('REFERENCE_FOREIGN', { base: previous.token }),
    };
  }
  const base: DiskBase = {
    ref: baseRef,
    uuid: baseRecord.uuid,
    purged: baseRecord.type === 'cbt_metadata',
  };
  let cbt: CbtBitmap | FullReason;
  if (!cbtWasOn || baseRecord.cbt_enabled !== true || snap.vdi.cbt_enabled !== true) {
    cbt = makeFullReason('CBT_DISABLED', {
      live: cbtWasOn,
      base: baseRecord.cbt_enabled === true,
      snapshot: snap.vdi.cbt_enabled === true,
    });
  } else {
    try {
      cbt = await listChangedBlocks(session, baseRef, snap.vdiRef, info.sizeBytes);
    } catch (error) {
      cbt = makeFullReason('CBT_FAILED', { error: describeError(error) });
    }
  }
  if (base.purged && 'code' in cbt) return { fullReason: cbt, cbt };
  return { base, cbt };
}
