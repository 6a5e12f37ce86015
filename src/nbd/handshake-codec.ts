/**
 * Pure decoders of the handshake (reference §3–§4, checklist §11.1): the server greeting, option
 * reply headers and payloads, the legacy EXPORT_NAME reply. Every length is checked against a cap
 * before anything is allocated; every violation is an NbdError naming the field.
 */
import { ByteReader, BinaryError } from '../binary/index.ts';
import { isPowerOfTwo } from '../core/index.ts';
import {
  NBD_EXPORT_NAME_REPLY_BYTES,
  NBD_FLAG_FIXED_NEWSTYLE,
  NBD_FLAG_HAS_FLAGS,
  NBD_IHAVEOPT,
  NBD_INFO_BLOCK_SIZE,
  NBD_INFO_DESCRIPTION,
  NBD_INFO_EXPORT,
  NBD_INFO_NAME,
  NBD_MAGIC,
  NBD_MAX_OPTION_REPLY_BYTES,
  NBD_MAX_STRING_BYTES,
  NBD_OLDSTYLE_MAGIC,
  NBD_OPTION_REPLY_MAGIC,
} from './constants.ts';
import { NbdError, protocolError } from './errors.ts';

export interface NbdGreeting {
  readonly handshakeFlags: number;
}

export interface NbdOptionReplyHeader {
  readonly option: number;
  readonly replyType: number;
  readonly lengthBytes: number;
}

export interface NbdOptionReply extends NbdOptionReplyHeader {
  readonly payload: Buffer;
}

export interface NbdBlockSizes {
  readonly minimumBytes: number;
  readonly preferredBytes: number;
  readonly maximumPayloadBytes: number;
}

export type NbdInfo =
  | { readonly kind: 'export'; readonly sizeBytes: number; readonly transmissionFlags: number }
  | ({ readonly kind: 'block-size' } & NbdBlockSizes)
  | { readonly kind: 'name'; readonly name: string }
  | { readonly kind: 'description'; readonly description: string }
  | { readonly kind: 'unknown'; readonly infoType: number };

/** Runs a decoder, turning a truncation from the binary reader into a protocol error. */
function decoding<T>(what: string, decode: () => T): T {
  try {
    return decode();
  } catch (error) {
    if (error instanceof BinaryError) {
      throw new NbdError('NBD_PROTOCOL', `${what}: ${error.message}`, {
        cause: error,
        details: error.details,
      });
    }
    throw error;
  }
}

export function decodeGreeting(buffer: Buffer): NbdGreeting {
  return decoding('server greeting', () => {
    const reader = new ByteReader(buffer);
    if (reader.u64('magic') !== NBD_MAGIC) {
      throw new NbdError('NBD_HANDSHAKE', 'not an NBD server (bad NBDMAGIC)', {
        details: { field: 'magic' },
      });
    }
    const second = reader.u64('newstyle magic');
    if (second === NBD_OLDSTYLE_MAGIC) {
      throw new NbdError('NBD_HANDSHAKE', 'oldstyle NBD servers are not supported', {
        details: { field: 'newstyle magic' },
      });
    }
    if (second !== NBD_IHAVEOPT) {
      throw new NbdError('NBD_HANDSHAKE', 'bad newstyle magic (IHAVEOPT expected)', {
        details: { field: 'newstyle magic' },
      });
    }
    const handshakeFlags = reader.u16('handshake flags');
    if ((handshakeFlags & NBD_FLAG_FIXED_NEWSTYLE) === 0) {
      throw new NbdError('NBD_HANDSHAKE', 'the server does not speak fixed newstyle', {
        details: { field: 'handshake flags', handshakeFlags },
      });
    }
    return { handshakeFlags };
  });
}

/** Decodes and checks a 20-byte option reply header: magic, echoed option, length cap. */
export function decodeOptionReplyHeader(
  buffer: Buffer,
  expectedOption: number,
): NbdOptionReplyHeader {
  return decoding('option reply', () => {
    const reader = new ByteReader(buffer);
    if (reader.u64('magic') !== NBD_OPTION_REPLY_MAGIC)
      throw protocolError('bad option reply magic', 'option reply magic');
    const option = reader.u32('option');
    if (option !== expectedOption) {
      throw protocolError(
        `option reply echoes option ${option}, ${expectedOption} was sent`,
        'option',
      );
    }
    const replyType = reader.u32('reply type');
    const lengthBytes = reader.u32('reply length');
    if (lengthBytes > NBD_MAX_OPTION_REPLY_BYTES) {
      throw protocolError(
        `option reply of ${lengthBytes} bytes exceeds the ${NBD_MAX_OPTION_REPLY_BYTES}-byte cap`,
        'reply length',
      );
    }
    return { option, replyType, lengthBytes };
  });
}

