import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { ApiErrorBody } from '@runlog/core';
import type { AppContext } from '../context.js';
import { routeDocs, type RouteDoc } from './route.js';

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  const out = z.toJSONSchema(schema, {
    io,
    unrepresentable: 'any',
    target: 'draft-2020-12',
  }) as Record<string, unknown>;
  delete out.$schema;
  return out;
}

function parameters(doc: RouteDoc): unknown[] {
  const params: unknown[] = [];
  for (const [where, schema] of [
    ['path', doc.params],
    ['query', doc.query],
  ] as const) {
    if (!schema) continue;
    const js = jsonSchema(schema, 'input') as {
      properties?: Record<string, unknown>;
      required?: string[];
    };
    for (const [name, s] of Object.entries(js.properties ?? {})) {
      params.push({
        name,
        in: where,
        required: where === 'path' || (js.required ?? []).includes(name),
        schema: s,
      });
    }
  }
  return params;
}

/** The OpenAPI 3.1 description, built from the zod schemas the routes validate with. */
export function buildOpenApi(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const errorResponse = {
    description: 'Error',
    content: { 'application/json': { schema: jsonSchema(ApiErrorBody, 'output') } },
  };
  for (const doc of routeDocs) {
    const path = doc.url.replace(/:([a-z_]+)/g, '{$1}');
    const op: Record<string, unknown> = {
      summary: doc.summary,
      tags: [doc.tag],
      parameters: parameters(doc),
      responses: {
        [String(doc.status)]: doc.response
          ? {
              description: 'OK',
              content: { 'application/json': { schema: jsonSchema(doc.response, 'output') } },
            }
          : { description: 'OK' },
        '400': errorResponse,
        ...(doc.scope === 'public' ? {} : { '401': errorResponse, '403': errorResponse }),
        '404': errorResponse,
      },
      ...(doc.scope === 'public' ? { security: [] } : { 'x-scope': doc.scope }),
    };
    if (doc.body) {
      op.requestBody = {
        required: true,
        content: { 'application/json': { schema: jsonSchema(doc.body, 'input') } },
      };
    }
    (paths[path] ??= {})[doc.method.toLowerCase()] = op;
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Runlog API',
      version: '1.0.0',
      description: 'Run history and control plane for AI agents.',
    },
    servers: [{ url: '/' }],
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    security: [{ bearer: [] }],
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
