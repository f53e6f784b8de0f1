import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import compress from '@fastify/compress';
import cookie from '@fastify/cookie';
import fastifyStatic from '@fastify/static';
import { scopeAllows, type ApiErrorBody } from '@runlog/core';
import type { AppContext } from './context.js';
import { AppError, outageLogger } from './http/errors.js';
import { isDatabaseUnavailable } from './db/database.js';
import { assertNamedProject, type AuthContext } from './http/route.js';
import { jsonContainersWithin, tooManyContainers } from './http/json-containers.js';
import { authRoutes } from './auth/auth.routes.js';
import { projectsRoutes } from './projects/projects.routes.js';
import { ingestRoutes } from './ingest/ingest.routes.js';
import { runsRoutes } from './runs/runs.routes.js';
import { scoresRoutes } from './scores/scores.routes.js';
import { threadsRoutes } from './threads/threads.routes.js';
import { usersRoutes } from './users/users.routes.js';
import { agentsRoutes } from './agents/agents.routes.js';
import { statsRoutes } from './stats/stats.routes.js';
import { controlRoutes } from './control/control.routes.js';
import { serviceRoutes } from './metrics/service.routes.js';
import { openapiRoutes } from './http/openapi.routes.js';
import { realtimeRoutes } from './realtime/realtime.routes.js';
import { otlpRoutes } from './otlp/otlp.routes.js';
import { webhooksRoutes } from './webhooks/webhooks.routes.js';

/** What the dashboard's pages may load: its own scripts, styles and server, nothing else. */
const DASHBOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** The answer to a request Node refused before Fastify saw it. */
function clientError(code: string | undefined): {
  status: number;
  label: string;
  error: ApiErrorBody['error'];
} {
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    const message = 'the request took too long to arrive';
    return {
      status: 408,
      label: 'Request Timeout',
      error: { code: 'invalid_input', message, details: [] },
    };
  }
  if (code === 'HPE_HEADER_OVERFLOW') {
    const message =
      'the request line and headers are over 16 KiB: send long filters in fewer, shorter parameters';
    return {
      status: 431,
      label: 'Request Header Fields Too Large',
      error: {
        code: 'payload_too_large',
        message,
        details: [{ field: 'headers', message: 'over 16 KiB' }],
      },
    };
  }
  const message = 'the request is not valid HTTP';
  return {
    status: 400,
    label: 'Bad Request',
    error: { code: 'invalid_input', message, details: [] },
  };
}

/** An X-Request-Id taken as it comes: short, and nothing a log line or a header could mangle. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * What a request's log line says of it: Fastify's own fields, with the text of a search
 * (`?q=`) left out. The search runs over the prompts and outputs agents record, so its text
 * is as private as they are, and a log outlives a run deleted for what it held.
 */
