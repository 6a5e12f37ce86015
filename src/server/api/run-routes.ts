/** Runs: list, one run's log (JSON or text), live progress snapshot, cancel, and the SSE stream. */
import { HttpError } from '../http/router.ts';
import type { ApiBuilder } from './api-builder.ts';
import type { ApiContext } from './context.ts';

export function registerRunRoutes(api: ApiBuilder, ctx: ApiContext): void {
  const tag = 'runs';
  api.route(
    'GET',
    '/api/runs',
    {
      summary: 'recent runs (newest first), with queued and running ones live',
      tag,
      query: ['jobId', 'limit'],
    },
    async ({ query }) => {
      const jobId = query.get('jobId') ?? undefined;
      const limit = Math.min(1000, Math.max(1, Number(query.get('limit') ?? 100) || 100));
      return {
        json: {
          runs: ctx.app.store.listRuns({ ...(jobId === undefined ? {} : { jobId }), limit }),
          live: ctx.runner.live().filter((r) => jobId === undefined || r.jobId === jobId),
        },
      };
    },
  );
  api.route(
    'GET',
    '/api/runs/:runId',
    { summary: 'a run log (JSON), with its live progress while it runs', tag },
    async ({ params }) => {
      const runId = params['runId'] ?? '';
      const log = ctx.app.store.getRun(runId);
      const live = ctx.runner.liveRun(runId);
      if (log === undefined && live === undefined)
        throw new HttpError(404, 'RUN_NOT_FOUND', `no run ${runId}`);
      return { json: { log: log ?? null, live: live ?? null } };
    },
  );
  api.route(
    'GET',
    '/api/runs/:runId/log.txt',
    { summary: 'a run log as text (text/plain)', tag },
    async ({ params, res }) => {
      const log = ctx.app.store.getRun(params['runId'] ?? '');
      if (log === undefined)
        throw new HttpError(404, 'RUN_NOT_FOUND', `no run ${params['runId'] ?? ''}`);
      res.writeHead(200, {
        'content-type': 'text/plain; charset=utf-8',
        'cache-control': 'no-store',
      });
      res.end(ctx.formatRunLog(log));
      return 'handled';
    },
  );
  api.route(
    'POST',
    '/api/runs/:runId/cancel',
    { summary: 'cancel a queued or running run', tag, responses: { '404': 'not running' } },
    async ({ params }) => {
      if (!ctx.runner.cancel(params['runId'] ?? ''))
        throw new HttpError(404, 'RUN_NOT_FOUND', 'no queued or running run with this id');
      return { status: 202, json: {} };
    },
  );
  api.route(
    'GET',
    '/api/events',
    {
      summary:
        'server-sent events: run-queued, run-started, machine-phase, disk-progress, machine-finished, warning, run-finished, run-skipped, and work-progress of restore, copy and verify requests that carry a progressId (text/event-stream); runId or progressId keep only those events',
      tag,
      query: ['runId', 'progressId'],
    },
    async ({ res, query }) => {
      const runId = query.get('runId');
      const progressId = query.get('progressId');
      ctx.hub.subscribe(res, (event) => {
        const data = event.data as { runId?: unknown; progressId?: unknown };
        if (runId !== null && data.runId !== runId) return false;
        return progressId === null || data.progressId === progressId;
      });
      return 'handled';
    },
  );
}
