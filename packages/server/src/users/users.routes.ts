import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { Text, UserList, UserListQuery, UserSummary } from '@runlog/core';
import type { AppContext } from '../context.js';
import { AppError } from '../http/errors.js';
import { defineRoute } from '../http/route.js';
import { checkRange } from '../runs/runs.routes.js';
import { findUser, listUsers } from './users.js';

const UserParams = z.object({ user_id: Text(200).min(1) });

/** Users: the runs made for one user (a `user_id`), summed up. */
export async function usersRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  defineRoute(app, {
    method: 'GET',
    url: '/api/v1/users',
    scope: 'read',
    tag: 'runs',
    summary:
      'Users (the user_id runs were made for), the latest active first: runs, failures, ' +
      'threads, agents, tokens, cost and their latest run. Each is summed over the runs the ' +
      'filters keep (agent_id takes a comma list; from/to bound the run time; q keeps the ' +
      'users whose id holds the text, any case). Page with ' +
      "next_cursor. A user's runs: GET /runs?user_id=",
    query: UserListQuery,
    response: UserList,
    handler: ({ auth, query }) => {
      checkRange(query.from, query.to);
      return listUsers(
        ctx.db,
        auth.projectId,
        {
          ...(query.agent_id ? { agentIds: query.agent_id } : {}),
          ...(query.from !== undefined ? { from: query.from } : {}),
          ...(query.to !== undefined ? { to: query.to } : {}),
          ...(query.q !== undefined ? { search: query.q } : {}),
        },
        { limit: query.limit, ...(query.cursor !== undefined ? { cursor: query.cursor } : {}) },
      );
    },
  });

  defineRoute(app, {
    method: 'GET',
    url: '/api/v1/users/:user_id',
    scope: 'read',
    tag: 'runs',
    summary: 'One user summed over all its runs; 404 when no run names it',
    params: UserParams,
    response: UserSummary,
    handler: async ({ auth, params }) => {
      const user = await findUser(ctx.db, auth.projectId, params.user_id);
      if (!user) throw AppError.notFound('user', params.user_id);
      return user;
    },
  });
}
