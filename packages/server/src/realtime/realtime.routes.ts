import type { IncomingMessage } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { AppContext } from '../context.js';
import type { AuthContext } from '../http/route.js';
import { assertNamedProject, defineRoute } from '../http/route.js';
import { AppError } from '../http/errors.js';
import { RealtimeServer, WS_PATH, refuse } from './ws-server.js';

const servers = new WeakMap<AppContext, RealtimeServer>();

/** The realtime server of a context (for tests, the bench and metrics), once routes are built. */
export function realtimeServer(ctx: AppContext): RealtimeServer | undefined {
  return servers.get(ctx);
}

/**
 * `GET /api/v1/ws`: the WebSocket endpoint. Upgrades are taken on the HTTP server's
 * `upgrade` event (Node then never hands them to Fastify's router); a plain GET gets a
 * 400 saying an upgrade is needed.
 */
export async function realtimeRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const authenticate = async (request: IncomingMessage): Promise<AuthContext | undefined> => {
    // as every request is: a key, else the session cookie from the dashboard's own origin
    const cookies = request.headers.cookie ? app.parseCookie(request.headers.cookie) : {};
    const auth = await ctx.auth.authenticateRequest({ headers: request.headers, cookies });
    // the project the client shows (`?project=`, a browser sets no headers here): a session
    // now of another project (a login in another tab) must not feed its updates to this one
    const named = new URL(request.url ?? '/', 'http://localhost').searchParams.getAll('project');
    if (named.some((p) => p !== auth?.projectId)) return undefined;
    // a client that sets headers names its project as on every other route: a 409
    if (auth) assertNamedProject(request.headers, auth);
    return auth;
  };

  const realtime = new RealtimeServer(ctx.hub, ctx.metrics, authenticate);
  servers.set(ctx, realtime);
  const unsubscribe = ctx.auth.onRevoke(() => void realtime.recheck());
  ctx.onClose.push(() => {
    unsubscribe();
    return realtime.close();
  });

  app.server.on('upgrade', (request: IncomingMessage, socket, head: Buffer) => {
    const path = (request.url ?? '').split('?')[0];
    if (path === WS_PATH) {
      realtime.handleUpgrade(request, socket, head);
      return;
    }
    // nobody else takes upgrades: answer instead of leaving the socket hanging
    if (app.server.listenerCount('upgrade') === 1) {
      socket.on('error', () => {});
      refuse(socket, 404, 'not_found', `no WebSocket endpoint at ${path}`);
    }
  });

  defineRoute(app, {
    method: 'GET',
    url: WS_PATH,
    scope: 'read',
    tag: 'realtime',
    summary:
      'WebSocket (send Upgrade: websocket): subscribe to runs, agent:<id>, run:<id>; receive run_update and step_update',
    // what a browser, which sets no headers on a WebSocket, names its project with
    query: z.object({
      project: z
        .string()
        .optional()
        .describe("the project the client shows: another than the key's or session's is a 401"),
    }),
    // an upgrade is answered 101; a plain GET, a 400
    status: 101,
    answers: { 429: 'The key already holds 200 connections' },
    handler: () => {
      throw new AppError(
        'invalid_input',
        `${WS_PATH} is a WebSocket endpoint: connect with Upgrade: websocket`,
      );
    },
  });
}
