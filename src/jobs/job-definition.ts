/**
 * The incremental backup job as users define it. Setting names follow Xen Orchestra's where its
 * users already know them (fullInterval, preferNbd, nbdConcurrency, concurrency, maxExportRate,
 * timeout, exportRetention, reportWhen). Validated with zod at every edge (config file, HTTP body,
 * job store); `parseJobDefinition` fills defaults and names the offending field on error.
 */
import { z } from 'zod';
import { JobError } from './errors.ts';

const idSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, ".", "_" and "-" only');

export const longTermRetentionSchema = z
  .object({
    daily: z.number().int().min(0).default(0),
    weekly: z.number().int().min(0).default(0),
    monthly: z.number().int().min(0).default(0),
    yearly: z.number().int().min(0).default(0),
  })
  .strict();

export const scheduleSchema = z
  .object({
    id: idSchema,
    name: z.string().max(200).optional(),
    /** Cron expression (5 or 6 fields), evaluated in `timezone`. */
    cron: z.string().min(1),
    timezone: z.string().default('UTC'),
    enabled: z.boolean().default(true),
    /** Restore points kept per remote for this schedule (Xen Orchestra's exportRetention). */
    exportRetention: z.number().int().min(1).max(10_000),
    longTermRetention: longTermRetentionSchema.optional(),
    /** Every run of this schedule is a key backup (Xen Orchestra's "force full" schedule). */
    forceFull: z.boolean().default(false),
  })
  .strict();

export const machineSelectorSchema = z
  .object({
    /** Machine ids as the source lists them. */
    ids: z.array(z.string().min(1)).default([]),
    /** Glob on machine names: `*` any characters, `?` one character. */
    namePattern: z.string().optional(),
    /** Machines carrying every one of these tags. */
    tags: z.array(z.string().min(1)).default([]),
    /** Machines carrying any of these tags are never backed up. */
    excludeTags: z.array(z.string().min(1)).default(['vmdelta:no-bak', 'xo:no-bak']),
  })
  .strict()
  .refine((s) => s.ids.length > 0 || s.namePattern !== undefined || s.tags.length > 0, {
    message: 'select machines by ids, namePattern or tags',
  });

export const jobSettingsSchema = z
  .object({
    /** Key backup interval: N gives one key then N-1 deltas; 0 never forces a key. */
    fullInterval: z.number().int().min(0).default(20),
    /** Read disks over NBD when the source offers it (else the source's export stream). */
    preferNbd: z.boolean().default(true),
    /** NBD connections per disk. */
    nbdConcurrency: z.number().int().min(1).max(16).default(2),
    /** Machines backed up in parallel (0 = unlimited). */
    concurrency: z.number().int().min(0).default(2),
    /** Disks in parallel per machine (0 = unlimited). */
    diskPerVmConcurrency: z.number().int().min(0).default(0),
    /** Read rate limit in bytes per second per run (0 = unlimited). */
    maxExportRate: z.number().int().min(0).default(0),
    /** Run time limit in milliseconds (0 = none). */
    timeout: z.number().int().min(0).default(0),
    /** When the webhook (if any) is called. */
    reportWhen: z.enum(['always', 'failure', 'never']).default('failure'),
    webhookUrl: z.url().optional(),
  })
  .strict();

export const jobDefinitionSchema = z
  .object({
    id: idSchema,
    name: z.string().min(1).max(200),
    /** The hypervisor source (from the configuration) the machines live on. */
    source: idSchema,
    machines: machineSelectorSchema,
    /** Remote ids: every backup is written to each of them. */
    remotes: z.array(idSchema).min(1),
    schedules: z.array(scheduleSchema).default([]),
    settings: jobSettingsSchema.default(jobSettingsSchema.parse({})),
  })
  .strict()
  .superRefine((job, ctx) => {
    const ids = new Set<string>();
    for (const schedule of job.schedules) {
      if (ids.has(schedule.id))
        ctx.addIssue({
          code: 'custom',
          message: `duplicate schedule id ${schedule.id}`,
          path: ['schedules'],
        });
      ids.add(schedule.id);
    }
    if (new Set(job.remotes).size !== job.remotes.length) {
      ctx.addIssue({ code: 'custom', message: 'a remote is listed twice', path: ['remotes'] });
    }
  });

export type JobDefinition = z.infer<typeof jobDefinitionSchema>;
export type JobSettings = z.infer<typeof jobSettingsSchema>;
export type Schedule = z.infer<typeof scheduleSchema>;
export type MachineSelector = z.infer<typeof machineSelectorSchema>;

/** A one-line description of the first problems of a zod error: "settings.fullInterval: ...". */
export function formatZodIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map(
      (issue) => `${issue.path.length === 0 ? '(root)' : issue.path.join('.')}: ${issue.message}`,
    )
    .join('; ');
}

export function parseJobDefinition(value: unknown): JobDefinition {
  const result = jobDefinitionSchema.safeParse(value);
  if (!result.success) {
    throw new JobError('JOB_INVALID', `invalid job: ${formatZodIssues(result.error)}`, {
      details: {
        issues: result.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
      },
    });
  }
  return result.data;
}

/** Whether a machine matches a job's selector. */
export function selectsMachine(
  selector: MachineSelector,
  machine: { readonly id: string; readonly name: string; readonly tags: readonly string[] },
): boolean {
  if (selector.excludeTags.some((tag) => machine.tags.includes(tag))) return false;
  if (selector.ids.includes(machine.id)) return true;
  const byName =
    selector.namePattern !== undefined && globToRegExp(selector.namePattern).test(machine.name);
  const byTags =
    selector.tags.length > 0 && selector.tags.every((tag) => machine.tags.includes(tag));
  if (selector.namePattern !== undefined && selector.tags.length > 0) return byName && byTags;
  return byName || byTags;
}

function globToRegExp(glob: string): RegExp {
  const escaped = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`);
}
