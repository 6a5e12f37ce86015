/** src/server/scheduler — cron schedules (croner, time zones), no-overlap rule, run queue. */
export * from './next-run.ts';
export * from './run-queue.ts';
export * from './scheduler.ts';
