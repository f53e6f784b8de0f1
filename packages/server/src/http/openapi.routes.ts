import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { ApiErrorBody, PROJECT_HEADER } from '@runlog/core';
import { SESSION_COOKIE } from '../auth/auth.service.js';
import type { AppContext } from '../context.js';
import { Health, Readiness } from '../metrics/service.routes.js';
import { routeDocs, type RouteDoc } from './route.js';

/**
 * JSON Schemas of one document. A recursive zod schema converts with its own `$defs`, whose
 * `#/$defs/...` references would resolve against the OpenAPI document's root: they are moved
 * to `components.schemas`, each conversion under its own prefix, and the references rewritten.
 */
class Schemas {
  readonly components: Record<string, unknown> = {};
  private conversions = 0;

  convert(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
    const out = z.toJSONSchema(schema, {
      io,
      unrepresentable: 'any',
      target: 'draft-2020-12',
    }) as Record<string, unknown>;
    delete out.$schema;
    const defs = out.$defs as Record<string, unknown> | undefined;
    if (!defs) return out;
    delete out.$defs;
    const prefix = `S${++this.conversions}_`;
    const rewrite = (node: unknown): unknown => {
      if (Array.isArray(node)) return node.map(rewrite);
      if (!node || typeof node !== 'object') return node;
      const copy: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(node)) {
        copy[k] =
          k === '$ref' && typeof v === 'string' && v.startsWith('#/$defs/')
            ? `#/components/schemas/${prefix}${v.slice('#/$defs/'.length)}`
            : rewrite(v);
      }
      return copy;
    };
    for (const [name, def] of Object.entries(defs)) this.components[prefix + name] = rewrite(def);
    return rewrite(out) as Record<string, unknown>;
  }
}

/** What a route that takes a key answers when `X-Runlog-Project` names another project. */
const PROJECT_CONFLICT = `${PROJECT_HEADER} names a project other than the key's or session's`;

function parameters(doc: RouteDoc, schemas: Schemas): unknown[] {
  const params: unknown[] = [];
  if (doc.scope !== 'public') {
    // checked on every request with a key (app.ts): the dashboard names its project
    params.push({
      name: PROJECT_HEADER,
      in: 'header',
      required: false,
      description: `The project the caller acts in; another than the key's is a 409`,
      schema: { type: 'string' },
    });
  }
  for (const [where, schema] of [
    ['path', doc.params],
    ['query', doc.query],
  ] as const) {
    if (!schema) continue;
    const js = schemas.convert(schema, 'input') as {
      properties?: Record<string, unknown>;
      required?: string[];
    };
    for (const [name, s] of Object.entries(js.properties ?? {})) {
      params.push({
        name,
        in: where,
        required: where === 'path' || (js.required ?? []).includes(name),
        schema: s,
        // a parameter given a key each: `metadata[env]=prod` (route.ts reads it so)
        ...((s as { type?: unknown }).type === 'object'
          ? { style: 'deepObject', explode: true }
          : {}),
      });
    }
  }
  return params;
}

/** The description itself, as far as its own schema says (the rest is OpenAPI 3.1's). */
const OpenApiDocument = z.looseObject({
  openapi: z.literal('3.1.0'),
  info: z.looseObject({ title: z.string(), version: z.string() }),
  paths: z.record(z.string(), z.record(z.string(), z.unknown())),
});

/**
 * Routes served outside `defineRoute`: the service endpoints, for the description. Each
 * answers 503 too while the server shuts down (the hook that refuses those requests runs
 * before every route, these included), in the error's shape.
 */
const SERVICE_PATHS: Record<
  string,
  { summary: string; type: string; schema: z.ZodType; unavailable?: string }
> = {
  '/healthz': { summary: 'The process answers', type: 'application/json', schema: Health },
  '/readyz': {
    summary: 'The database answers (503 when it does not)',
    type: 'application/json',
    schema: Readiness,
    unavailable: 'The database does not answer, or the server is shutting down: retry',
  },
  '/metrics': {
    summary: 'Prometheus metrics (text exposition format 0.0.4)',
    type: 'text/plain',
    schema: z.string(),
  },
  '/api/v1/openapi.json': {
    summary: 'This description',
    type: 'application/json',
    schema: OpenApiDocument,
  },
};

