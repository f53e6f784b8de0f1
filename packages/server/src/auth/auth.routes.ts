import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { ApiKey, CreateKeyBody, CreatedKey, Id, KeyScope, SessionBody } from '@runlog/core';
import type { AppContext } from '../context.js';
import { AppError } from '../http/errors.js';
import { defineRoute } from '../http/route.js';
import { SESSION_COOKIE, SESSION_TTL_MS } from './auth.service.js';

const KeyParams = z.object({ key_id: Id });
const SessionInfo = z.object({
  project_id: z.string(),
  project_name: z.string().describe("the project's name, for display"),
  scope: KeyScope,
  key_id: z.string().describe('the API key the caller (or its session) uses'),
  expires_at: z.string().optional(),
});

/** `/session` (dashboard login and logout) and `/keys` (admin). */
export async function authRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const projectName = async (projectId: string) =>
    (
      await ctx.db.kysely
        .selectFrom('projects')
        .select('name')
        .where('id', '=', projectId)
        .executeTakeFirst()
    )?.name ?? projectId;

  defineRoute(app, {
    method: 'POST',
    url: '/api/v1/session',
    scope: 'public',
    tag: 'auth',
    summary: 'Log in with an API key; sets an HttpOnly session cookie',
    body: SessionBody,
    response: SessionInfo,
    answers: { 401: 'The key is not valid (unknown or revoked)' },
    handler: async ({ body, request, reply }) => {
      const auth = await ctx.auth.authenticateKey(body.key.trim());
      if (!auth) throw new AppError('unauthorized', 'this API key is not valid');
      // the session this browser held ends with the new one: its cookie is replaced, and left
      // valid it would live on unseen for SESSION_TTL_MS (and hold the other tabs' live
      // connections to the project they showed)
      const previous = request.cookies[SESSION_COOKIE];
      if (previous) await ctx.auth.deleteSession(previous);
      const session = await ctx.auth.createSession(auth);
      void reply.setCookie(SESSION_COOKIE, session.token, {
        httpOnly: true,
        sameSite: 'strict',
        path: '/',
        // behind a proxy that ends TLS the request says https only in X-Forwarded-Proto; a
        // client that fakes it only makes its own cookie https-only
        secure:
          request.protocol === 'https' ||
          String(request.headers['x-forwarded-proto'] ?? '')
            .split(',')[0]!
            .trim()
            .toLowerCase() === 'https',
        maxAge: Math.floor(SESSION_TTL_MS / 1000),
      });
      return {
        project_id: auth.projectId,
        project_name: await projectName(auth.projectId),
        scope: auth.scope,
        key_id: auth.keyId,
        expires_at: new Date(session.expiresAt).toISOString(),
      };
    },
  });

  defineRoute(app, {
    method: 'GET',
    url: '/api/v1/session',
    scope: 'read',
    tag: 'auth',
    summary: 'Who the caller is: project, scope and key',
    response: SessionInfo,
    handler: async ({ auth }) => ({
      project_id: auth.projectId,
      project_name: await projectName(auth.projectId),
      scope: auth.scope,
      key_id: auth.keyId,
    }),
  });

  defineRoute(app, {
    method: 'DELETE',
    url: '/api/v1/session',
    scope: 'public',
    tag: 'auth',
    summary: 'Log out: ends the session and clears its cookie',
    status: 204,
    handler: async ({ request, reply }) => {
      const token = request.cookies[SESSION_COOKIE];
      if (token) await ctx.auth.deleteSession(token);
      // with the attributes it was set with: a browser matches the cookie by them
      void reply.clearCookie(SESSION_COOKIE, { path: '/', httpOnly: true, sameSite: 'strict' });
      return undefined;
    },
  });

  defineRoute(app, {
    method: 'GET',
    url: '/api/v1/keys',
    scope: 'admin',
    tag: 'auth',
    summary: "The project's API keys (never their secrets)",
    response: z.object({ keys: z.array(ApiKey) }),
    handler: async ({ auth }) => ({ keys: await ctx.auth.listKeys(auth.projectId) }),
  });

  defineRoute(app, {
    method: 'POST',
    url: '/api/v1/keys',
    scope: 'admin',
    tag: 'auth',
    summary: 'Create a key; its secret is in this answer only',
    body: CreateKeyBody,
    response: CreatedKey,
    status: 201,
    handler: ({ auth, body }) => ctx.auth.createKey(auth.projectId, body.scope, body.name),
  });

  defineRoute(app, {
    method: 'DELETE',
    url: '/api/v1/keys/:key_id',
    scope: 'admin',
    tag: 'auth',
    summary: 'Revoke a key',
    params: KeyParams,
    response: ApiKey,
    answers: { 409: "The project's last admin key: create another first" },
    handler: async ({ auth, params }) => {
      const key = await ctx.auth.revokeKey(auth.projectId, params.key_id);
      if (!key) throw AppError.notFound('key', params.key_id);
      return key;
    },
  });
}
