/**
 * NBD protocol constants. Reference: the NBD protocol specification (NetworkBlockDevice/nbd,
 * doc/proto.md), summarised in the project's NBD reference (§2 constants, §3 handshake, §6 formats,
 * §9 size limits). All integers on the wire are big-endian.
 */

// proto.md "Handshake": magics.
export const NBD_MAGIC = 0x4e42444d41474943n; // "NBDMAGIC"
export const NBD_IHAVEOPT = 0x49484156454f5054n; // "IHAVEOPT"
export const NBD_OLDSTYLE_MAGIC = 0x00420281861253n; // refused: oldstyle handshake
export const NBD_OPTION_REPLY_MAGIC = 0x0003e889045565a9n;

// proto.md "Transmission": request and reply magics.
export const NBD_REQUEST_MAGIC = 0x25609513;
export const NBD_SIMPLE_REPLY_MAGIC = 0x67446698;
export const NBD_STRUCTURED_REPLY_MAGIC = 0x668e33ef;
export const NBD_EXTENDED_REPLY_MAGIC = 0x6e8a278c;

// Handshake flags (server, u16) and client flags (u32).
export const NBD_FLAG_FIXED_NEWSTYLE = 1 << 0;
export const NBD_FLAG_NO_ZEROES = 1 << 1;
export const NBD_FLAG_C_FIXED_NEWSTYLE = 1 << 0;
export const NBD_FLAG_C_NO_ZEROES = 1 << 1;

// Options (proto.md "Option types").
export const NBD_OPT_EXPORT_NAME = 1;
export const NBD_OPT_ABORT = 2;
export const NBD_OPT_LIST = 3;
export const NBD_OPT_STARTTLS = 5;
export const NBD_OPT_INFO = 6;
export const NBD_OPT_GO = 7;
export const NBD_OPT_STRUCTURED_REPLY = 8;
export const NBD_OPT_LIST_META_CONTEXT = 9;
export const NBD_OPT_SET_META_CONTEXT = 10;

// Option reply types (proto.md "Option reply types"); bit 31 set = error.
export const NBD_REP_ACK = 1;
export const NBD_REP_SERVER = 2;
export const NBD_REP_INFO = 3;
export const NBD_REP_META_CONTEXT = 4;
export const NBD_REP_FLAG_ERROR = 0x80000000;
export const NBD_REP_ERR_UNSUP = 0x80000001;
export const NBD_REP_ERR_POLICY = 0x80000002;
export const NBD_REP_ERR_INVALID = 0x80000003;
export const NBD_REP_ERR_PLATFORM = 0x80000004;
export const NBD_REP_ERR_TLS_REQD = 0x80000005;
export const NBD_REP_ERR_UNKNOWN = 0x80000006;
export const NBD_REP_ERR_SHUTDOWN = 0x80000007;
export const NBD_REP_ERR_BLOCK_SIZE_REQD = 0x80000008;
export const NBD_REP_ERR_TOO_BIG = 0x80000009;
export const NBD_REP_ERR_EXT_HEADER_REQD = 0x8000000a;

// NBD_REP_INFO types.
export const NBD_INFO_EXPORT = 0;
export const NBD_INFO_NAME = 1;
export const NBD_INFO_DESCRIPTION = 2;
export const NBD_INFO_BLOCK_SIZE = 3;

// Transmission flags (u16).
export const NBD_FLAG_HAS_FLAGS = 1 << 0;
export const NBD_FLAG_READ_ONLY = 1 << 1;
export const NBD_FLAG_SEND_FLUSH = 1 << 2;
export const NBD_FLAG_SEND_FUA = 1 << 3;
export const NBD_FLAG_ROTATIONAL = 1 << 4;
export const NBD_FLAG_SEND_TRIM = 1 << 5;
export const NBD_FLAG_SEND_WRITE_ZEROES = 1 << 6;
export const NBD_FLAG_SEND_DF = 1 << 7;
export const NBD_FLAG_CAN_MULTI_CONN = 1 << 8;
export const NBD_FLAG_SEND_RESIZE = 1 << 9;
export const NBD_FLAG_SEND_CACHE = 1 << 10;
export const NBD_FLAG_SEND_FAST_ZERO = 1 << 11;

/** Transmission flag names, for `nbd info`. */
export const NBD_TRANSMISSION_FLAG_NAMES: readonly (readonly [number, string])[] = [
  [NBD_FLAG_HAS_FLAGS, 'has_flags'],
  [NBD_FLAG_READ_ONLY, 'read_only'],
  [NBD_FLAG_SEND_FLUSH, 'send_flush'],
  [NBD_FLAG_SEND_FUA, 'send_fua'],
  [NBD_FLAG_ROTATIONAL, 'rotational'],
  [NBD_FLAG_SEND_TRIM, 'send_trim'],
  [NBD_FLAG_SEND_WRITE_ZEROES, 'send_write_zeroes'],
  [NBD_FLAG_SEND_DF, 'send_df'],
  [NBD_FLAG_CAN_MULTI_CONN, 'can_multi_conn'],
  [NBD_FLAG_SEND_RESIZE, 'send_resize'],
  [NBD_FLAG_SEND_CACHE, 'send_cache'],
  [NBD_FLAG_SEND_FAST_ZERO, 'send_fast_zero'],
];

