/**
 * Remotes (CRUD, connection test, usage), sources (list, machines, save) and jobs with their
 * schedules (CRUD, run now, force a key backup). Remotes always leave through `redactRemote`; a
 * remote saved back with the redacted secret keeps its stored secret.
 */
import { z } from 'zod';
import {
  AppError,
  redactRemote,
  remoteSchema,
  sourceSchema,
  type RemoteConfig,
} from '../../app/index.ts';
import { jobDefinitionSchema } from '../../jobs/index.ts';
import { openStore, testStore } from '../../storage/index.ts';
import { HttpError } from '../http/router.ts';
import type { ApiBuilder } from './api-builder.ts';
import type { ApiContext } from './context.ts';

const REDACTED = '********';

function sameId(paramId: string | undefined, bodyId: string): void {
  if (paramId !== bodyId)
    throw new HttpError(400, 'BODY_INVALID', `id: "${bodyId}" differs from the URL's id`);
}

/** Keeps the stored S3 secret when the body carries the redacted placeholder. */
function withStoredSecret(ctx: ApiContext, remote: RemoteConfig): RemoteConfig {
  if (remote.store.type !== 's3' || remote.store.secretAccessKey !== REDACTED) return remote;
  const stored = ctx.app.remotes().find((r) => r.id === remote.id);
  if (stored?.store.type !== 's3' || stored.store.secretAccessKey === undefined)
    throw new HttpError(400, 'BODY_INVALID', 'store.secretAccessKey: give the secret');
  return { ...remote, store: { ...remote.store, secretAccessKey: stored.store.secretAccessKey } };
}

async function testRemoteConfig(remote: RemoteConfig): Promise<unknown> {
  const store = await openStore(remote.store);
  try {
    return { ok: true, ...(await testStore(store)) };
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    return {
      ok: false,
      error: {
        code: typeof code === 'string' ? code : 'INTERNAL',
        message: (error as Error).message,
      },
    };
  } finally {
    await store.close();
  }
}

export function registerRemoteRoutes(api: ApiBuilder, ctx: ApiContext): void {
  const tag = 'remotes';
  api.route(
    'GET',
    '/api/remotes',
    { summary: 'list remotes (secrets redacted)', tag },
    async () => ({
      json: ctx.app.remotes().map(redactRemote),
    }),
  );
  api.route(
    'PUT',
    '/api/remotes/:id',
    { summary: 'create or replace a remote (local folder or S3)', tag, schema: remoteSchema },
    async ({ params, body }) => {
      sameId(params['id'], body.id);
      return { json: redactRemote(ctx.app.saveRemote(withStoredSecret(ctx, body))) };
    },
  );
  api.route(
    'DELETE',
    '/api/remotes/:id',
    { summary: 'remove a remote (its data stays)', tag, responses: { '409': 'a job uses it' } },
    async ({ params }) => {
      const id = params['id'] ?? '';
      const users = ctx.app.jobs().filter((j) => j.remotes.includes(id));
      if (users.length > 0)
        throw new HttpError(
          409,
          'REMOTE_IN_USE',
          `jobs ${users.map((j) => j.id).join(', ')} use it`,
        );
      if (!ctx.app.store.deleteDocument('remote', id))
        throw new AppError('APP_REMOTE_NOT_FOUND', `no remote ${id} in the job store`);
      return { json: {} };
    },
  );
  api.route(
    'POST',
    '/api/remotes-test',
    { summary: 'test a remote configuration before saving it', tag, schema: remoteSchema },
    async ({ body }) => ({ json: await testRemoteConfig(withStoredSecret(ctx, body)) }),
  );
  api.route(
    'POST',
    '/api/remotes/:id/test',
    { summary: 'test a saved remote: write, read back, list and delete a probe object', tag },
    async ({ params }) => {
      const remote = ctx.app.remotes().find((r) => r.id === params['id']);
      if (remote === undefined)
        throw new AppError('APP_REMOTE_NOT_FOUND', `no remote ${params['id'] ?? ''}`);
      return { json: await testRemoteConfig(remote) };
    },
  );
  api.route(
    'GET',
    '/api/remotes/:id/usage',
    { summary: 'objects and bytes stored on a remote, restore points per machine', tag },
    async ({ params }) => {
      const { repository } = await ctx.app.remote(params['id'] ?? '');
      let objects = 0;
      let bytes = 0;
      for await (const info of repository.store.list('')) {
        objects += 1;
        bytes += info.sizeBytes;
      }
      const points = await repository.listPoints();
      const machines: Record<string, number> = {};
      for (const p of points) machines[p.vmId] = (machines[p.vmId] ?? 0) + 1;
      return { json: { objects, bytes, restorePoints: points.length, machines } };
    },
  );
}

