import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { COMMA_LIST, PROJECT_HEADER, type KeyScope } from '@runlog/core';
import { z } from 'zod';
import { AppError, parse } from './errors.js';

/** Who is calling: resolved from the bearer key or the session cookie. */
export interface AuthContext {
  projectId: string;
  scope: KeyScope;
  keyId: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    auth?: AuthContext;
  }
  interface FastifyContextConfig {
    /** The scope a route needs; `public` routes need no key. */
    scope?: KeyScope | 'public';
  }
}

type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface RouteSpec<Q extends z.ZodType, P extends z.ZodType, B extends z.ZodType> {
  method: HttpMethod;
  url: string;
  scope: KeyScope | 'public';
  summary: string;
  tag: string;
  query?: Q;
  params?: P;
  body?: B;
  /**
   * The body as the OpenAPI description gives it, when the route checks part of it later
   * (each event of a batch on its own, so one cannot refuse the others): `body` otherwise.
   */
  describedBody?: z.ZodType;
  /** The success body's schema, for the OpenAPI description. */
  response?: z.ZodType;
  /** The success body's media type when not JSON (`text/plain`), for the description. */
  responseType?: string;
  /** The success status; 200 unless said. */
  status?: number;
  /**
   * Other answers worth documenting beyond the errors every route has, e.g. `{207: '...'}`:
   * a description, or a description and the body's schema (4xx and 5xx have the error's).
   */
  answers?: Record<number, Answer>;
  handler: (input: {
    query: z.output<Q>;
    params: z.output<P>;
    body: z.output<B>;
    auth: AuthContext;
    request: FastifyRequest;
    reply: FastifyReply;
  }) => Promise<unknown> | unknown;
}

export interface RouteDoc {
  method: HttpMethod;
  url: string;
  scope: KeyScope | 'public';
  summary: string;
  tag: string;
  query?: z.ZodType;
  params?: z.ZodType;
  body?: z.ZodType;
  describedBody?: z.ZodType;
  response?: z.ZodType;
  responseType?: string;
  status: number;
  answers?: Record<number, Answer>;
  /**
   * Media types besides JSON the route takes (OTLP's protobuf). A request sent in one is
   * answered in it, errors included; the description gives those bodies no schema (binary).
   */
  alsoTakes?: string[];
}

/** An answer a route documents: what it means, and its body's schema when it has one. */
export type Answer = string | { description: string; schema: z.ZodType };

/** Every route defined through `defineRoute`, in order: the source of `openapi.json`. */
export const routeDocs: RouteDoc[] = [];

/**
 * Refuses a request whose `X-Runlog-Project` names another project than its key's or
 * session's (a 409 naming the header): every route that takes a key, the WebSocket's too.
 * @example assertNamedProject(request.headers, auth);
 */
export function assertNamedProject(headers: IncomingHttpHeaders, auth: AuthContext): void {
  // the header sent twice reaches here as one value, joined with ", " (ids hold no comma)
  const named = new Set(
    [headers[PROJECT_HEADER] ?? []]
      .flat()
      .flatMap((v) => v.split(','))
      .map((v) => v.trim()),
  );
  const others = [...named].filter((p) => p !== auth.projectId);
  if (others.length > 0) {
    const message = `this key or session is for project ${auth.projectId}, not ${others.join(', ')}`;
    throw new AppError('conflict', `headers.${PROJECT_HEADER}: ${message}`, [
      { field: `headers.${PROJECT_HEADER}`, message },
    ]);
  }
}

const PUBLIC_AUTH: AuthContext = { projectId: '', scope: 'read', keyId: '' };

/**
 * The most of a body a route open to anyone (no key: a login) reads. JSON of tiny objects
 * takes some 35 times its size in memory once parsed: at the server's body limit, one request
 * from anyone who could reach the port held the event loop for 20 s and 2 GB.
 */
export const PUBLIC_BODY_LIMIT = 16 * 1024;

/** The names of a query schema's parameters (optional or not) whose schema passes `test`. */
function paramsWhere(
  shape: Record<string, z.ZodType>,
  test: (schema: z.ZodType) => boolean,
): Set<string> {
  return new Set(
    Object.entries(shape)
      .filter(([, schema]) =>
        test(schema instanceof z.ZodOptional ? (schema.unwrap() as z.ZodType) : schema),
      )
      .map(([key]) => key),
  );
}

/**
 * Registers a route whose query, params and body are parsed by zod schemas (a 400 naming
 * the field otherwise) and records it for the OpenAPI description.
 * @example defineRoute(app, { method: 'GET', url: '/api/v1/runs/:run_id', scope: 'read', ... })
 */
export function defineRoute<
  Q extends z.ZodType = z.ZodUndefined,
  P extends z.ZodType = z.ZodUndefined,
  B extends z.ZodType = z.ZodUndefined,