/** The OpenAPI 3.1 description, built from the zod schemas the routes validate with. */
export function buildOpenApi(): Record<string, unknown> {
  const schemas = new Schemas();
  const paths: Record<string, Record<string, unknown>> = {};
  const error = (description: string) => ({
    description,
    content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
  });
  for (const doc of routeDocs) {
    const path = doc.url.replace(/:([a-z_]+)/g, '{$1}');
    const answer409 = doc.answers?.[409];
    const own409 = typeof answer409 === 'object' ? answer409.description : answer409;
    const op: Record<string, unknown> = {
      summary: doc.summary,
      tags: [doc.tag],
      parameters: parameters(doc, schemas),
      responses: {
        [String(doc.status)]: doc.response
          ? {
              description: 'OK',
              content: {
                [doc.responseType ?? 'application/json']: {
                  schema: schemas.convert(doc.response, 'output'),
                },
              },
            }
          : { description: 'OK' },
        ...Object.fromEntries(
          Object.entries(doc.answers ?? {}).map(([status, answer]) => [
            status,
            typeof answer !== 'string'
              ? {
                  description: answer.description,
                  content: {
                    'application/json': { schema: schemas.convert(answer.schema, 'output') },
                  },
                }
              : Number(status) >= 400
                ? error(answer)
                : { description: answer },
          ]),
        ),
        '400': error('Invalid input, naming the field'),
        ...(doc.scope === 'public'
          ? {}
          : {
              '401': error('No valid key'),
              '403': error('The key lacks the scope'),
              '409': error(own409 ? `${own409}; or ${PROJECT_CONFLICT}` : PROJECT_CONFLICT),
            }),
        '404': error('Not found (also another project’s objects)'),
        // the body limit holds for every request whose body is read: all but a GET's, also
        // where the route takes none
        ...(doc.method !== 'GET' ? { '413': error('Body over the size limit') } : {}),
        ...(doc.tag === 'recording' ? { '429': error('The write path is behind: retry') } : {}),
        '503': error('The database does not answer, or the server is shutting down: retry'),
      },
      ...(doc.scope === 'public' ? { security: [] } : { 'x-scope': doc.scope }),
    };
    // a request in another media type is answered in it, errors too: each answer with a body
    // has that type as well
    for (const answer of Object.values(op.responses as Record<string, { content?: object }>))
      if (answer.content)
        for (const type of doc.alsoTakes ?? []) answer.content = { ...answer.content, [type]: {} };
    if (doc.body) {
      op.requestBody = {
        // a missing body reads as {} (defineRoute): it is required only when {} is refused
        required: !doc.body.safeParse({}).success,
        content: {
          'application/json': { schema: schemas.convert(doc.describedBody ?? doc.body, 'input') },
          ...Object.fromEntries((doc.alsoTakes ?? []).map((type) => [type, {}])),
        },
      };
    }
    (paths[path] ??= {})[doc.method.toLowerCase()] = op;
  }
  for (const [path, { summary, type, schema, unavailable }] of Object.entries(SERVICE_PATHS)) {
    paths[path] = {
      get: {
        summary,
        tags: ['service'],
        security: [],
        responses: {
          '200': {
            description: 'OK',
            content: { [type]: { schema: schemas.convert(schema, 'output') } },
          },
          '503': error(unavailable ?? 'The server is shutting down: retry'),
        },
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Runlog API',
      version: '1.0.0',
      description: 'Run history and control plane for AI agents.',
    },
    servers: [{ url: '/' }],
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'An API key' },
        session: {
          type: 'apiKey',
          in: 'cookie',
          name: SESSION_COOKIE,
          description:
            "The dashboard's session (POST /api/v1/session sets it), counted only on requests " +
            "from the dashboard's own origin",
        },
      },
      schemas: { Error: schemas.convert(ApiErrorBody, 'output'), ...schemas.components },
    },
    // either one: a key, or the dashboard's session
    security: [{ bearer: [] }, { session: [] }],
    paths,
  };
}

export async function openapiRoutes(app: FastifyInstance, _ctx: AppContext): Promise<void> {
  let cached: Record<string, unknown> | undefined;
  app.get(
    '/api/v1/openapi.json',
    { config: { scope: 'public' } },
    () => (cached ??= buildOpenApi()),
  );
}
