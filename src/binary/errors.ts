/** Errors of the binary layer: reading past the end or writing out of range. */
import { VmdeltaError, type ErrorCatalogue, type VmdeltaErrorOptions } from '../core/index.ts';

export const binaryErrors = {
  BINARY_TRUNCATED: 'A binary structure ended before all of its fields could be read.',
  BINARY_RANGE: 'A value does not fit the binary field it is written to.',
} as const satisfies ErrorCatalogue;

export type BinaryErrorCode = keyof typeof binaryErrors;

export class BinaryError extends VmdeltaError {
  declare readonly code: BinaryErrorCode;
  constructor(code: BinaryErrorCode, message: string, options?: VmdeltaErrorOptions) {
    super(code, message, options);
  }
}
