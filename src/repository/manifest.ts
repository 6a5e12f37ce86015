/**
 * Restore-point manifests (docs/design.md §4.6): one JSON object per VM restore point, written
 * last (the commit point). Read back through the schema: the remote is untrusted input.
 */
import { z } from 'zod';
import { CHAIN_ID_PATTERN, FORMAT_VERSION, ID_PATTERN, MAX_SEQ } from './constants.ts';
import { RepositoryError } from './errors.ts';

const idSchema = z.string().regex(ID_PATTERN);
const jsonObject = z.record(z.string(), z.unknown());

export const diskEntrySchema = z
  .object({
    diskId: idSchema,
    name: z.string().max(1024).optional(),
    chainId: z.string().regex(CHAIN_ID_PATTERN),
    seq: z.number().int().min(0).max(MAX_SEQ),
    /** What was written by this backup (a later merge may turn it into a key; the chain decides). */
    writtenAs: z.enum(['key', 'delta']),
    baseSeq: z.number().int().min(0).max(MAX_SEQ).nullable(),
    /** Backups written to this chain since its key, this one included, merged ones too (1 for a key). */
    chainLength: z.number().int().min(1),
    sizeBytes: z.number().int().nonnegative(),
    blockSizeBytes: z.number().int().positive(),
    /** Blocks the source declared (changed blocks of a delta, present blocks of a full read). */
    sourceBlockCount: z.number().int().nonnegative(),
    /** Index entries written (blocks that differ from the base, zero blocks included). */
    indexEntryCount: z.number().int().nonnegative(),
    /** New block objects stored, and their bytes after compression. */
    storedBlockCount: z.number().int().nonnegative(),
    storedBytes: z.number().int().nonnegative(),
    sourceReferenceId: z.string().max(1024).nullable(),
    /** Opaque facts of the transport (NBD or export stream, connections, fallbacks, why). */
    transport: jsonObject,
  })
  .strict();

export const pointManifestSchema = z
  .object({
    format: z.literal('vmdelta-point'),
    formatVersion: z.literal(FORMAT_VERSION),
    vmId: idSchema,
    pointId: idSchema,
    createdMs: z.number().int().nonnegative(),
    jobId: z.string().max(256).nullable(),
    scheduleId: z.string().max(256).nullable(),
    /** Opaque VM metadata (name, hypervisor, memory, CPUs, description...). */
    vm: jsonObject,
    disks: z.array(diskEntrySchema).min(1),
  })
  .strict()
  .superRefine((value, context) => {
    const ids = new Set(value.disks.map((disk) => disk.diskId));
    if (ids.size !== value.disks.length) {
      context.addIssue({ code: 'custom', message: 'duplicate diskId', path: ['disks'] });
    }
  });

export type PointManifest = z.infer<typeof pointManifestSchema>;
export type DiskEntry = z.infer<typeof diskEntrySchema>;

export function parsePointManifest(key: string, body: Buffer): PointManifest {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch (cause) {
    throw new RepositoryError('REPO_MANIFEST_INVALID', `${key}: not JSON`, {
      cause,
      details: { key },
    });
  }
  const parsed = pointManifestSchema.safeParse(value);
  if (!parsed.success) {
    throw new RepositoryError('REPO_MANIFEST_INVALID', `${key}: ${parsed.error.message}`, {
      details: { key, issues: parsed.error.issues.map((issue) => issue.path.join('.')) },
    });
  }
  return parsed.data;
}

export function formatPointManifest(manifest: PointManifest): Buffer {
  return Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`);
}
