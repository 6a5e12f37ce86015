/**
 * Pure encoders of everything the client sends: client flags, options (handshake) and requests
 * (transmission). Reference §3 (handshake), §4 (options), §6 (request format).
 */
import { ByteWriter } from '../binary/index.ts';
import {
  NBD_IHAVEOPT,
  NBD_MAX_STRING_BYTES,
  NBD_OPT_EXPORT_NAME,
  NBD_REQUEST_HEADER_BYTES,
  NBD_REQUEST_MAGIC,
} from './constants.ts';
import { NbdError } from './errors.ts';

function checkedString(value: string, field: string): Buffer {
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length > NBD_MAX_STRING_BYTES || bytes.includes(0)) {
    throw new NbdError(
      'NBD_INVALID_REQUEST',
      `${field} must be at most ${NBD_MAX_STRING_BYTES} bytes of UTF-8 without NUL`,
      { details: { field } },
    );
  }
  return bytes;
}

/** The u32 client flags sent after the server greeting. */
export function encodeClientFlags(clientFlags: number): Buffer {
  return new ByteWriter(4).u32(clientFlags, 'client flags').buffer;
}

/** An option request: IHAVEOPT, option, data length, data. */
export function encodeOption(option: number, data: Buffer = Buffer.alloc(0)): Buffer {
  return new ByteWriter(16 + data.length)
    .u64(NBD_IHAVEOPT, 'magic')
    .u32(option, 'option')
    .u32(data.length, 'option length')
    .bytes(data, 'option data').buffer;
}

/** NBD_OPT_EXPORT_NAME: the data is the bare export name. */
export function encodeExportNameOption(exportName: string): Buffer {
  return encodeOption(NBD_OPT_EXPORT_NAME, checkedString(exportName, 'export name'));
}

/** NBD_OPT_INFO / NBD_OPT_GO: u32 name length, name, u16 count, count × u16 info types. */
export function encodeInfoOption(
  option: number,
  exportName: string,
  infoTypes: readonly number[],
): Buffer {
  const name = checkedString(exportName, 'export name');
  const writer = new ByteWriter(4 + name.length + 2 + 2 * infoTypes.length)
    .u32(name.length, 'name length')
    .bytes(name, 'export name')
    .u16(infoTypes.length, 'info count');
  for (const infoType of infoTypes) writer.u16(infoType, 'info type');
  return encodeOption(option, writer.buffer);
}

/** NBD_OPT_LIST_META_CONTEXT / SET_META_CONTEXT: export name, then the queries. */
export function encodeMetaContextOption(
  option: number,
  exportName: string,
  queries: readonly string[],
): Buffer {
  const name = checkedString(exportName, 'export name');
  const encoded = queries.map((query) => checkedString(query, 'meta context query'));
  const dataBytes = 4 + name.length + 4 + encoded.reduce((sum, q) => sum + 4 + q.length, 0);
  const writer = new ByteWriter(dataBytes)
    .u32(name.length, 'name length')
    .bytes(name, 'export name')
    .u32(encoded.length, 'query count');
  for (const query of encoded) writer.u32(query.length, 'query length').bytes(query, 'query');
  return encodeOption(option, writer.buffer);
}

export interface NbdRequestHeader {
  readonly commandFlags: number;
  readonly command: number;
  /** Cookie: a non-negative safe integer, written as a u64. */
  readonly cookie: number;
  readonly offsetBytes: number;
  readonly lengthBytes: number;
}

/** Writes a 28-byte compact request header into `target` at `at` (no allocation). */
export function encodeRequestHeaderInto(
  target: Buffer,
  at: number,
  header: NbdRequestHeader,
): void {
  if (
    !Number.isSafeInteger(header.offsetBytes) ||
    header.offsetBytes < 0 ||
    !Number.isInteger(header.lengthBytes) ||
    header.lengthBytes < 0 ||
    header.lengthBytes > 0xffffffff ||
    !Number.isSafeInteger(header.cookie) ||
    header.cookie < 0
  ) {
    throw new NbdError('NBD_INVALID_REQUEST', 'request offset, length or cookie out of range', {
      details: { offsetBytes: header.offsetBytes, lengthBytes: header.lengthBytes },
    });
  }
  target.writeUInt32BE(NBD_REQUEST_MAGIC, at);
  target.writeUInt16BE(header.commandFlags, at + 4);
  target.writeUInt16BE(header.command, at + 6);
  target.writeUInt32BE(Math.floor(header.cookie / 0x100000000), at + 8);
  target.writeUInt32BE(header.cookie % 0x100000000, at + 12);
  target.writeUInt32BE(Math.floor(header.offsetBytes / 0x100000000), at + 16);
  target.writeUInt32BE(header.offsetBytes % 0x100000000, at + 20);
  target.writeUInt32BE(header.lengthBytes, at + 24);
}

/** A compact request header as a new 28-byte buffer. */
export function encodeRequestHeader(header: NbdRequestHeader): Buffer {
  const buffer = Buffer.allocUnsafe(NBD_REQUEST_HEADER_BYTES);
  encodeRequestHeaderInto(buffer, 0, header);
  return buffer;
}
