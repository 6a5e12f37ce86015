/** Errors of the repository layer: format violations, missing objects, chains, leases. */
import { VmdeltaError, type ErrorCatalogue, type VmdeltaErrorOptions } from '../core/index.ts';

export const repositoryErrors = {
  REPO_NOT_INITIALIZED: 'The remote has no repository config object (run init first).',
  REPO_CONFIG_INVALID: 'The repository config object is malformed or of an unsupported version.',
  REPO_CONFIG_MISMATCH:
    'The repository already exists with different parameters (block size, hash, compression).',
  REPO_MANIFEST_INVALID: 'A restore-point manifest read back from the remote fails validation.',
  REPO_INDEX_CORRUPT: 'An index object has a bad magic, length, field or checksum.',
  REPO_BLOCK_CORRUPT:
    'A block object has a bad magic, length or codec, or its content does not match its hash.',
  REPO_OBJECT_MISSING: 'An object referenced by a committed restore point is absent.',
  REPO_CHAIN_BROKEN: 'The indexes of a chain do not lead from a restore point to a key index.',
  REPO_POINT_NOT_FOUND: 'The restore point (or the disk in it) does not exist.',
  REPO_INVALID_REQUEST: 'A repository operation was called with inconsistent arguments.',
  REPO_LEASE_HELD: 'Another writer holds the lease of this VM.',
  REPO_LEASE_LOST: 'This writer no longer holds the lease it relied on (expired or taken over).',
} as const satisfies ErrorCatalogue;

export type RepositoryErrorCode = keyof typeof repositoryErrors;

export class RepositoryError extends VmdeltaError {
  declare readonly code: RepositoryErrorCode;
  constructor(code: RepositoryErrorCode, message: string, options?: VmdeltaErrorOptions) {
    super(code, message, options);
  }
}
