/** Errors of the hypervisor layer common to every source (QMP errors: qemu/errors.ts). */
import { VmdeltaError, type ErrorCatalogue, type VmdeltaErrorOptions } from '../core/index.ts';

export const hypervisorErrors = {
  HYPERVISOR_MACHINE_NOT_FOUND: 'No machine with this id on the hypervisor.',
  HYPERVISOR_DISK_NOT_FOUND: 'The machine has no disk with this id.',
  HYPERVISOR_INVALID_REQUEST:
    'A backup or restore request is malformed (scope, block size, duplicate disk...).',
  HYPERVISOR_POINT_CLOSED: 'The backup point was already committed or aborted.',
  HYPERVISOR_MACHINE_BUSY: 'Another backup point of the same machine and scope is still open.',
  HYPERVISOR_MACHINE_RUNNING: 'The operation needs the machine to be stopped.',
  HYPERVISOR_UNSUPPORTED_TARGET: 'This source cannot restore to that kind of target.',
  HYPERVISOR_TARGET_EXISTS: 'The restore target already exists and would be overwritten.',
  HYPERVISOR_SIZE_MISMATCH: 'The restore source and the target disk differ in size.',
  HYPERVISOR_TOOL_FAILED: 'An external tool (qemu-img, qemu-nbd) failed.',
  HYPERVISOR_NBD_SERVER_UNKNOWN:
    'The machine already runs an NBD server at an address vmdelta was not told: configure it (nbdServer).',
  HYPERVISOR_TEARDOWN_FAILED:
    'Some temporary objects of a backup point could not be removed; the next run cleans them up.',
} as const satisfies ErrorCatalogue;

export type HypervisorErrorCode = keyof typeof hypervisorErrors;

export class HypervisorError extends VmdeltaError {
  declare readonly code: HypervisorErrorCode;
  constructor(code: HypervisorErrorCode, message: string, options?: VmdeltaErrorOptions) {
    super(code, message, options);
  }
}
