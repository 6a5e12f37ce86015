/**
 * What the repositories of a job's remotes know about one machine: each remote's newest restore
 * point, per disk its chain facts, and the hypervisor reference the newest backup was taken from
 * (stored in the manifest's VM metadata under `references`, since the repository and this
 * catalogue are the source of truth: references the repository does not know are strays).
 */
import type { DiskReference } from '../hypervisor/index.ts';
import type { PointManifest, Repository } from '../repository/index.ts';
import type { RemoteDiskState } from './backup-decision.ts';

export interface RemoteTarget {
  readonly id: string;
  readonly repository: Repository;
}

export interface RemoteMachineState {
  readonly remote: RemoteTarget;
  readonly last: PointManifest | undefined;
}

export async function readRemoteState(
  remote: RemoteTarget,
  vmId: string,
): Promise<RemoteMachineState> {
  const points = await remote.repository.listPoints(vmId);
  return { remote, last: points.at(-1) };
}

export function diskStateOn(state: RemoteMachineState, diskId: string): RemoteDiskState {
  const entry = state.last?.disks.find((disk) => disk.diskId === diskId);
  if (entry === undefined) return { remoteId: state.remote.id };
  return {
    remoteId: state.remote.id,
    last: {
      sourceReference: entry.sourceReferenceId ?? undefined,
      sizeBytes: entry.sizeBytes,
      chainBackupCount: entry.chainLength,
    },
  };
}

function referencesOf(manifest: PointManifest): Record<string, unknown> {
  const refs = manifest.vm['references'];
  return typeof refs === 'object' && refs !== null ? (refs as Record<string, unknown>) : {};
}

function isReference(value: unknown): value is DiskReference {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v['kind'] === 'string' &&
    typeof v['machineId'] === 'string' &&
    typeof v['diskId'] === 'string' &&
    typeof v['token'] === 'string' &&
    typeof v['sizeBytes'] === 'number' &&
    typeof v['diskIdentity'] === 'string' &&
    typeof v['createdAtMs'] === 'number'
  );
}

/** The reference of the newest restore point of `diskId` on any remote, if it recorded one. */
export function newestReference(
  states: readonly RemoteMachineState[],
  diskId: string,
): DiskReference | undefined {
  let best: { createdMs: number; reference: DiskReference } | undefined;
  for (const { last } of states) {
    if (last === undefined) continue;
    const candidate = referencesOf(last)[diskId];
    if (!isReference(candidate)) continue;
    if (best === undefined || last.createdMs > best.createdMs)
      best = { createdMs: last.createdMs, reference: candidate };
  }
  return best?.reference;
}
