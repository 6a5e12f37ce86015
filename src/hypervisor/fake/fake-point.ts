/**
 * The fake's pure parts: tracker names, the key-or-delta decision (same rules and reasons as the
 * QEMU source), folding a tracker back into its base, and the DiskSource of a frozen disk.
 */
import { BlockSet, MemoryDisk, blockCountFor, blockLengthBytes } from '../../disk/index.ts';
import type { DiskSource } from '../../disk/index.ts';
import {
  makeFullReason,
  type DiskInfo,
  type DiskReference,
  type FullReason,
} from '../hypervisor.ts';
import type { FakeDisk, FakeMachine, FakeTracker } from './fake-state.ts';

const trackerPrefix = 'vmdelta-';

export function trackerName(scope: string, pointId: string): string {
  return `${trackerPrefix}${scope}-${pointId}`;
}

export function scopeOfTracker(name: string, scope: string): boolean {
  return new RegExp(`^${trackerPrefix}${scope}-[0-9a-f]{12}$`).test(name);
}

export function planFakeDisk(
  machine: FakeMachine,
  disk: FakeDisk,
  previous: DiskReference | undefined,
  mode: 'auto' | 'key' | undefined,
): FullReason | undefined {
  if (previous === undefined) return makeFullReason('NO_PREVIOUS_REFERENCE');
  if (
    previous.kind !== 'fake' ||
    previous.machineId !== machine.id ||
    previous.diskId !== disk.id
  ) {
    return makeFullReason('REFERENCE_FOREIGN', {
      kind: previous.kind,
      machineId: previous.machineId,
      diskId: previous.diskId,
    });
  }
  if (mode === 'key') return makeFullReason('KEY_REQUESTED');
  if (disk.changeTracker === 'none') return makeFullReason('NO_CHANGE_TRACKER');
  if (previous.sizeBytes !== disk.data.length) {
    return makeFullReason('DISK_RESIZED', {
      previousSizeBytes: previous.sizeBytes,
      sizeBytes: disk.data.length,
    });
  }
  const tracker = disk.trackers.get(previous.token);
  if (tracker === undefined) {
    return previous.diskIdentity === disk.identity
      ? makeFullReason('BITMAP_MISSING', { bitmap: previous.token })
      : makeFullReason('DISK_REPLACED', {
          previousIdentity: previous.diskIdentity,
          identity: disk.identity,
        });
  }
  if (tracker.inconsistent)
    return makeFullReason('BITMAP_INCONSISTENT', { bitmap: previous.token });
  if (!tracker.enabled)
    return makeFullReason('BITMAP_UNRECOGNISED', { bitmap: previous.token, recording: false });
  return undefined;
}

export function diskInfo(disk: FakeDisk): DiskInfo {
  return {
    id: disk.id,
    label: disk.label,
    sizeBytes: disk.data.length,
    identity: disk.identity,
    changeTracker: disk.changeTracker,
    ...(disk.changeTracker === 'none'
      ? {}
      : { changeTrackerGranularityBytes: disk.granularityBytes }),
    format: 'memory',
  };
}

/** Folds tracker `newName` back into `baseName` (enabled again) and removes `newName`. */
export function restoreBase(disk: FakeDisk, newName: string, baseName: string | undefined): void {
  const added = disk.trackers.get(newName);
  disk.trackers.delete(newName);
  if (baseName === undefined) return;
  const base = disk.trackers.get(baseName);
  if (base === undefined) return;
  if (added !== undefined) for (const granule of added.dirty) base.dirty.add(granule);
  base.enabled = true;
}

export function makeSource(
  frozen: Buffer,
  blockSizeBytes: number,
  tracker: FakeTracker | undefined,
): DiskSource {
  const sizeBytes = frozen.length;
  const blockCount = blockCountFor(sizeBytes, blockSizeBytes);
  const data = new Map<number, Buffer>();
  const put = (index: number): void => {
    const offset = index * blockSizeBytes;
    data.set(
      index,
      frozen.subarray(offset, offset + blockLengthBytes(index, sizeBytes, blockSizeBytes)),
    );
  };
  if (tracker === undefined) {
    // Allocation of an in-memory disk: blocks that are not all zeros.
    for (let index = 0; index < blockCount; index += 1) {
      const offset = index * blockSizeBytes;
      const block = frozen.subarray(
        offset,
        offset + blockLengthBytes(index, sizeBytes, blockSizeBytes),
      );
      if (block.some((byte) => byte !== 0)) put(index);
    }
    return new MemoryDisk({ sizeBytes, blockSizeBytes, kind: 'full', data });
  }
  const changed = new BlockSet(blockCount);
  for (const granule of tracker.dirty) {
    changed.addByteRange(
      granule * tracker.granularityBytes,
      Math.min(tracker.granularityBytes, sizeBytes - granule * tracker.granularityBytes),
      blockSizeBytes,
    );
  }
  for (const index of changed) put(index);
  return new MemoryDisk({ sizeBytes, blockSizeBytes, kind: 'delta', data });
}
