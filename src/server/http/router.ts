/**
 * A small HTTP router for the JSON API: method + path patterns with `:params`, bodies parsed and
 * validated by a zod schema (a 400 naming the field otherwise), size-limited bodies, typed errors
 * mapped to HTTP statuses by their stable code, and an authentication hook applied to every route
 * not marked public.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { z } from 'zod';
import { isVmdeltaError } from '../../core/index.ts';
import type { ServerErrorCode } from '../errors.ts';

export interface RequestContext<TBody = unknown> {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  readonly body: TBody;
  /** Set by the authentication hook. */
  readonly user: string | undefined;
}

export type Reply =
  | { readonly status?: number; readonly json?: unknown; readonly headers?: Record<string, string> }
  | 'handled';

interface Route {
  readonly method: string;
  readonly parts: readonly string[];
  readonly isPublic: boolean;
  readonly schema: z.ZodType | undefined;
  readonly handler: (ctx: RequestContext<never>) => Promise<Reply>;
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: ServerErrorCode,
    message: string,
  ) {
    super(message);
  }
}

const MAX_BODY_BYTES = 1024 * 1024;

/** HTTP status for a stable error code. */
export function statusForCode(code: string): number {
  if (code.endsWith('_NOT_FOUND')) return 404;
  if (code.endsWith('_INVALID') || code === 'INVALID_ARGUMENT' || code.endsWith('_CONFIG'))
    return 400;
  if (
    code.endsWith('_ALREADY_RUNNING') ||
    code.endsWith('_ALREADY_EXISTS') ||
    code.endsWith('_LOCKED')
  )
    return 409;
  if (code.endsWith('_AUTH') || code === 'UNAUTHORIZED') return 401;
  if (code === 'TIMEOUT') return 504;
  return 500;
}

export function sendJson(
  res: ServerResponse,
  status: number,
  value: unknown,
  headers: Record<string, string> = {},
): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(body);
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > MAX_BODY_BYTES)
      throw new HttpError(413, 'BODY_TOO_LARGE', `request body above ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  if (total === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new HttpError(400, 'BODY_INVALID', 'the request body is not valid JSON');
  }
}

export class Router {
  readonly #routes: Route[] = [];
  readonly #authenticate: (req: IncomingMessage) => Promise<string | undefined>;

  constructor(authenticate: (req: IncomingMessage) => Promise<string | undefined>) {
    this.#authenticate = authenticate;
  }

  route<S extends z.ZodType | undefined>(
    method: string,
    path: string,
    handler: (ctx: RequestContext<S extends z.ZodType ? z.infer<S> : undefined>) => Promise<Reply>,
    options: { schema?: S; public?: boolean } = {},
  ): this {
    this.#routes.push({
      method,
      parts: path.split('/').filter((p) => p !== ''),
      isPublic: options.public === true,
      schema: options.schema,
      handler: handler,
    });
    return this;
  }

  /** Handles the request if a route matches; returns false otherwise (static files next). */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const segments = url.pathname
      .split('/')
      .filter((p) => p !== '')
      .map(decodeURIComponent);
    let pathMatched = false;
    for (const route of this.#routes) {
      const params = matchParts(route.parts, segments);
      if (params === undefined) continue;
      pathMatched = true;
      if (route.method !== req.method) continue;
      try {
        const user = await this.#authenticate(req);
        if (!route.isPublic && user === undefined)
          throw new HttpError(401, 'UNAUTHORIZED', 'log in first');
        let body = route.schema === undefined ? undefined : await readBody(req);
        if (route.schema !== undefined) {
          const parsed = route.schema.safeParse(body ?? {});
          if (!parsed.success) {
            const issue = parsed.error.issues[0];
            const where =
              issue === undefined || issue.path.length === 0 ? 'body' : issue.path.join('.');
            throw new HttpError(400, 'BODY_INVALID', `${where}: ${issue?.message ?? 'invalid'}`);
          }
          body = parsed.data;
        }
        const reply = await route.handler({
          req,
          res,
          params,
          query: url.searchParams,
          body: body as never,
          user,
        });
        if (reply !== 'handled')
          sendJson(res, reply.status ?? 200, reply.json ?? {}, reply.headers);
      } catch (error) {
        sendError(res, error);
      }
      return true;
    }
    if (pathMatched) {
      sendJson(res, 405, {
        error: { code: 'METHOD_NOT_ALLOWED', message: `${req.method ?? ''} not allowed here` },
      });
      return true;
    }
    return false;
  }
}

export function sendError(res: ServerResponse, error: unknown): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  if (error instanceof HttpError) {
    sendJson(res, error.status, { error: { code: error.code, message: error.message } });
  } else if (isVmdeltaError(error)) {
    sendJson(res, statusForCode(error.code), {
      error: { code: error.code, message: error.message },
    });
  } else {
    sendJson(res, 500, { error: { code: 'INTERNAL', message: 'internal error' } });
  }
}

function matchParts(
  parts: readonly string[],
  segments: readonly string[],
): Record<string, string> | undefined {
  if (parts.length !== segments.length) return undefined;
  const params: Record<string, string> = {};
  for (const [i, part] of parts.entries()) {
    const segment = segments[i] ?? '';
    if (part.startsWith(':')) params[part.slice(1)] = segment;
    else if (part !== segment) return undefined;
  }
  return params;
}