// Commands (proto.md "Request types").
export const NBD_CMD_READ = 0;
export const NBD_CMD_WRITE = 1;
export const NBD_CMD_DISC = 2;
export const NBD_CMD_FLUSH = 3;
export const NBD_CMD_TRIM = 4;
export const NBD_CMD_CACHE = 5;
export const NBD_CMD_WRITE_ZEROES = 6;
export const NBD_CMD_BLOCK_STATUS = 7;

// Command flags (u16).
export const NBD_CMD_FLAG_FUA = 1 << 0;
export const NBD_CMD_FLAG_NO_HOLE = 1 << 1;
export const NBD_CMD_FLAG_DF = 1 << 2;
export const NBD_CMD_FLAG_REQ_ONE = 1 << 3;
export const NBD_CMD_FLAG_FAST_ZERO = 1 << 4;

// Structured reply chunks (proto.md "Structured reply chunk message types").
export const NBD_REPLY_FLAG_DONE = 1 << 0;
export const NBD_REPLY_TYPE_NONE = 0;
export const NBD_REPLY_TYPE_OFFSET_DATA = 1;
export const NBD_REPLY_TYPE_OFFSET_HOLE = 2;
export const NBD_REPLY_TYPE_BLOCK_STATUS = 5;
export const NBD_REPLY_TYPE_ERROR = 0x8001;
export const NBD_REPLY_TYPE_ERROR_OFFSET = 0x8002;
export const NBD_REPLY_TYPE_ERROR_BIT = 0x8000;

// Errno values carried on the wire (proto.md "Error values"); unknown values count as EINVAL.
export const NBD_EPERM = 1;
export const NBD_EIO = 5;
export const NBD_ENOMEM = 12;
export const NBD_EINVAL = 22;
export const NBD_ENOSPC = 28;
export const NBD_EOVERFLOW = 75;
export const NBD_ENOTSUP = 95;
export const NBD_ESHUTDOWN = 108;

// Metadata contexts (proto.md "Metadata querying"; QEMU interop/nbd.rst).
export const NBD_CONTEXT_BASE_ALLOCATION = 'base:allocation';
export const NBD_CONTEXT_DIRTY_BITMAP_PREFIX = 'qemu:dirty-bitmap:';
export const NBD_STATE_HOLE = 1 << 0;
export const NBD_STATE_ZERO = 1 << 1;
export const NBD_STATE_DIRTY = 1 << 0;

// Fixed sizes in bytes.
export const NBD_GREETING_BYTES = 18;
export const NBD_OPTION_REPLY_HEADER_BYTES = 20;
export const NBD_REQUEST_HEADER_BYTES = 28;
export const NBD_SIMPLE_REPLY_BYTES = 16;
export const NBD_STRUCTURED_HEADER_BYTES = 20;
/** EXPORT_NAME success: u64 size + u16 flags (+ 124 zero bytes unless NO_ZEROES). */
export const NBD_EXPORT_NAME_REPLY_BYTES = 10;
export const NBD_EXPORT_NAME_PADDING_BYTES = 124;

// Limits (proto.md "Size constraints"; reference §9, §11).
/** Strings on the wire MUST be at most 4096 bytes. */
export const NBD_MAX_STRING_BYTES = 4096;
/** Our cap on any option reply payload (reference §3 recommends 64 KiB). */
export const NBD_MAX_OPTION_REPLY_BYTES = 64 * 1024;
/** Without INFO_BLOCK_SIZE: reads and writes up to 32 MiB, 512-byte alignment advised. */
export const NBD_DEFAULT_MAX_PAYLOAD_BYTES = 32 * 1024 * 1024;
export const NBD_DEFAULT_MIN_BLOCK_BYTES = 1;
export const NBD_DEFAULT_PREFERRED_BLOCK_BYTES = 4096;
/** Our hard ceiling per request, whatever the server advertises (reference §9). */
export const NBD_HARD_MAX_PAYLOAD_BYTES = 32 * 1024 * 1024;
/** At most 2^20 extents in one BLOCK_STATUS chunk. */
export const NBD_MAX_EXTENTS_PER_CHUNK = 1 << 20;
/** Cap on a structured chunk payload beyond the data it carries (offset header, error text). */
export const NBD_CHUNK_OVERHEAD_BYTES = 8 + 6 + NBD_MAX_STRING_BYTES;
/** Largest length field of a request (u32). */
export const NBD_MAX_REQUEST_LENGTH = 0xffffffff;
