/**
 * Every API route, registered in one place: the service registers them with a live context, and
 * `openApiDocument()` registers them with a context whose handlers never run, to write
 * docs/openapi.json (`npm run openapi:doc`, checked by test/server/openapi-doc.test.ts).
 */
import { Router } from '../http/router.ts';
import { ApiBuilder, buildOpenApi } from './api-builder.ts';
import { registerAuthRoutes } from './auth-routes.ts';
import { registerBackupRoutes } from './backup-routes.ts';
import { registerJobRoutes, registerRemoteRoutes, registerSourceRoutes } from './config-routes.ts';
import type { ApiContext } from './context.ts';
import { registerRunRoutes } from './run-routes.ts';

export function registerAllRoutes(api: ApiBuilder, ctx: ApiContext, version: string): void {
  registerAuthRoutes(api, ctx);
  registerRemoteRoutes(api, ctx);
  registerSourceRoutes(api, ctx);
  registerJobRoutes(api, ctx);
  registerRunRoutes(api, ctx);
  registerBackupRoutes(api, ctx);
  api.route(
    'GET',
    '/api/openapi.json',
    { summary: 'this OpenAPI document', tag: 'meta' },
    async () => ({ json: buildOpenApi(api.docs, version) }),
  );
}

/** The OpenAPI document of the API, without starting anything. */
export function openApiDocument(version: string): unknown {
  const api = new ApiBuilder(new Router(() => Promise.resolve(undefined)));
  registerAllRoutes(api, {} as ApiContext, version);
  return buildOpenApi(api.docs, version);
}
