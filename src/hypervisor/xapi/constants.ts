/**
 * XAPI protocol constants. References: xen-api `doc/content/xen-api/wire-protocol.md` (JSON-RPC,
 * XML-RPC), the datamodel (`ocaml/idl/datamodel*.ml`), `ocaml/xapi/export_raw_vdi.ml`,
 * `import_raw_vdi.ml`, xapi-nbd `ocaml/nbd/src/main.ml`, blktap `drivers/block-log.c`; summarised in
 * the project's shared reference `xapi.md` (section numbers below).
 */

/** JSON-RPC endpoint path (xapi.md §1). */
export const JSONRPC_PATH = '/jsonrpc';
/** The null reference (xapi.md §1). */
export const NULL_REF = 'OpaqueRef:NULL';
/** Originator passed to session.login_with_password (xapi.md §1). */
export const ORIGINATOR = 'vmdelta';
/** API version string passed to login_with_password (only informative for XAPI). */
export const API_VERSION = '1.0';

/** HTTP handler paths (xapi.md §5). */
export const EXPORT_RAW_VDI_PATH = '/export_raw_vdi';
export const IMPORT_RAW_VDI_PATH = '/import_raw_vdi';
/** An export body starting with this is an embedded HTTP error (xen-api #4603, xapi.md §5). */
export const EMBEDDED_ERROR_PREFIX = 'HTTP/';

/** CBT granularity: one bitmap bit per 64 KiB (blktap CBT_BLOCK_SIZE, xapi.md §7). */
export const CBT_BLOCK_BYTES = 65_536;
/** xapi-nbd always listens on this port (xapi.md §6). */
export const XAPI_NBD_PORT = 10_809;
/** network.purpose values (xapi.md §6). */
export const NBD_PURPOSE = 'nbd';
export const INSECURE_NBD_PURPOSE = 'insecure_nbd';

/** XAPI error codes the client reacts to (datamodel `api_errors`). */
export const XapiCodes = {
  HOST_IS_SLAVE: 'HOST_IS_SLAVE',
  SESSION_INVALID: 'SESSION_INVALID',
  SESSION_AUTHENTICATION_FAILED: 'SESSION_AUTHENTICATION_FAILED',
  MESSAGE_PARAMETER_COUNT_MISMATCH: 'MESSAGE_PARAMETER_COUNT_MISMATCH',
  MESSAGE_METHOD_UNKNOWN: 'MESSAGE_METHOD_UNKNOWN',
  HANDLE_INVALID: 'HANDLE_INVALID',
  UUID_INVALID: 'UUID_INVALID',
  VDI_IN_USE: 'VDI_IN_USE',
  VDI_NO_CBT_METADATA: 'VDI_NO_CBT_METADATA',
  NETWORK_INCOMPATIBLE_PURPOSES: 'NETWORK_INCOMPATIBLE_PURPOSES',
  OPERATION_NOT_ALLOWED: 'OPERATION_NOT_ALLOWED',
} as const;

/** Login redirections followed (XO tries twice, xapi.md §1). */
export const MAX_LOGIN_REDIRECTS = 2;
/** HTTP 302 redirections followed by the export/import handlers. */
export const MAX_HTTP_REDIRECTS = 3;

/**
 * Our keys in `other_config` of snapshot VMs and VDIs. Our own prefix, so that Xen Orchestra's
 * `xo:backup:*` keys and ours never mix (xapi.md §8 lists XO's for comparison).
 */
export const OtherConfigKeys = {
  job: 'vmdelta:job',
  vm: 'vmdelta:vm',
  datetime: 'vmdelta:datetime',
  exported: 'vmdelta:exported',
  /** The point id (unique per snapshot). */
  point: 'vmdelta:point',
} as const;

/** VDIs whose name_label starts with this are not backed up (Xen Orchestra's rule, xapi.md §11). */
export const EXCLUDE_NAME_PREFIX = '[NOBAK]';
/** VDIs carrying this tag (VDI.tags) are not backed up either. */
export const EXCLUDE_TAG = 'vmdelta:no-backup';
