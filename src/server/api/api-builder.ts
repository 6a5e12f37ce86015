/**
 * Route registration that also documents: every route added here goes to the Router and into
 * the OpenAPI 3.1 document served at /api/openapi.json, with its request body's JSON Schema
 * generated from the same zod schema that validates it — the document cannot drift from the code.
 */
import { z } from 'zod';
import type { Reply, RequestContext, Router } from '../http/router.ts';

export interface RouteDoc {
  readonly method: string;
  readonly path: string;
  readonly summary: string;
  readonly tag: string;
  readonly isPublic: boolean;
  readonly bodySchema: z.ZodType | undefined;
  readonly query: readonly string[];
  readonly responses: Readonly<Record<string, string>>;
}

export interface RouteOptions<S> {
  readonly summary: string;
  readonly tag: string;
  readonly schema?: S;
  /** A schema documenting the body when validation is done later (e.g. by the use case). */
  readonly docSchema?: z.ZodType;
  readonly public?: boolean;
  readonly query?: readonly string[];
  /** Extra documented responses, status → description. */
  readonly responses?: Readonly<Record<string, string>>;
}

export class ApiBuilder {
  readonly #router: Router;
  readonly #docs: RouteDoc[] = [];

  constructor(router: Router) {
    this.#router = router;
  }

  get docs(): readonly RouteDoc[] {
    return this.#docs;
  }

  route<S extends z.ZodType | undefined = undefined>(
    method: string,
    path: string,
    options: RouteOptions<S>,
    handler: (ctx: RequestContext<S extends z.ZodType ? z.infer<S> : undefined>) => Promise<Reply>,
  ): this {
    this.#router.route<S>(method, path, handler, {
      ...(options.schema === undefined ? {} : { schema: options.schema }),
      ...(options.public === true ? { public: true } : {}),
    });
    this.#docs.push({
      method,
      path,
      summary: options.summary,
      tag: options.tag,
      isPublic: options.public === true,
      bodySchema: options.docSchema ?? options.schema,
      query: options.query ?? [],
      responses: options.responses ?? {},
    });
    return this;
  }
}

const errorSchema = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: { code: { type: 'string' }, message: { type: 'string' } },
      required: ['code', 'message'],
    },
  },
};

function jsonSchemaOf(schema: z.ZodType): unknown {
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<
    string,
    unknown
  >;
  delete json['$schema'];
  return json;
}

/** The OpenAPI 3.1 document of every documented route. */
export function buildOpenApi(docs: readonly RouteDoc[], version: string): unknown {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const doc of docs) {
    const openApiPath = doc.path.replace(/:([A-Za-z]+)/g, '{$1}');
    const pathParams = [...doc.path.matchAll(/:([A-Za-z]+)/g)].map((m) => m[1] ?? '');
    const operation: Record<string, unknown> = {
      summary: doc.summary,
      tags: [doc.tag],
      parameters: [
        ...pathParams.map((name) => ({
          name,
          in: 'path',
          required: true,
          schema: { type: 'string' },
        })),
        ...doc.query.map((name) => ({ name, in: 'query', schema: { type: 'string' } })),
      ],
      responses: {
        '200': { description: 'success (JSON unless stated)' },
        ...Object.fromEntries(
          Object.entries(doc.responses).map(([status, description]) => [status, { description }]),
        ),
        ...(doc.bodySchema === undefined
          ? {}
          : {
              '400': {
                description: 'invalid body: the message names the field',
                content: { 'application/json': { schema: errorSchema } },
              },
            }),
        ...(doc.isPublic
          ? {}
          : {
              '401': {
                description: 'not logged in',
                content: { 'application/json': { schema: errorSchema } },
              },
            }),
      },
      ...(doc.isPublic ? { security: [] } : {}),
      ...(doc.bodySchema === undefined
        ? {}
        : {
            requestBody: {
              required: true,
              content: { 'application/json': { schema: jsonSchemaOf(doc.bodySchema) } },
            },
          }),
    };
    paths[openApiPath] = { ...paths[openApiPath], [doc.method.toLowerCase()]: operation };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'vmdelta API',
      version,
      description:
        'The REST API of `vmdelta serve`: remotes, sources, jobs and schedules, runs and their logs, restore points, restore, copy, verify. Live progress: server-sent events at /api/events. Authenticate with the session cookie from POST /api/login or an API token (`Authorization: Bearer ...`, created by `vmdelta user token`).',
    },
    components: {
      securitySchemes: {
        session: { type: 'apiKey', in: 'cookie', name: 'vmdelta_session' },
        bearer: { type: 'http', scheme: 'bearer' },
      },
    },
    security: [{ session: [] }, { bearer: [] }],
    paths,
  };
}
