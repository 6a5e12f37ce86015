/**
 * Errors of the service's HTTP API. Each answer carries `{ error: { code, message } }`; the codes
 * below are the API's own (typed errors of lower layers keep their codes, mapped to HTTP statuses
 * by `statusForCode`). `INTERNAL` (core) answers anything unexpected, without details.
 */
import type { ErrorCatalogue } from '../core/index.ts';
import type { JobErrorCode } from '../jobs/index.ts';

export const serverErrors = {
  UNAUTHORIZED:
    'Not logged in, a wrong user or password, an expired session or an unknown API token (HTTP 401).',
  BODY_INVALID:
    'The request body is not JSON, not sent as application/json (HTTP 415), or a field is invalid; the message names the field (HTTP 400).',
  BODY_TOO_LARGE: 'The request body is above 1 MiB (HTTP 413).',
  METHOD_NOT_ALLOWED: 'The path exists but not with this HTTP method (HTTP 405).',
  NOT_FOUND: 'No such API route or page (HTTP 404).',
  RUN_NOT_FOUND: 'No run has this id, or none queued or running to cancel (HTTP 404).',
  RUN_CANCELLED: 'The run was cancelled while it waited in the queue.',
  REMOTE_IN_USE: 'A job still writes to this remote: remove it from the jobs first (HTTP 409).',
} as const satisfies ErrorCatalogue;

export type ServerErrorCode = keyof typeof serverErrors | JobErrorCode | 'INTERNAL';
