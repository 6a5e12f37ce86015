/**
 * Restore points (per remote, per machine across remotes), restore to files, copy, verify. The
 * long ones publish their progress as `work-progress` server-sent events, tagged with the
 * request's `progressId` (chosen by the client, so it can listen before it asks).
 */
import { z } from 'zod';
import type { ProgressListener } from '../../core/index.ts';
import {
  copyBackups,
  listBackups,
  restoreToFiles,
  verifyBackups,
  type BackupSummary,
} from '../../app/index.ts';
import type { ApiBuilder } from './api-builder.ts';
import type { ApiContext } from './context.ts';

/** Tags the request's `work-progress` events (GET /api/events?progressId=... filters them). */
const progressIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9._-]{1,64}$/, '1 to 64 letters, digits, ".", "_" or "-"')
  .optional();

const restoreSchema = z.strictObject({
  remoteId: z.string().min(1),
  vmId: z.string().min(1),
  pointId: z.string().min(1),
  /** Disks to restore (default: all). */
  diskIds: z.array(z.string().min(1)).optional(),
  /** Folder on the server where new files `<vmId>-<diskId>.<format>` are written. */
  dir: z.string().min(1).startsWith('/', 'an absolute path'),
  format: z.enum(['raw', 'qcow2', 'vhd']).default('qcow2'),
  progressId: progressIdSchema,
});

const copySchema = z.strictObject({
  from: z.string().min(1),
  to: z.string().min(1),
  vmId: z.string().min(1).optional(),
  mode: z.enum(['all', 'mirror']).optional(),
  progressId: progressIdSchema,
});

const verifySchema = z.strictObject({
  remoteId: z.string().min(1),
  vmId: z.string().min(1).optional(),
  /** Fraction of blocks whose data is read and hashed (0..1). */
  dataSample: z.number().min(0).max(1).optional(),
  progressId: progressIdSchema,
});

/** Progress of one request as `work-progress` events (at most ten a second, the last always). */
function publishProgress(
  ctx: ApiContext,
  operation: 'restore' | 'copy' | 'verify',
  progressId: string | undefined,
): { onProgress?: ProgressListener } {
  if (progressId === undefined) return {};
  return {
    onProgress: (progress) => {
      ctx.hub.publish({ type: 'work-progress', data: { operation, progressId, ...progress } });
    },
  };
}

export function registerBackupRoutes(api: ApiBuilder, ctx: ApiContext): void {
  const tag = 'backups';
  api.route(
    'GET',
    '/api/remotes/:id/backups',
    { summary: 'restore points on a remote (key/delta per disk)', tag, query: ['vmId'] },
    async ({ params, query }) => ({
      json: await listBackups(ctx.app, params['id'] ?? '', query.get('vmId') ?? undefined),
    }),
  );
  api.route(
    'GET',
    '/api/machines',
    { summary: 'machines that have restore points, with their count per remote', tag },
    async () => {
      const machines: Record<string, { label: string; remotes: Record<string, number> }> = {};
      const errors: { remoteId: string; message: string }[] = [];
      for (const remote of ctx.app.remotes()) {
        try {
          for (const point of await listBackups(ctx.app, remote.id)) {
            const entry = (machines[point.vmId] ??= { label: point.label, remotes: {} });
            entry.remotes[remote.id] = (entry.remotes[remote.id] ?? 0) + 1;
          }
        } catch (error) {
          errors.push({ remoteId: remote.id, message: (error as Error).message });
        }
      }
      return { json: { machines, errors } };
    },
  );
  api.route(
    'GET',
    '/api/machines/:vmId/restore-points',
    { summary: 'restore points of one machine on every remote, oldest first', tag },
    async ({ params }) => {
      const byRemote: Record<string, BackupSummary[]> = {};
      const errors: { remoteId: string; message: string }[] = [];
      for (const remote of ctx.app.remotes()) {
        try {
          byRemote[remote.id] = await listBackups(ctx.app, remote.id, params['vmId'] ?? '');
        } catch (error) {
          errors.push({ remoteId: remote.id, message: (error as Error).message });
        }
      }
      return { json: { remotes: byRemote, errors } };
    },
  );
  api.route(
    'POST',
    '/api/restore',
    {
      summary: 'restore a point to new image files in a folder on the server (never overwrites)',
      tag,
      schema: restoreSchema,
    },
    async ({ body }) => ({
      json: {
        files: await restoreToFiles(ctx.app, {
          remoteId: body.remoteId,
          vmId: body.vmId,
          pointId: body.pointId,
          dir: body.dir,
          format: body.format,
          ...(body.diskIds === undefined ? {} : { diskIds: body.diskIds }),
          ...publishProgress(ctx, 'restore', body.progressId),
        }),
      },
    }),
  );
  api.route(
    'POST',
    '/api/copy',
    { summary: 'copy backups between remotes (seed, mirror); idempotent', tag, schema: copySchema },
    async ({ body }) => ({
      json: await copyBackups(ctx.app, {
        from: body.from,
        to: body.to,
        ...(body.vmId === undefined ? {} : { vmId: body.vmId }),
        ...(body.mode === undefined ? {} : { mode: body.mode }),
        ...publishProgress(ctx, 'copy', body.progressId),
      }),
    }),
  );
  api.route(
    'POST',
    '/api/verify',
    { summary: 'verify the backups on a remote', tag, schema: verifySchema },
    async ({ body }) => ({
      json: await verifyBackups(ctx.app, {
        remoteId: body.remoteId,
        ...(body.vmId === undefined ? {} : { vmId: body.vmId }),
        ...(body.dataSample === undefined ? {} : { dataSample: body.dataSample }),
        ...publishProgress(ctx, 'verify', body.progressId),
      }),
    }),
  );
}
