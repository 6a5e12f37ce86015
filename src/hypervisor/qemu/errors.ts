/** Errors of the QMP client and the QEMU source. */
import { VmdeltaError, type ErrorCatalogue, type VmdeltaErrorOptions } from '../../core/index.ts';

export const qmpErrors = {
  QMP_CONNECT_FAILED: 'Could not connect to the QMP socket (QEMU not running, wrong path).',
  QMP_PROTOCOL: 'The QMP peer sent something that is not QMP (bad greeting, bad JSON, huge line).',
  QMP_COMMAND_FAILED: 'QEMU refused a QMP command; details carry the error class and text.',
  QMP_TIMEOUT: 'A QMP command or an awaited event did not arrive in time.',
  QMP_DISCONNECTED: 'The QMP connection closed while a command or event was awaited.',
  QMP_UNEXPECTED_REPLY: 'A QMP reply did not have the expected shape.',
} as const satisfies ErrorCatalogue;

export type QmpErrorCode = keyof typeof qmpErrors;

export class QmpError extends VmdeltaError {
  declare readonly code: QmpErrorCode;
  constructor(code: QmpErrorCode, message: string, options?: VmdeltaErrorOptions) {
    super(code, message, options);
  }
}

/** The QMP error class of a failed command (GenericError, DeviceNotFound, ...), if any. */
export function qmpErrorClass(error: unknown): string | undefined {
  if (error instanceof QmpError && error.code === 'QMP_COMMAND_FAILED') {
    const value = error.details['class'];
    return typeof value === 'string' ? value : undefined;
  }
  return undefined;
}

/** The QEMU description of a failed command, if any. */
export function qmpErrorDesc(error: unknown): string {
  if (error instanceof QmpError && error.code === 'QMP_COMMAND_FAILED') {
    const value = error.details['desc'];
    return typeof value === 'string' ? value : '';
  }
  return '';
}
