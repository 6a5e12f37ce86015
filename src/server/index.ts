/**
 * src/server — the always-on service: HTTP JSON API (a thin adapter over the app use-case
 * functions shared with the CLI), server-sent events for live progress, the static web page,
 * authentication, webhook notifications and the scheduler.
 */
export * from './http/router.ts';
export * from './http/event-hub.ts';
export * from './auth/password-hash.ts';
export * from './notify/webhook.ts';
export * from './scheduler/index.ts';
export * from './auth/authenticator.ts';
export * from './job-runner.ts';
export * from './http-app.ts';
export * from './errors.ts';
export { openApiDocument } from './api/routes.ts';
