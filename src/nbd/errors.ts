/** Errors of the NBD layer: connection, handshake, protocol violations and server errno values. */
import { VmdeltaError, type ErrorCatalogue, type VmdeltaErrorOptions } from '../core/index.ts';
import {
  NBD_EINVAL,
  NBD_EIO,
  NBD_ENOMEM,
  NBD_ENOSPC,
  NBD_ENOTSUP,
  NBD_EOVERFLOW,
  NBD_EPERM,
  NBD_ESHUTDOWN,
} from './constants.ts';

export const nbdErrors = {
  NBD_INVALID_URI: 'The NBD URI is malformed or uses an unsupported scheme or parameter.',
  NBD_CONNECT: 'Could not connect to the NBD server (refused, unreachable, or no such socket).',
  NBD_CONNECTION_LOST: 'The NBD connection closed or broke while requests were in flight.',
  NBD_TIMEOUT: 'The NBD server did not answer within the time limit.',
  NBD_PROTOCOL:
    'The NBD server broke the protocol (bad magic, bad length, unknown cookie, ...): the connection was dropped.',
  NBD_HANDSHAKE:
    'The NBD handshake failed (oldstyle server, missing fixed newstyle, option refused).',
  NBD_EXPORT_UNKNOWN: 'The NBD server has no export of that name.',
  NBD_TLS_REQUIRED: 'The NBD server requires TLS: use an nbds:// URI with certificates.',
  NBD_TLS_UNSUPPORTED: 'TLS was requested but the NBD server refused STARTTLS.',
  NBD_TLS_VERIFY:
    'The NBD server certificate was refused (unknown CA, wrong pinned certificate, or wrong name).',
  NBD_TLS_CONFIG: 'The TLS options are incomplete or a certificate file cannot be read.',
  NBD_NOT_SUPPORTED: 'The NBD export does not offer what was asked (command, flag or feature).',
  NBD_META_CONTEXT_UNAVAILABLE:
    'The NBD server does not offer the metadata context (e.g. the dirty bitmap is not exported).',
  NBD_INVALID_REQUEST:
    'A request is outside the export, misaligned, empty or too large (checked before sending).',
  NBD_CLOSED: 'The NBD client was already closed.',
  NBD_EPERM: 'The NBD server refused the operation (EPERM, e.g. a write to a read-only export).',
  NBD_EIO: 'The NBD server reported an I/O error (EIO).',
  NBD_ENOMEM: 'The NBD server ran out of memory (ENOMEM).',
  NBD_EINVAL: 'The NBD server found the request invalid (EINVAL, or an unknown error value).',
  NBD_ENOSPC: 'The NBD server has no space left (ENOSPC).',
  NBD_EOVERFLOW: 'The NBD server refused a request as too large (EOVERFLOW).',
  NBD_ENOTSUP: 'The NBD server does not support the operation (ENOTSUP).',
  NBD_ESHUTDOWN: 'The NBD server is shutting down (ESHUTDOWN).',
} as const satisfies ErrorCatalogue;

export type NbdErrorCode = keyof typeof nbdErrors;

export class NbdError extends VmdeltaError {
  declare readonly code: NbdErrorCode;
  constructor(code: NbdErrorCode, message: string, options?: VmdeltaErrorOptions) {
    super(code, message, options);
  }
}

/** Shorthand for a protocol violation naming the offending field. */
export function protocolError(message: string, field: string): NbdError {
  return new NbdError('NBD_PROTOCOL', message, { details: { field } });
}

const errnoCodes: ReadonlyMap<number, { code: NbdErrorCode; retryable: boolean }> = new Map([
  [NBD_EPERM, { code: 'NBD_EPERM', retryable: false }],
  [NBD_EIO, { code: 'NBD_EIO', retryable: true }],
  [NBD_ENOMEM, { code: 'NBD_ENOMEM', retryable: true }],
  [NBD_EINVAL, { code: 'NBD_EINVAL', retryable: false }],
  [NBD_ENOSPC, { code: 'NBD_ENOSPC', retryable: false }],
  [NBD_EOVERFLOW, { code: 'NBD_EOVERFLOW', retryable: false }],
  [NBD_ENOTSUP, { code: 'NBD_ENOTSUP', retryable: false }],
  [NBD_ESHUTDOWN, { code: 'NBD_ESHUTDOWN', retryable: true }],
]);

/**
 * The typed error for an errno a server returned for one request. Unknown values count as EINVAL
 * (spec); 0 in an error chunk is a server bug and counts as EIO.
 */
export function errnoError(
  errno: number,
  command: string,
  message = '',
  offsetBytes?: number,
): NbdError {
  const known = errnoCodes.get(errno === 0 ? NBD_EIO : errno) ?? {
    code: 'NBD_EINVAL' as const,
    retryable: false,
  };
  const text = message === '' ? '' : `: ${message}`;
  const at = offsetBytes === undefined ? '' : ` at offset ${offsetBytes}`;
  return new NbdError(known.code, `NBD ${command} failed with errno ${errno}${at}${text}`, {
    retryable: known.retryable,
    details: { errno, command, ...(offsetBytes === undefined ? {} : { offsetBytes }) },
  });
}