function requestLogFields(request: FastifyRequest) {
  return {
    method: request.method,
    url: request.url.replace(/([?&]q=)[^&#]*/g, '$1[redacted]'),
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort,
  };
}

/** Builds the HTTP app over a context; `listen` is the caller's. */
export async function buildApp(ctx: AppContext): Promise<FastifyInstance> {
  const app = Fastify({
    logger:
      ctx.config.logLevel === 'silent'
        ? false
        : {
            level: ctx.config.logLevel,
            // the login link carries the key only in the fragment; keys in headers are never logged
            redact: ['req.headers.authorization', 'req.headers.cookie'],
            serializers: { req: requestLogFields },
          },
    // a request's id is in its log lines and in its answer's x-request-id, so a caller's 500 can
    // be found in the log: Fastify's counter (req-1, req-2, ...) restarted with every process
    // and repeated on every instance behind one load balancer. A proxy's own X-Request-Id is
    // kept, to follow one request through both logs.
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    bodyLimit: ctx.config.bodyLimit,
    // ids run to 128 characters and model names to 200, percent-encoded in paths
    routerOptions: { maxParamLength: 1000 },
    // on close, idle keep-alive connections go at once; a request under way is answered
    // (cut off, a committed write would be retried by its client as if it had failed)
    forceCloseConnections: 'idle',
    // a request still arriving on an open connection is refused by the hook below, in the
    // API's error shape: Fastify's own 503 has a body of its own and no Retry-After
    return503OnClosing: false,
    // a body must arrive within this: a client trickling one byte at a time does not hold a
    // connection (and its memory) forever
    requestTimeout: 120_000,
    // what Node refuses before Fastify sees a request (headers too large, a body too slow)
    // answers in the API's error shape too
    clientErrorHandler: (err, socket) => {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ECONNRESET' || socket.destroyed) return;
      const { status, label, error } = clientError(code);
      const body = JSON.stringify({ error });
      if (socket.writable)
        socket.write(
          `HTTP/1.1 ${status} ${label}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
            `Content-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n${body}`,
        );
      socket.destroy(err);
    },
    // a path Fastify cannot decode (`/runs/a%ZZ`) answers in the API's error shape too
    frameworkErrors: (error, _request, reply) => {
      const bad = error.code === 'FST_ERR_BAD_URL';
      const body: ApiErrorBody = {
        error: {
          code: 'invalid_input',
          message: bad ? 'the path is not validly percent-encoded' : 'the request was refused',
          details: bad ? [{ field: 'path', message: 'not validly percent-encoded' }] : [],
        },
      };
      void (reply as FastifyReply).status(400).send(body);
    },
  });

  // the API's routes by method, to tell a wrong method (405, with Allow) from no such path
  const apiRoutes: ApiRoute[] = [];
  app.addHook('onRoute', (route) => {
    const path = apiRoutePath(route.url);
    if (path) for (const method of [route.method].flat()) apiRoutes.push({ method, path });
  });

  await app.register(cookie);
  // answers a client accepts compressed (the dashboard's lists and bundles, a run's steps) go
  // compressed over a real network: JSON text shrinks five to ten times. Small answers (an
  // acknowledgement, a claim) stay as they are. Request bodies are left alone: OTLP inflates
  // its own, within the body limit.
  await app.register(compress, { threshold: 8 * 1024, globalDecompression: false });

  // no other page may frame the dashboard (clickjacking a Retry or a Stop), and no answer is
  // sniffed as another type; pages run only the dashboard's own scripts
  app.addHook('onSend', async (request, reply, payload) => {
    void reply.header('x-content-type-options', 'nosniff');
    // an answer of the API is a project's data: a browser keeps none of it on disk, where it
    // stayed after Log out for the next user of the machine to read
    if (/^\/(api|v1)\//.test(request.url) && !reply.hasHeader('cache-control'))
      void reply.header('cache-control', 'no-store');
    void reply.header('x-frame-options', 'DENY');
    // links out of the dashboard (a URL in a run's output) tell the other site nothing
    void reply.header('referrer-policy', 'no-referrer');
    const type = String(reply.getHeader('content-type') ?? '');
    void reply.header(
      'content-security-policy',
      type.startsWith('text/html') ? DASHBOARD_CSP : "frame-ancestors 'none'",
    );
    return payload;
  });

  // a client may label an empty body JSON (a Stop or a Retry with nothing to say): no body
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    const refused = unreadableJson(request, text);
    if (refused) return done(refused, undefined);
    if (text === '') return done(null, undefined);
    if (!jsonContainersWithin(text)) return done(tooManyContainers(), undefined);
    parseJson(request, text, (err, value) => {
      // valid JSON refused all the same: a key that would reach an object's prototype
      if (err && isJson(text))
        return done(
          AppError.invalid(
            'body',
            'a key named __proto__ (or constructor.prototype) is not accepted',
          ),
          undefined,
        );
      done(err, value);
    });
  });

  /** What a request arriving while the server closes is answered: an expected 503. */
  const refusedWhileClosing = new WeakSet<AppError>();
  const logOutage = outageLogger();
  app.setErrorHandler((error, request, reply) => {
    const body = errorBody(error, request);
    // every error names what it is about, even when only the message can
    body.body.error.details ??= [];
    if (body.status === 503 && isDatabaseUnavailable(error))
      logOutage(request.log, error, Date.now());
    // each deploy refuses the requests its clients send meanwhile: no error, and no stack, each
    else if (error instanceof AppError && refusedWhileClosing.has(error))
      request.log.info('refused: the server is shutting down');
    else if (body.status >= 500) request.log.error({ err: error }, 'request failed');
    if (body.retryAfterSeconds !== undefined)
      void reply.header('retry-after', String(body.retryAfterSeconds));
    void reply.status(body.status).send(body.body);
  });
  /** The answer to a request no route takes: a 405 naming the methods its path takes, else a 404. */
  const noRoute = (request: FastifyRequest, reply: FastifyReply): FastifyReply => {
    const path = request.url.split('?')[0]!;
    const allowed = otherMethods(apiRoutes, request.method, path);
    if (allowed) {
      void reply.header('allow', allowed.join(', '));
      const refused: ApiErrorBody = {
        error: {
          code: 'method_not_allowed',
          message: `${request.method} is not allowed on ${path}, which takes ${allowed.join(', ')}`,
          details: [{ field: 'method', message: `must be one of ${allowed.join(', ')}` }],
        },
      };
      return reply.status(405).send(refused);
    }
    const err: ApiErrorBody = {
      error: {
        code: 'not_found',
        message: `no route ${request.method} ${request.url.split('?')[0]}`,
        details: [],
      },
    };
    return reply.status(404).send(err);
  };
  app.setNotFoundHandler((request, reply) => void noRoute(request, reply));

  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  // answers by status code, what an operator alerts on (a rate of 5xx, 503s in an outage,
  // 429s when recording outpaces the disk): the codes are the server's own, a few series
  const answered = new Map<number, () => void>();
  app.addHook('onResponse', (_request, reply, done) => {
    const code = reply.statusCode;
    let count = answered.get(code);
    if (!count) {
      count = ctx.metrics.counter('runlog_http_responses_total', 'HTTP answers, by status code', {
        code: String(code),
      });
      answered.set(code, count);
    }
    count();
    done();
  });
  // one hook on every request (recording's hot path): shutting down, then the caller's key
  app.addHook('onRequest', async (request, reply) => {
    void reply.header('x-request-id', request.id);
    if (closing) {
      const error = new AppError('unavailable', 'the server is shutting down; try again shortly');
      error.retryAfterSeconds = 1;
      refusedWhileClosing.add(error);
      throw error;
    }
    // a request no route takes is answered before its body is read: Fastify reads one for its
    // 404 as for any route, and 64 MiB of `[{},{},...]`, sent with no key at all, held the event
    // loop for 20 s and left the process at 2 GB
    if (request.is404) return noRoute(request, reply);
    const scope = request.routeOptions.config.scope;
    if (scope === undefined || scope === 'public') return;
    const auth = await authenticate(ctx, request);
    if (!auth)
      throw new AppError(
        'unauthorized',
        'a valid API key is required (Authorization: Bearer <key>)',
      );
    if (!scopeAllows(auth.scope, scope)) {
      throw new AppError('forbidden', `this key has scope ${auth.scope}; ${scope} is needed`);
    }
    // a dashboard tab says which project it shows: after a login to another project in
    // another tab, the browser's one cookie is that project's, and a Stop or a Delete of a run
    // id both projects use must not reach the other project's run
    assertNamedProject(request.headers, auth);
    request.auth = auth;
  });

  for (const routes of [
    serviceRoutes,
    authRoutes,
    projectsRoutes,
    ingestRoutes,
    runsRoutes,
    scoresRoutes,
    threadsRoutes,
    usersRoutes,
    agentsRoutes,
    statsRoutes,
    controlRoutes,
    realtimeRoutes,
    otlpRoutes,
    webhooksRoutes,
    openapiRoutes,
  ]) {
    await routes(app, ctx);
  }

  const webRoot = ctx.config.webRoot;
  if (webRoot && existsSync(join(webRoot, 'index.html'))) {
    await app.register(fastifyStatic, {
      root: webRoot,
      wildcard: false,
      index: ['index.html'],
      // the build's .br and .gz copies, to browsers that accept them
      preCompressed: true,
      cacheControl: false,
      setHeaders: (res, path) => {
        // assets/ holds files named by their content's hash: a browser keeps them for good;
        // the pages naming them are asked for again each time
        res.setHeader('vary', 'accept-encoding');
        res.setHeader(
          'cache-control',
          relative(webRoot, path).startsWith(`assets${sep}`)
            ? 'public, max-age=31536000, immutable'
            : 'no-cache',
        );
      },
    });
    // client-side routes (/agents/x/runs/y, /login) get the app shell
    app.get('/*', (request, reply) => {
      if (request.url.startsWith('/api/')) return reply.callNotFound();
      // an asset the routes above do not know, of a build written since the server started
      // (its pages name it): the file when there is one, else a 404, never the page
      const path = (request.params as { '*': string })['*'];
      if (path.startsWith('assets/')) {
        // a `..` (the sender refuses it with a 403 that would surface as a 500) or a NUL: no file
        if (/(^|[\\/])\.\.([\\/]|$)|\0/.test(path)) return reply.callNotFound();
        return reply.sendFile(path);
      }
      return reply.type('text/html').sendFile('index.html');
    });
  }
  return app;
}

/** The caller of a request: a bearer key, else the dashboard's session cookie. */
export function authenticate(
  ctx: AppContext,
  request: FastifyRequest,
): Promise<AuthContext | undefined> {
  return ctx.auth.authenticateRequest(request);
}

function errorBody(
  error: unknown,
  request: FastifyRequest,
): { status: number; body: ApiErrorBody; retryAfterSeconds?: number } {
  if (error instanceof AppError) {
    return {
      status: error.status,
      ...(error.retryAfterSeconds !== undefined
        ? { retryAfterSeconds: error.retryAfterSeconds }
        : {}),
      body: {
        error: {
          code: error.code,
          message: error.message,
          ...(error.details ? { details: error.details } : {}),
        },
      },
    };
  }
  const e = error as { statusCode?: number; code?: string; message?: string };
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || e.statusCode === 413) {
    return {
      status: 413,
      body: {
        error: { code: 'payload_too_large', message: 'request body is over the size limit' },
      },
    };
  }
  if (e.statusCode === 415 || e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return {
      status: 400,
      body: {
        error: {
          code: 'invalid_input',
          message: `unsupported content type ${request.headers['content-type'] ?? '(none)'}; send application/json`,
          details: [{ field: 'headers.content-type', message: 'send application/json' }],
        },
      },
    };
  }
  if (e.statusCode === 400 && typeof e.message === 'string') {
    // Fastify's own parse failures (malformed JSON, empty body): safe to echo
    return {
      status: 400,
      body: {
        error: {
          code: 'invalid_input',
          message: `body: ${e.message}`,
          details: [{ field: 'body', message: e.message }],
        },
      },
    };
  }
  if (e.statusCode === 429) {
    return { status: 429, body: { error: { code: 'rate_limited', message: 'too many requests' } } };
  }
  if (isDatabaseUnavailable(error)) {
    return {
      status: 503,
      retryAfterSeconds: 5,
      body: {
        error: {
          code: 'unavailable',
          message: 'the database is not available right now; try again shortly',
        },
      },
    };
  }
  return { status: 500, body: { error: { code: 'internal', message: 'internal error' } } };
}

/**
 * Why a JSON body cannot be read as sent, if it cannot: compressed (only OTLP's
 * `/v1/traces` inflates bodies), or in a charset it was not written in: UTF-16 or UTF-32
 * always, another one (latin1, which old clients name by default) when the body is not plain
 * ASCII, which reads the same in all of them.
 */
function unreadableJson(request: FastifyRequest, text: string): AppError | undefined {
  const encoding = String(request.headers['content-encoding'] ?? '')
    .trim()
    .toLowerCase();
  if (encoding !== '' && encoding !== 'identity')
    return AppError.invalid(
      'headers.content-encoding',
      `${encoding.slice(0, 100)} is not accepted here: send the JSON uncompressed (only /v1/traces takes gzip)`,
    );
  const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(
    request.headers['content-type'] ?? '',
  )?.[1];
  if (charset === undefined || /^utf-?8$/i.test(charset)) return undefined;
  // eslint-disable-next-line no-control-regex -- ASCII is what every such charset shares
  if (!/^utf-?(16|32)/i.test(charset) && !/[^\x00-\x7f]/.test(text)) return undefined;
  return AppError.invalid(
    'headers.content-type',
    `charset ${charset.slice(0, 100)} is not accepted: send UTF-8`,
  );
}

/** An API route as the 405 answer reads it: a method and its path as a pattern. */
export interface ApiRoute {
  method: string;
  path: RegExp;
}

/** The pattern of an API route's url (`:param` one segment, maybe empty); undefined for the others. */
export function apiRoutePath(url: string): RegExp | undefined {
  if (!url.startsWith('/api/') && !url.startsWith('/v1/')) return undefined;
  const parts = url
    .split('/')
    .map((part) => (part.startsWith(':') ? '[^/]*' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  return new RegExp(`^${parts.join('/')}$`);
}

/**
 * The methods the API takes on `path` (as the router reads it: percent-decoded), sorted, when
 * `method` is not one of them (a 405); undefined when no route takes the path, or when one
 * takes it with this very method: the router did not take it for another reason (a
 * parameter past its length limit), so it is no route. Of the routes that match, those with
 * the fewest parameters name the path: `/runs/stats` takes GET, not the methods of
 * `/runs/:run_id` (no run is named `stats`).
 */
export function otherMethods(
  routes: readonly ApiRoute[],
  method: string,
  path: string,
): string[] | undefined {
  let decoded = path;
  try {
    decoded = decodeURI(path);
  } catch {
    // not decodable: the router refused it the same way
  }
  const matching = routes.filter((r) => r.path.test(decoded));
  const fewest = Math.min(...matching.map(parameterCount));
  const allowed = [
    ...new Set(matching.filter((r) => parameterCount(r) === fewest).map((r) => r.method)),
  ];
  const asked = method === 'HEAD' ? 'GET' : method;
  return allowed.length > 0 && !allowed.includes(asked) ? allowed.sort() : undefined;
}

/** How many of a route's segments are parameters (`apiRoutePath` writes each as `[^/]*`). */
function parameterCount(route: ApiRoute): number {
  return route.path.source.split('[^/]*').length - 1;
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}
