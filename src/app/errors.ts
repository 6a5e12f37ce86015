/** Errors of the application layer (configuration, registries). */
import { VmdeltaError, type ErrorCatalogue, type VmdeltaErrorOptions } from '../core/index.ts';

export const appErrors = {
  APP_CONFIG_INVALID: 'The configuration file is invalid (the message names the field).',
  APP_REMOTE_NOT_FOUND: 'No remote has this id.',
  APP_SOURCE_NOT_FOUND: 'No hypervisor source has this id.',
  APP_UNSUPPORTED: 'This operation is not available for this kind of source or target.',
} as const satisfies ErrorCatalogue;

export type AppErrorCode = keyof typeof appErrors;

export class AppError extends VmdeltaError {
  declare readonly code: AppErrorCode;
  constructor(code: AppErrorCode, message: string, options?: VmdeltaErrorOptions) {
    super(code, message, options);
  }
}