export function registerSourceRoutes(api: ApiBuilder, ctx: ApiContext): void {
  const tag = 'sources';
  api.route('GET', '/api/sources', { summary: 'list hypervisor sources', tag }, async () => ({
    json: ctx.app.sources(),
  }));
  api.route(
    'PUT',
    '/api/sources/:id',
    { summary: 'create or replace a hypervisor source', tag, schema: sourceSchema },
    async ({ params, body }) => {
      sameId(params['id'], body.id);
      return { json: ctx.app.saveSource(body) };
    },
  );
  api.route(
    'GET',
    '/api/sources/:id/machines',
    { summary: 'machines and disks of a source', tag },
    async ({ params }) => ({ json: await ctx.app.source(params['id'] ?? '').listMachines() }),
  );
}

const runNowSchema = z.strictObject({
  /** Make a key backup of every disk. */
  forceFull: z.boolean().optional(),
  /** Run as this schedule (its retention applies). */
  scheduleId: z.string().min(1).optional(),
});

export function registerJobRoutes(api: ApiBuilder, ctx: ApiContext): void {
  const tag = 'jobs';
  api.route(
    'GET',
    '/api/jobs',
    { summary: 'jobs with their schedules, last run, next run and whether running', tag },
    async () => {
      const upcoming = ctx.upcoming();
      return {
        json: ctx.app.jobs().map((job) => {
          const next = upcoming
            .filter((u) => u.jobId === job.id && u.nextMs !== undefined)
            .map((u) => ({ scheduleId: u.scheduleId, nextMs: u.nextMs as number }))
            .sort((a, b) => a.nextMs - b.nextMs);
          return {
            ...job,
            lastRun: ctx.app.store.listRuns({ jobId: job.id, limit: 1 })[0] ?? null,
            nextRun: next[0] ?? null,
            busy: ctx.runner.isBusy(job.id),
          };
        }),
      };
    },
  );
  api.route('GET', '/api/jobs/:id', { summary: 'one job definition', tag }, async ({ params }) => {
    const job = ctx.app.jobs().find((j) => j.id === params['id']);
    if (job === undefined)
      throw new HttpError(404, 'JOB_NOT_FOUND', `no job ${params['id'] ?? ''}`);
    return { json: job };
  });
  api.route(
    'PUT',
    '/api/jobs/:id',
    {
      summary: 'create or replace an incremental backup job and its schedules',
      tag,
      schema: z.looseObject({}),
      docSchema: jobDefinitionSchema,
    },
    async ({ params, body }) => ({ json: ctx.app.saveJob({ ...body, id: params['id'] }) }),
  );
  api.route(
    'DELETE',
    '/api/jobs/:id',
    { summary: 'remove a job (its backups and run logs stay)', tag },
    async ({ params }) => {
      const id = params['id'] ?? '';
      if (ctx.runner.isBusy(id)) throw new HttpError(409, 'JOB_ALREADY_RUNNING', 'job is running');
      if (!ctx.app.store.deleteDocument('job', id))
        throw new HttpError(404, 'JOB_NOT_FOUND', `no job ${id} in the job store`);
      return { json: {} };
    },
  );
  api.route(
    'POST',
    '/api/jobs/:id/run',
    {
      summary: 'run a job now (forceFull: a key backup of every disk); answers with the run id',
      tag,
      schema: runNowSchema,
      responses: { '202': 'queued', '409': 'the job is already queued or running' },
    },
    async ({ params, body }) => {
      const live = ctx.runner.start(params['id'] ?? '', {
        trigger: 'manual',
        ...(body.forceFull === true ? { forceFull: true } : {}),
        ...(body.scheduleId === undefined ? {} : { scheduleId: body.scheduleId }),
      });
      return { status: 202, json: { runId: live.runId, jobId: live.jobId } };
    },
  );
}
