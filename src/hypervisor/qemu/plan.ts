/**
 * Key or delta for one disk, from the previous reference and what the disk carries now (pure).
 * A delta needs: a reference of this source, machine, disk and scope; the same size; the bitmap
 * still there, consistent, of the recorded granularity, and recording (or frozen by a point of
 * ours that is being recovered). Anything else is a key backup with the reason.
 */
import { makeFullReason, type DiskPointRequest, type FullReason } from '../hypervisor.ts';
import { isScopeBitmap } from './names.ts';
import type { BitmapInfo } from './qmp-types.ts';

export type DiskPlan =
  | { readonly kind: 'delta'; readonly base: BitmapInfo }
  | { readonly kind: 'full'; readonly reason: FullReason };

export interface PlanInput {
  readonly machineId: string;
  readonly scope: string;
  readonly request: DiskPointRequest;
  readonly disk: {
    readonly id: string;
    readonly identity: string;
    readonly sizeBytes: number;
    readonly bitmaps: readonly BitmapInfo[];
    readonly hasChangeTracker: boolean;
  };
}

export function planDisk(input: PlanInput): DiskPlan {
  const { request, disk } = input;
  const full = (reason: FullReason): DiskPlan => ({ kind: 'full', reason });
  const previous = request.previous;
  if (previous === undefined) return full(makeFullReason('NO_PREVIOUS_REFERENCE'));
  if (
    previous.kind !== 'qemu' ||
    previous.machineId !== input.machineId ||
    previous.diskId !== disk.id ||
    !isScopeBitmap(previous.token, input.scope)
  ) {
    return full(
      makeFullReason('REFERENCE_FOREIGN', {
        kind: previous.kind,
        machineId: previous.machineId,
        diskId: previous.diskId,
        token: previous.token,
      }),
    );
  }
  if (request.mode === 'key') return full(makeFullReason('KEY_REQUESTED'));
  if (!disk.hasChangeTracker) return full(makeFullReason('NO_CHANGE_TRACKER'));
  if (previous.sizeBytes !== disk.sizeBytes) {
    return full(
      makeFullReason('DISK_RESIZED', {
        previousSizeBytes: previous.sizeBytes,
        sizeBytes: disk.sizeBytes,
      }),
    );
  }
  const bitmap = disk.bitmaps.find((b) => b.name === previous.token);
  if (bitmap === undefined) {
    return previous.diskIdentity === disk.identity
      ? full(makeFullReason('BITMAP_MISSING', { bitmap: previous.token }))
      : full(
          makeFullReason('DISK_REPLACED', {
            previousIdentity: previous.diskIdentity,
            identity: disk.identity,
          }),
        );
  }
  if (bitmap.inconsistent) {
    return full(makeFullReason('BITMAP_INCONSISTENT', { bitmap: bitmap.name }));
  }
  const recorded = previous.attributes?.['granularityBytes'];
  if (recorded !== undefined && Number(recorded) !== bitmap.granularityBytes) {
    return full(
      makeFullReason('BITMAP_UNRECOGNISED', {
        bitmap: bitmap.name,
        granularityBytes: bitmap.granularityBytes,
        expectedGranularityBytes: Number(recorded),
      }),
    );
  }
  if (!bitmap.recording) {
    return full(makeFullReason('BITMAP_UNRECOGNISED', { bitmap: bitmap.name, recording: false }));
  }
  return { kind: 'delta', base: bitmap };
}