>(app: FastifyInstance, spec: RouteSpec<Q, P, B>): void {
  if (!routeDocs.some((d) => d.method === spec.method && d.url === spec.url)) {
    routeDocs.push({
      method: spec.method,
      url: spec.url,
      scope: spec.scope,
      summary: spec.summary,
      tag: spec.tag,
      status: spec.status ?? 200,
      ...(spec.query ? { query: spec.query } : {}),
      ...(spec.params ? { params: spec.params } : {}),
      ...(spec.body ? { body: spec.body } : {}),
      ...(spec.describedBody ? { describedBody: spec.describedBody } : {}),
      ...(spec.response ? { response: spec.response } : {}),
      ...(spec.responseType ? { responseType: spec.responseType } : {}),
      ...(spec.answers ? { answers: spec.answers } : {}),
    });
  }
  // the parameters the route reads: another one is a typo (`?stauts=failed`) that would
  // otherwise answer as if unfiltered
  // (none without a query schema; every one when the schema is not an object's)
  const shape = spec.query
    ? (spec.query as { shape?: Record<string, z.ZodType> }).shape
    : ({} as Record<string, z.ZodType>);
  const known = shape && new Set(Object.keys(shape));
  // the parameters that take several values (`?status=a&status=b` is `?status=a,b`), and
  // those given a key each (`?metadata[env]=prod`, OpenAPI's deepObject)
  const lists = shape && paramsWhere(shape, (s) => s.description === COMMA_LIST);
  const keyed = shape && paramsWhere(shape, (s) => s instanceof z.ZodRecord);
  app.route({
    method: spec.method,
    url: spec.url,
    config: { scope: spec.scope },
    ...(spec.scope === 'public'
      ? { bodyLimit: Math.min(PUBLIC_BODY_LIMIT, app.initialConfig.bodyLimit ?? PUBLIC_BODY_LIMIT) }
      : {}),
    handler: async (request, reply) => {
      const parameters = queryParameters(request.query, known, lists, keyed);
      const query = spec.query ? parse(spec.query, parameters, 'query') : undefined;
      const params = spec.params ? parse(spec.params, request.params ?? {}, 'params') : undefined;
      if (spec.body && typeof request.body === 'string') {
        // Fastify reads text/plain as a string: say what is missing rather than "expected object"
        throw new AppError(
          'invalid_input',
          'body: expected a JSON object; send Content-Type: application/json',
          [{ field: 'body', message: 'expected a JSON object (Content-Type: application/json)' }],
        );
      }
      const body = spec.body ? parse(spec.body, request.body ?? {}, 'body') : undefined;
      const result = await spec.handler({
        query: query as z.output<Q>,
        params: params as z.output<P>,
        body: body as z.output<B>,
        auth: request.auth ?? PUBLIC_AUTH,
        request,
        reply,
      });
      if (reply.sent) return reply;
      if (reply.statusCode === 200 && spec.status) reply.status(spec.status);
      return result === undefined ? reply.send() : result;
    },
  });
}

/**
 * A query string's parameters as the route's schema reads them. An empty one is absent:
 * `?cursor=&status=` (as a form or a URL template sends them, and as DESIGN.md's own example
 * reads) means no cursor and no status filter, not a filter for the empty string. A NUL, a
 * parameter the route does not read, or one that takes one value given twice, is refused,
 * naming the parameter.
 */
function queryParameters(
  query: unknown,
  known?: ReadonlySet<string>,
  lists?: ReadonlySet<string>,
  keyed?: ReadonlySet<string>,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!query || typeof query !== 'object') return out;
  for (const [key, value] of Object.entries(query)) {
    const open = key.indexOf('[');
    const name = open > 0 && key.endsWith(']') ? key.slice(0, open) : undefined;
    if (name !== undefined && keyed?.has(name)) {
      keyedParameter(out, name, key, key.slice(open + 1, -1), value);
      continue;
    }
    if (known && !known.has(key)) {
      const reads = known.size
        ? `this route reads ${[...known].join(', ')}`
        : 'this route reads none';
      throw new AppError('invalid_input', `query.${key}: unknown parameter`, [
        { field: `query.${key}`, message: `unknown parameter; ${reads}` },
      ]);
    }
    // `?agent_id=a&agent_id=b` is the comma list `?agent_id=a,b`; a parameter that takes one
    // value given twice would match nothing (`?source=a&source=b`) and answer an empty list
    if (Array.isArray(value) && lists && !lists.has(key)) {
      throw new AppError('invalid_input', `query.${key}: given more than once`, [
        { field: `query.${key}`, message: 'given more than once; it takes one value' },
      ]);
    }
    const text: unknown = Array.isArray(value) ? value.join(',') : value;
    if (typeof text === 'string' && text.includes('\u0000')) {
      // no database column holds a NUL (PostgreSQL refuses one): say so instead of failing
      throw new AppError('invalid_input', `query.${key}: must not contain a NUL character`, [
        { field: `query.${key}`, message: 'must not contain a NUL character' },
      ]);
    }
    if (text !== '') out[key] = text;
  }
  return out;
}

/**
 * One `name[key]=value` of a parameter given a key each, into `out[name][key]`: a key once,
 * never empty; an empty value is absent, as for any parameter.
 */
function keyedParameter(
  out: Record<string, unknown>,
  name: string,
  field: string,
  key: string,
  value: unknown,
): void {
  const refuse = (message: string) =>
    new AppError('invalid_input', `query.${field}: ${message}`, [
      { field: `query.${field}`, message },
    ]);
  if (key === '') throw refuse(`needs a key: ${name}[key]=value`);
  if (Array.isArray(value)) throw refuse('given more than once; it takes one value');
  if (typeof value !== 'string') return;
  if (value.includes('\u0000') || key.includes('\u0000'))
    throw refuse('must not contain a NUL character');
  // an object's parse (zod's) drops this key: refused rather than silently unfiltered
  if (key === '__proto__') throw refuse('this key cannot be filtered on');
  if (value === '') return;
  const entries = (out[name] ??= {}) as unknown;
  if (typeof entries !== 'object' || entries === null)
    throw refuse(`${name} takes a key each: ${name}[key]=value`);
  (entries as Record<string, string>)[key] = value;
}
