/** Errors of the XAPI client (XenServer / XCP-ng): transport, XAPI error replies, HTTP handlers. */
import { VmdeltaError, type ErrorCatalogue, type VmdeltaErrorOptions } from '../../core/index.ts';

export const xapiErrors = {
  XAPI_CALL_FAILED:
    'XAPI answered a call with an error; `xapiCode` and `xapiParams` carry its code and parameters.',
  XAPI_AUTH_FAILED: 'XAPI refused the user name or password (SESSION_AUTHENTICATION_FAILED).',
  XAPI_TRANSPORT:
    'The connection to the XAPI host failed (refused, reset, timed out or bad TLS handshake).',
  XAPI_TLS_PIN_MISMATCH:
    'The XAPI host presented a certificate whose SHA-256 fingerprint is not the pinned one.',
  XAPI_PROTOCOL: 'XAPI sent a reply vmdelta cannot understand (bad JSON-RPC, status or headers).',
  XAPI_XMLRPC_INVALID: 'A task result is not a well-formed XML-RPC value.',
  XAPI_RECORD_INVALID:
    'An XAPI record lacks a field vmdelta needs or has a field of the wrong type.',
  XAPI_TASK_FAILED: 'An XAPI task finished in failure; `xapiCode` carries its error code.',
  XAPI_TASK_CANCELLED: 'An XAPI task was cancelled.',
  XAPI_HTTP_STATUS:
    'An XAPI HTTP handler (export_raw_vdi, import_raw_vdi) answered an error status.',
  XAPI_EMBEDDED_ERROR:
    'An XAPI export answered 200 but its body starts with an HTTP error (xen-api issue #4603).',
  XAPI_STREAM_TRUNCATED: 'An XAPI export stream ended before its announced Content-Length.',
  XAPI_TOO_MANY_REDIRECTS:
    'XAPI redirected too many times (HOST_IS_SLAVE or 302) without reaching a host that answers.',
  XAPI_CBT_BITMAP_INVALID:
    'VDI.list_changed_blocks returned a bitmap that is not base64 or is too short for the disk.',
  XAPI_NO_NBD: 'VDI.get_nbd_info returned no usable NBD endpoint for the disk.',
  XAPI_NBD_CONNECT:
    'No NBD connection to the disk could be opened (every endpoint failed, or 16 connections per host are in use).',
  XAPI_NBD_CERT_NAME:
    'The certificate VDI.get_nbd_info returned does not carry the name it announced as subject.',
  XAPI_UNSUPPORTED:
    'The XAPI source cannot do this (unsupported restore target, block size or stream format).',
} as const satisfies ErrorCatalogue;

export type XapiErrorCode = keyof typeof xapiErrors;

export interface XapiErrorOptions extends VmdeltaErrorOptions {
  /** XAPI's own error code (e.g. VDI_IN_USE), when XAPI reported one. */
  readonly xapiCode?: string;
  /** XAPI's error parameters, with secrets (session refs) already redacted. */
  readonly xapiParams?: readonly string[];
}

export class XapiError extends VmdeltaError {
  declare readonly code: XapiErrorCode;
  readonly xapiCode: string | undefined;
  readonly xapiParams: readonly string[];

  constructor(code: XapiErrorCode, message: string, options: XapiErrorOptions = {}) {
    super(code, message, {
      ...options,
      details: {
        ...(options.details ?? {}),
        ...(options.xapiCode === undefined ? {} : { xapiCode: options.xapiCode }),
        ...(options.xapiParams === undefined ? {} : { xapiParams: options.xapiParams }),
      },
    });
    this.xapiCode = options.xapiCode;
    this.xapiParams = options.xapiParams ?? [];
  }
}

/** True when `error` is an XapiError carrying XAPI code `xapiCode`. */
export function isXapiCode(error: unknown, xapiCode: string): error is XapiError {
  return error instanceof XapiError && error.xapiCode === xapiCode;
}