function decodeString(reader: ByteReader, lengthBytes: number, field: string): string {
  if (lengthBytes > NBD_MAX_STRING_BYTES)
    throw protocolError(`${field} longer than ${NBD_MAX_STRING_BYTES} bytes`, field);
  return reader.bytes(lengthBytes, field).toString('utf8');
}

/** NBD_REP_INFO payload. Exact lengths for EXPORT (12) and BLOCK_SIZE (14); sane block sizes. */
export function decodeInfoReply(payload: Buffer): NbdInfo {
  return decoding('NBD_REP_INFO', () => {
    const reader = new ByteReader(payload);
    const infoType = reader.u16('info type');
    switch (infoType) {
      case NBD_INFO_EXPORT: {
        if (payload.length !== 12)
          throw protocolError(`INFO_EXPORT is ${payload.length} bytes, not 12`, 'INFO_EXPORT');
        const sizeBytes = reader.u64Number('export size');
        const transmissionFlags = reader.u16('transmission flags');
        if ((transmissionFlags & NBD_FLAG_HAS_FLAGS) === 0)
          throw protocolError('transmission flags lack HAS_FLAGS', 'transmission flags');
        return { kind: 'export', sizeBytes, transmissionFlags };
      }
      case NBD_INFO_BLOCK_SIZE: {
        if (payload.length !== 14) {
          throw protocolError(
            `INFO_BLOCK_SIZE is ${payload.length} bytes, not 14`,
            'INFO_BLOCK_SIZE',
          );
        }
        const minimumBytes = reader.u32('minimum block size');
        const preferredBytes = reader.u32('preferred block size');
        const maximumPayloadBytes = reader.u32('maximum payload');
        checkBlockSizes({ minimumBytes, preferredBytes, maximumPayloadBytes });
        return { kind: 'block-size', minimumBytes, preferredBytes, maximumPayloadBytes };
      }
      case NBD_INFO_NAME:
        return { kind: 'name', name: decodeString(reader, reader.remainingBytes, 'export name') };
      case NBD_INFO_DESCRIPTION:
        return {
          kind: 'description',
          description: decodeString(reader, reader.remainingBytes, 'export description'),
        };
      default:
        return { kind: 'unknown', infoType };
    }
  });
}

/** Block sizes: powers of two, minimum ≤ 64 KiB, preferred ≥ max(minimum, 512), max ≥ preferred. */
export function checkBlockSizes(sizes: NbdBlockSizes): void {
  const { minimumBytes, preferredBytes, maximumPayloadBytes } = sizes;
  const ok =
    isPowerOfTwo(minimumBytes) &&
    minimumBytes <= 65536 &&
    isPowerOfTwo(preferredBytes) &&
    preferredBytes >= Math.max(minimumBytes, 512) &&
    (maximumPayloadBytes === 0xffffffff ||
      (maximumPayloadBytes >= preferredBytes && maximumPayloadBytes % minimumBytes === 0));
  if (!ok) {
    throw new NbdError(
      'NBD_PROTOCOL',
      `insane block sizes: minimum ${minimumBytes}, preferred ${preferredBytes}, maximum ${maximumPayloadBytes}`,
      { details: { field: 'INFO_BLOCK_SIZE', ...sizes } },
    );
  }
}

/** NBD_REP_META_CONTEXT payload: u32 context id, then the context name. */
export function decodeMetaContextReply(payload: Buffer): { contextId: number; name: string } {
  return decoding('NBD_REP_META_CONTEXT', () => {
    const reader = new ByteReader(payload);
    const contextId = reader.u32('context id');
    const name = decodeString(reader, reader.remainingBytes, 'context name');
    return { contextId, name };
  });
}

/** NBD_REP_SERVER payload (OPT_LIST): u32 name length, name, then an optional description. */
export function decodeServerReply(payload: Buffer): { name: string; description: string } {
  return decoding('NBD_REP_SERVER', () => {
    const reader = new ByteReader(payload);
    const nameBytes = reader.u32('name length');
    if (nameBytes > reader.remainingBytes)
      throw protocolError('export name length exceeds the reply', 'name length');
    const name = decodeString(reader, nameBytes, 'export name');
    const description = decodeString(reader, reader.remainingBytes, 'export description');
    return { name, description };
  });
}

/** The legacy NBD_OPT_EXPORT_NAME answer: u64 size, u16 flags (padding handled by the caller). */
export function decodeExportNameReply(buffer: Buffer): {
  sizeBytes: number;
  transmissionFlags: number;
} {
  return decoding('EXPORT_NAME reply', () => {
    const reader = new ByteReader(buffer.subarray(0, NBD_EXPORT_NAME_REPLY_BYTES));
    const sizeBytes = reader.u64Number('export size');
    const transmissionFlags = reader.u16('transmission flags');
    if ((transmissionFlags & NBD_FLAG_HAS_FLAGS) === 0)
      throw protocolError('transmission flags lack HAS_FLAGS', 'transmission flags');
    return { sizeBytes, transmissionFlags };
  });
}
