import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { Text, ThreadList, ThreadListQuery, ThreadSummary } from '@runlog/core';
import type { AppContext } from '../context.js';
import { AppError } from '../http/errors.js';
import { defineRoute } from '../http/route.js';
import { checkRange } from '../runs/runs.routes.js';
import { findThread, listThreads } from './threads.js';

const ThreadParams = z.object({ thread_id: Text(200).min(1) });

/** Threads: the runs of one conversation (a `thread_id`), summed up. */
export async function threadsRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  defineRoute(app, {
    method: 'GET',
    url: '/api/v1/threads',
    scope: 'read',
    tag: 'runs',
    summary:
      'Threads (runs sharing a thread_id), the latest active first: runs, failures, tokens, ' +
      'cost, agents, and the first input and latest output as text. Each is summed over the ' +
      'runs the filters keep (agent_id takes a comma list; from/to bound the run time; q keeps ' +
      'the threads whose id holds the text, any case). ' +
      "Page with next_cursor. A thread's runs: GET /runs?thread_id=",
    query: ThreadListQuery,
    response: ThreadList,
    handler: ({ auth, query }) => {
      checkRange(query.from, query.to);
      return listThreads(
        ctx.db,
        auth.projectId,
        {
          ...(query.agent_id ? { agentIds: query.agent_id } : {}),
          ...(query.user_id !== undefined ? { userId: query.user_id } : {}),
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
    url: '/api/v1/threads/:thread_id',
    scope: 'read',
    tag: 'runs',
    summary: 'One thread summed over all its runs; 404 when no run names it',
    params: ThreadParams,
    response: ThreadSummary,
    handler: async ({ auth, params }) => {
      const thread = await findThread(ctx.db, auth.projectId, params.thread_id);
      if (!thread) throw AppError.notFound('thread', params.thread_id);
      return thread;
    },
  });
}
