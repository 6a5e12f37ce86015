/**
 * VHD unique ids: 16 bytes stored in RFC 4122 byte order (as blktap and XO write them), shown in
 * the usual 8-4-4-4-12 lowercase form.
 */
import { randomUUID } from 'node:crypto';
import { badField } from './errors.ts';

export const NIL_UUID = '00000000-0000-0000-0000-000000000000';
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function formatUuid(bytes: Uint8Array): string {
  const hex = Buffer.from(bytes.buffer, bytes.byteOffset, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export function encodeUuid(uuid: string, field = 'uuid'): Buffer {
  if (!uuidPattern.test(uuid)) throw badField(field, uuid, 'not a UUID');
  return Buffer.from(uuid.replaceAll('-', ''), 'hex');
}

export function newUuid(): string {
  return randomUUID();
}
