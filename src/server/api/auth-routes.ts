/** Login, logout, who am I, and API tokens. */
import { z } from 'zod';
import { Authenticator, createApiToken } from '../auth/authenticator.ts';
import { HttpError } from '../http/router.ts';
import type { ApiBuilder } from './api-builder.ts';
import type { ApiContext } from './context.ts';

const loginSchema = z.strictObject({
  user: z.string().min(1).max(100),
  password: z.string().min(1).max(1000),
});

export function registerAuthRoutes(api: ApiBuilder, ctx: ApiContext): void {
  api.route(
    'POST',
    '/api/login',
    {
      summary: 'log in with user and password; sets the session cookie',
      tag: 'auth',
      schema: loginSchema,
      public: true,
      responses: { '401': 'wrong user or password' },
    },
    async ({ body }) => {
      const token = await ctx.auth.login(body.user, body.password);
      if (token === undefined) throw new HttpError(401, 'UNAUTHORIZED', 'wrong user or password');
      return {
        json: { user: body.user },
        headers: { 'set-cookie': ctx.auth.sessionCookie(token, ctx.secure) },
      };
    },
  );
  api.route(
    'POST',
    '/api/logout',
    { summary: 'end the session', tag: 'auth', public: true },
    async ({ req }) => {
      ctx.auth.logout(req);
      return { json: {}, headers: { 'set-cookie': Authenticator.clearedCookie() } };
    },
  );
  api.route('GET', '/api/me', { summary: 'the logged-in user', tag: 'auth' }, async ({ user }) => ({
    json: { user },
  }));
  api.route(
    'POST',
    '/api/tokens',
    {
      summary: 'create an API token (shown once) for the logged-in user',
      tag: 'auth',
      schema: z.strictObject({ label: z.string().min(1).max(100) }),
    },
    async ({ body, user }) => ({
      status: 201,
      json: {
        label: body.label,
        token: createApiToken(ctx.app.store, user ?? '', body.label, ctx.app.clock.nowMs()),
      },
    }),
  );
}
