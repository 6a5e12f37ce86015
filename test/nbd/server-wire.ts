/**
 * Server-side NBD encoders for tests only: the bytes a server sends (greeting, option replies,
 * simple replies, structured chunks). Written from the spec, independent of src/nbd's decoders,
 * so the tests check the decoders against an independent encoding.
 */

function u16(value: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(value);
  return b;
}
function u32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value >>> 0);
  return b;
}
function u64(value: number | bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(value));
  return b;
}

export const wire = { u16, u32, u64 };

export function greeting(handshakeFlags = 3): Buffer {
  return Buffer.concat([Buffer.from('NBDMAGIC'), Buffer.from('IHAVEOPT'), u16(handshakeFlags)]);
}

export function optionReply(
  option: number,
  replyType: number,
  payload: Buffer = Buffer.alloc(0),
): Buffer {
  return Buffer.concat([
    u64(0x0003e889045565a9n),
    u32(option),
    u32(replyType),
    u32(payload.length),
    payload,
  ]);
}

export function infoExport(sizeBytes: number, flags: number): Buffer {
  return Buffer.concat([u16(0), u64(sizeBytes), u16(flags)]);
}

export function infoBlockSize(minimum: number, preferred: number, maximum: number): Buffer {
  return Buffer.concat([u16(3), u32(minimum), u32(preferred), u32(maximum)]);
}

export function metaContext(id: number, name: string): Buffer {
  return Buffer.concat([u32(id), Buffer.from(name)]);
}

export function simpleReply(cookie: number, errno = 0, data?: Buffer): Buffer {
  return Buffer.concat([u32(0x67446698), u32(errno), u64(cookie), data ?? Buffer.alloc(0)]);
}

export function chunk(cookie: number, type: number, payload: Buffer, done: boolean): Buffer {
  return Buffer.concat([
    u32(0x668e33ef),
    u16(done ? 1 : 0),
    u16(type),
    u64(cookie),
    u32(payload.length),
    payload,
  ]);
}

export function dataChunk(
  cookie: number,
  offsetBytes: number,
  data: Buffer,
  done: boolean,
): Buffer {
  return chunk(cookie, 1, Buffer.concat([u64(offsetBytes), data]), done);
}

export function holeChunk(
  cookie: number,
  offsetBytes: number,
  lengthBytes: number,
  done: boolean,
): Buffer {
  return chunk(cookie, 2, Buffer.concat([u64(offsetBytes), u32(lengthBytes)]), done);
}

export function blockStatusChunk(
  cookie: number,
  contextId: number,
  extents: readonly (readonly [number, number])[],
  done: boolean,
): Buffer {
  return chunk(
    cookie,
    5,
    Buffer.concat([u32(contextId), ...extents.flatMap(([l, f]) => [u32(l), u32(f)])]),
    done,
  );
}

export function errorChunk(
  cookie: number,
  errno: number,
  message: string,
  done: boolean,
  offsetBytes?: number,
): Buffer {
  const text = Buffer.from(message);
  const parts = [u32(errno), u16(text.length), text];
  if (offsetBytes !== undefined) parts.push(u64(offsetBytes));
  return chunk(cookie, offsetBytes === undefined ? 0x8001 : 0x8002, Buffer.concat(parts), done);
}

export function noneChunk(cookie: number): Buffer {
  return chunk(cookie, 0, Buffer.alloc(0), true);
}

/** Every way of cutting `bytes` in two, plus byte-by-byte. */
export function* splits(bytes: Buffer): Generator<Buffer[]> {
  for (let at = 0; at <= bytes.length; at += 1) yield [bytes.subarray(0, at), bytes.subarray(at)];
  yield Array.from({ length: bytes.length }, (_, i) => bytes.subarray(i, i + 1));
}
