/** Validation of a BackupPointRequest, shared by every source. */
import { isPowerOfTwo } from '../core/index.ts';
import { HypervisorError } from './errors.ts';
import { isValidScope, type BackupPointRequest, type DiskPointRequest } from './hypervisor.ts';

export const minBlockSizeBytes = 4096;

/** The disk requests to serve, in request order (all disks when `disks` is undefined). */
export function validatePointRequest(
  request: BackupPointRequest,
  machineDiskIds: readonly string[],
): DiskPointRequest[] {
  if (!isValidScope(request.scope)) {
    throw new HypervisorError(
      'HYPERVISOR_INVALID_REQUEST',
      `scope '${request.scope}' must be 1 to 40 characters of [A-Za-z0-9_-]`,
      { details: { field: 'scope' } },
    );
  }
  if (!isPowerOfTwo(request.blockSizeBytes) || request.blockSizeBytes < minBlockSizeBytes) {
    throw new HypervisorError(
      'HYPERVISOR_INVALID_REQUEST',
      `block size ${request.blockSizeBytes} must be a power of two ≥ ${minBlockSizeBytes}`,
      { details: { field: 'blockSizeBytes' } },
    );
  }
  if (
    request.connections !== undefined &&
    (!Number.isInteger(request.connections) || request.connections < 1)
  ) {
    throw new HypervisorError('HYPERVISOR_INVALID_REQUEST', 'connections must be ≥ 1', {
      details: { field: 'connections' },
    });
  }
  const disks = request.disks ?? machineDiskIds.map((diskId) => ({ diskId }));
  const seen = new Set<string>();
  for (const disk of disks) {
    if (seen.has(disk.diskId)) {
      throw new HypervisorError(
        'HYPERVISOR_INVALID_REQUEST',
        `disk ${disk.diskId} requested twice`,
        {
          details: { field: 'disks', diskId: disk.diskId },
        },
      );
    }
    seen.add(disk.diskId);
    if (!machineDiskIds.includes(disk.diskId)) {
      throw new HypervisorError(
        'HYPERVISOR_DISK_NOT_FOUND',
        `the machine has no disk ${disk.diskId}`,
        {
          details: { diskId: disk.diskId },
        },
      );
    }
  }
  if (disks.length === 0) {
    throw new HypervisorError('HYPERVISOR_INVALID_REQUEST', 'no disk to back up', {
      details: { field: 'disks' },
    });
  }
  return [...disks];
}
