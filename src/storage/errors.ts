/** Errors of the storage layer (object stores and their wrappers). */
import { VmdeltaError, type ErrorCatalogue, type VmdeltaErrorOptions } from '../core/index.ts';

export const storageErrors = {
  STORAGE_NOT_FOUND: 'The object does not exist on the remote.',
  STORAGE_ALREADY_EXISTS: 'A put-if-absent found the object already there.',
  STORAGE_INVALID_KEY:
    'An object key is malformed (empty segment, "..", leading "/", or not printable ASCII).',
  STORAGE_INVALID_RANGE: 'A ranged read asked for bytes outside the object.',
  STORAGE_IO: 'The remote failed to read or write an object.',
  STORAGE_AUTH:
    'The remote refused the credentials (wrong access key or secret, signature mismatch, or access denied).',
  STORAGE_CONFIG: 'The store configuration is invalid (missing or malformed field).',
  STORAGE_KEY_CONFLICT:
    'On a local folder a key cannot be both an object and the folder of other objects ("a" and "a/b").',
} as const satisfies ErrorCatalogue;

export type StorageErrorCode = keyof typeof storageErrors;

export class StorageError extends VmdeltaError {
  declare readonly code: StorageErrorCode;
  constructor(code: StorageErrorCode, message: string, options?: VmdeltaErrorOptions) {
    super(code, message, options);
  }
}
