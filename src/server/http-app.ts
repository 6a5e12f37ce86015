/**
 * The service in one process: the JSON API (routes in src/server/api), server-sent events, the
 * web page, authentication, the scheduler and the run queue, over one opened App. At start-up,
 * runs left 'running' by a previous process are marked interrupted and reported. `close()` stops
 * the scheduler, cancels running runs and waits for them (bounded), then closes everything.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { App } from '../app/index.ts';
import type { Clock, Logger } from '../core/index.ts';
import type { RunLog } from '../jobs/index.ts';
import { ApiBuilder } from './api/api-builder.ts';
import { registerAllRoutes } from './api/routes.ts';
import type { ApiContext } from './api/context.ts';
import { Authenticator } from './auth/authenticator.ts';
import { EventHub } from './http/event-hub.ts';
import { Router, sendError, sendJson } from './http/router.ts';
import { JobRunner } from './job-runner.ts';
import { Scheduler, type ScheduleEntry } from './scheduler/scheduler.ts';
import { defaultWebDir, serveStatic } from './static-files.ts';

export interface ServiceOptions {
  readonly app: App;
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  readonly tls?: { readonly certPath: string; readonly keyPath: string };
  readonly webDir?: string;
  readonly globalConcurrency?: number;
  readonly resourceConcurrency?: number;
  readonly formatRunLog: (log: RunLog) => string;
  readonly logger: Logger;
  readonly version: string;
  /** How long close() waits for cancelled runs to end (default 30 s). */
  readonly stopGraceMs?: number;
}

export interface RunningService {
  readonly url: string;
  /** Run ids found 'running' at start-up and marked 'interrupted'. */
  readonly interrupted: readonly string[];
  readonly runner: JobRunner;
  readonly scheduler: Scheduler;
  close(): Promise<void>;
}

/** A request body that is not JSON (a cross-site form post, for one): refused with 415. */
function hasNonJsonBody(req: IncomingMessage): boolean {
  const hasBody =
    (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0') ||
    req.headers['transfer-encoding'] !== undefined;
  const type = req.headers['content-type'] ?? '';
  return hasBody && !/^application\/json\b/i.test(type);
}

export function scheduleEntries(app: App): ScheduleEntry[] {
  return app.jobs().flatMap((job) =>
    job.schedules.map((s) => ({
      jobId: job.id,
      scheduleId: s.id,
      cron: s.cron,
      timezone: s.timezone,
      enabled: s.enabled,
    })),
  );
}

/** The scheduler wired to the job runner: due runs are queued, busy jobs' occurrences skipped. */
export function createScheduler(
  app: App,
  runner: JobRunner,
  logger: Logger,
  clock: Clock = app.clock,
): Scheduler {
  return new Scheduler(clock, {
    // A job store that cannot be read must not stop the scheduler: log, try again next tick.
    listSchedules: () => {
      try {
        return scheduleEntries(app);
      } catch (error) {
        logger.log('error', 'cannot read the schedules', { message: (error as Error).message });
        return [];
      }
    },
    isJobRunning: (jobId) => runner.isBusy(jobId),
    startRun: (entry) => {
      try {
        runner.start(entry.jobId, { scheduleId: entry.scheduleId, trigger: 'schedule' });
      } catch (error) {
        logger.log('error', 'scheduled run not started', {
          jobId: entry.jobId,
          message: (error as Error).message,
        });
      }
    },
    onSkipped: (entry, dueMs, reason) =>
      runner.recordSkipped(entry.jobId, entry.scheduleId, dueMs, reason),
    onError: (entry, error) =>
      logger.log('error', 'schedule error', {
        jobId: entry.jobId,
        scheduleId: entry.scheduleId,
        message: (error as Error).message,
      }),
  });
}

export async function startService(options: ServiceOptions): Promise<RunningService> {
  const { app, logger } = options;
  const interrupted = app.store.markInterruptedRuns(app.clock.nowMs());
  const hub = new EventHub();
  const auth = new Authenticator(app.store, app.clock);
  const runner = new JobRunner({
    app,
    hub,
    logger,
    ...(options.globalConcurrency === undefined
      ? {}
      : { globalConcurrency: options.globalConcurrency }),
    ...(options.resourceConcurrency === undefined
      ? {}
      : { resourceConcurrency: options.resourceConcurrency }),
  });
  const scheduler = createScheduler(app, runner, logger);
  const ctx: ApiContext = {
    app,
    runner,
    hub,
    auth,
    upcoming: () => scheduler.upcoming(),
    formatRunLog: options.formatRunLog,
    secure: options.tls !== undefined,
  };
  const authenticate = (req: IncomingMessage): Promise<string | undefined> =>
    Promise.resolve(auth.authenticate(req));
  const router = new Router(authenticate);
  const api = new ApiBuilder(router);
  registerAllRoutes(api, ctx, options.version);
  const webDir = options.webDir ?? defaultWebDir;

  const handler = (req: IncomingMessage, res: import('node:http').ServerResponse): void => {
    void (async () => {
      try {
        if (hasNonJsonBody(req)) {
          sendJson(res, 415, {
            error: { code: 'BODY_INVALID', message: 'send request bodies as application/json' },
          });
          return;
        }
        if (await router.handle(req, res)) return;
        if ((req.url ?? '').startsWith('/api/')) {
          sendJson(res, 404, { error: { code: 'NOT_FOUND', message: 'no such API route' } });
          return;
        }
        await serveStatic(req, res, webDir, auth.authenticate(req));
      } catch (error) {
        sendError(res, error);
      }
    })();
  };
  const server: Server =
    options.tls === undefined
      ? createHttpServer(handler)
      : createHttpsServer(
          { cert: readFileSync(options.tls.certPath), key: readFileSync(options.tls.keyPath) },
          handler,
        );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const hostForUrl = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `${options.tls === undefined ? 'http' : 'https'}://${hostForUrl}:${address.port}`;
  scheduler.start();
  logger.log('info', 'vmdelta serve listening', { url, interrupted: interrupted.length });

  let closing: Promise<void> | undefined;
  const close = async (): Promise<void> => {
    await scheduler.stop();
    for (const live of runner.live()) runner.cancel(live.runId);
    const graceMs = options.stopGraceMs ?? 30_000;
    await Promise.race([runner.idle(), new Promise((r) => setTimeout(r, graceMs).unref())]);
    hub.close();
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    await app.close();
  };
  return {
    url,
    interrupted,
    runner,
    scheduler,
    close: () => (closing ??= close()),
  };
}
