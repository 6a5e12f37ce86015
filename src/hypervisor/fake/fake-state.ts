/**
 * State of the fake hypervisor: machines whose disks are byte buffers, with named change trackers
 * that behave like QEMU dirty bitmaps (enabled/disabled, granularity, inconsistent flag).
 */
import { KiB } from '../../core/index.ts';
import type { ChangeTrackerKind, PowerState } from '../hypervisor.ts';

export interface FakeTracker {
  enabled: boolean;
  inconsistent: boolean;
  readonly granularityBytes: number;
  /** Dirty granule indexes. */
  readonly dirty: Set<number>;
}

export interface FakeDisk {
  readonly id: string;
  label: string;
  identity: string;
  data: Buffer;
  readonly changeTracker: ChangeTrackerKind;
  readonly granularityBytes: number;
  readonly trackers: Map<string, FakeTracker>;
}

export interface FakeMachine {
  readonly id: string;
  readonly label: string;
  powerState: PowerState;
  readonly disks: Map<string, FakeDisk>;
}

export interface FakeDiskSpec {
  readonly id: string;
  readonly label?: string;
  readonly sizeBytes: number;
  /** 'fake' (default) tracks changes; 'none' forces full reads with NO_CHANGE_TRACKER. */
  readonly changeTracker?: 'fake' | 'none';
  readonly granularityBytes?: number;
  readonly identity?: string;
}

export interface FakeMachineSpec {
  readonly id: string;
  readonly label?: string;
  readonly powerState?: PowerState;
  readonly disks: readonly FakeDiskSpec[];
}

export const defaultGranularityBytes = 64 * KiB;

export function makeFakeMachine(spec: FakeMachineSpec): FakeMachine {
  const disks = new Map<string, FakeDisk>();
  for (const disk of spec.disks) {
    disks.set(disk.id, {
      id: disk.id,
      label: disk.label ?? disk.id,
      identity: disk.identity ?? `fake:${spec.id}/${disk.id}#1`,
      data: Buffer.alloc(disk.sizeBytes),
      changeTracker: disk.changeTracker ?? 'fake',
      granularityBytes: disk.granularityBytes ?? defaultGranularityBytes,
      trackers: new Map(),
    });
  }
  return {
    id: spec.id,
    label: spec.label ?? spec.id,
    powerState: spec.powerState ?? 'running',
    disks,
  };
}

/** Marks the granules touched by [offsetBytes, offsetBytes + lengthBytes) in enabled trackers. */
export function recordWrite(disk: FakeDisk, offsetBytes: number, lengthBytes: number): void {
  if (lengthBytes <= 0) return;
  for (const tracker of disk.trackers.values()) {
    if (!tracker.enabled) continue;
    const first = Math.floor(offsetBytes / tracker.granularityBytes);
    const last = Math.ceil((offsetBytes + lengthBytes) / tracker.granularityBytes);
    for (let granule = first; granule < last; granule += 1) tracker.dirty.add(granule);
  }
}
