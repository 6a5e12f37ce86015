/**
 * XAPI records a backup reads (xapi.md §2), validated with zod at the edge. Schemas keep unknown
 * fields (XAPI adds fields with every release) and accept 64-bit integers as JSON numbers or
 * decimal strings (which form arrives is to be checked per version, docs/xapi.md).
 */
import { z } from 'zod';
import { XapiError } from './errors.ts';

const ref = z.string();
const stringMap = z.record(z.string(), z.string());
/** A byte count: a JSON number or a decimal string, a safe integer either way. */
const bytes = z
  .union([
    z.number().int().nonnegative(),
    z
      .string()
      .regex(/^\d{1,16}$/)
      .transform(Number),
  ])
  .refine((value) => Number.isSafeInteger(value), 'not a safe integer');

export const vmRecordSchema = z.looseObject({
  uuid: z.string(),
  name_label: z.string(),
  power_state: z.string(),
  is_a_template: z.boolean(),
  is_control_domain: z.boolean(),
  is_a_snapshot: z.boolean(),
  snapshot_of: ref,
  snapshots: z.array(ref),
  snapshot_time: z.string().optional(),
  VBDs: z.array(ref),
  VIFs: z.array(ref),
  other_config: stringMap,
  blocked_operations: stringMap.optional(),
  tags: z.array(z.string()).optional(),
});
export type VmRecord = z.infer<typeof vmRecordSchema>;

export const vbdRecordSchema = z.looseObject({
  uuid: z.string(),
  VM: ref,
  VDI: ref,
  type: z.string(),
  mode: z.string(),
  userdevice: z.string(),
  device: z.string().optional(),
  bootable: z.boolean().optional(),
  empty: z.boolean(),
  currently_attached: z.boolean(),
  other_config: stringMap.optional(),
});
export type VbdRecord = z.infer<typeof vbdRecordSchema>;

export const vdiRecordSchema = z.looseObject({
  uuid: z.string(),
  name_label: z.string(),
  name_description: z.string().optional(),
  SR: ref,
  VBDs: z.array(ref),
  virtual_size: bytes,
  physical_utilisation: bytes.optional(),
  type: z.string(),
  sharable: z.boolean().optional(),
  read_only: z.boolean(),
  other_config: stringMap,
  sm_config: stringMap.optional(),
  is_a_snapshot: z.boolean(),
  snapshot_of: ref,
  snapshots: z.array(ref).optional(),
  snapshot_time: z.string().optional(),
  cbt_enabled: z.boolean().optional(),
  missing: z.boolean().optional(),
  tags: z.array(z.string()).optional(),
});
export type VdiRecord = z.infer<typeof vdiRecordSchema>;

export const srRecordSchema = z.looseObject({
  uuid: z.string(),
  name_label: z.string(),
  type: z.string(),
  content_type: z.string().optional(),
  shared: z.boolean(),
  VDIs: z.array(ref).optional(),
  PBDs: z.array(ref).optional(),
  physical_size: bytes.optional(),
  physical_utilisation: bytes.optional(),
  other_config: stringMap.optional(),
});
export type SrRecord = z.infer<typeof srRecordSchema>;

export const networkRecordSchema = z.looseObject({
  uuid: z.string(),
  name_label: z.string(),
  purpose: z.array(z.string()).optional(),
  PIFs: z.array(ref),
  other_config: stringMap.optional(),
});
export type NetworkRecord = z.infer<typeof networkRecordSchema>;

export const pifRecordSchema = z.looseObject({
  uuid: z.string(),
  network: ref,
  host: ref,
  IP: z.string(),
  IPv6: z.array(z.string()).optional(),
  currently_attached: z.boolean(),
});
export type PifRecord = z.infer<typeof pifRecordSchema>;

export const hostRecordSchema = z.looseObject({
  uuid: z.string(),
  name_label: z.string(),
  hostname: z.string().optional(),
  address: z.string(),
  enabled: z.boolean().optional(),
  PIFs: z.array(ref).optional(),
});
export type HostRecord = z.infer<typeof hostRecordSchema>;

export const nbdInfoSchema = z.looseObject({
  address: z.string(),
  port: z.union([
    z.number().int(),
    z
      .string()
      .regex(/^\d{1,5}$/)
      .transform(Number),
  ]),
  cert: z.string(),
  exportname: z.string(),
  subject: z.string(),
});

/** Validates one record; failures name the class and the field, never the values. */
export function parseRecord<T>(schema: z.ZodType<T>, value: unknown, className: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue === undefined ? '?' : issue.path.join('.');
  throw new XapiError(
    'XAPI_RECORD_INVALID',
    `${className} record has an invalid field ${field}: ${issue?.message ?? 'invalid'}`,
    { details: { className, field } },
  );
}

/** Validates a get_all_records map (ref → record). */
export function parseRecordMap<T>(
  schema: z.ZodType<T>,
  value: unknown,
  className: string,
): Map<string, T> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new XapiError('XAPI_RECORD_INVALID', `${className}.get_all_records is not a map`, {
      details: { className },
    });
  }
  const records = new Map<string, T>();
  for (const [key, record] of Object.entries(value as Record<string, unknown>)) {
    records.set(key, parseRecord(schema, record, className));
  }
  return records;
}
