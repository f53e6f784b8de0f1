import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import {
  Agent,
  AgentRunsQuery,
  AgentSummary,
  AgentUpsertBody,
  EnqueueRunBody,
  Id,
  Run,
  RunList,
} from '@runlog/core';
import type { AppContext } from '../context.js';
import { enqueueRun } from '../control/control.service.js';
import { AppError } from '../http/errors.js';
import { defineRoute } from '../http/route.js';
import { listRunsPage } from '../runs/runs.service.js';
import { deleteAgent, listAgentSummaries, upsertAgent } from './agents.service.js';
import { findAgent } from './agents.repository.js';

const AgentParams = z.object({ agent_id: Id });
const AgentDetailQuery = z.object({ include: z.enum(['runs']).optional() });
const AgentDetail = AgentSummary.extend({ runs: z.array(Run).optional() });

/** `/agents`: the agent list with health, upsert, detail, delete, runs and enqueue. */
export async function agentsRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  defineRoute(app, {
    method: 'GET',
    url: '/api/v1/agents',
    scope: 'read',
    tag: 'agents',
    summary:
      'Agents by id, each with its latest run, last_error (its newest failed or timed-out run) ' +
      'and counts_24h (hour-granular: runs from the start of the hour 24 h ago)',
    response: z.object({ agents: z.array(AgentSummary) }),
    handler: async ({ auth }) => ({
      agents: await listAgentSummaries(ctx.db, auth.projectId, Date.now()),
    }),
  });

  defineRoute(app, {
    method: 'PUT',
    url: '/api/v1/agents/:agent_id',
    scope: 'write',
    tag: 'agents',
    summary:
      'Create or update an agent; absent fields keep their value, schedule: null removes the ' +
      'schedule. The cron expression and time zone are checked here',
    params: AgentParams,
    body: AgentUpsertBody,
    response: Agent,
    handler: async ({ auth, params, body }) => {
      const agent = await upsertAgent(ctx.db, auth.projectId, params.agent_id, body, {
        now: Date.now(),
        maxFieldBytes: ctx.config.maxFieldBytes,
      });
      // after the write: subscribers of `agents` and `agent:<id>` (dashboards) see it at once
      ctx.hub.publish({ kind: 'agent', projectId: auth.projectId, agentId: agent.id, agent });
      return agent;
    },
  });

  defineRoute(app, {
    method: 'GET',
    url: '/api/v1/agents/:agent_id',
    scope: 'read',
    tag: 'agents',
    summary:
      'An agent with its latest run, last error and 24 h counts; ?include=runs adds its 20 newest runs',
    params: AgentParams,
    query: AgentDetailQuery,
    response: AgentDetail,
    handler: async ({ auth, params, query }) => {
      const [summary] = await listAgentSummaries(
        ctx.db,
        auth.projectId,
        Date.now(),
        params.agent_id,
      );
      if (!summary) throw AppError.notFound('agent', params.agent_id);
      if (query.include !== 'runs') return summary;
      const page = await listRunsPage(
        ctx.db,
        auth.projectId,
        { agentIds: [params.agent_id] },
        { limit: 20 },
      );
      return { ...summary, runs: page.runs };
    },
  });

  defineRoute(app, {
    method: 'DELETE',
    url: '/api/v1/agents/:agent_id',
    scope: 'write',
    tag: 'agents',
    summary: 'Delete an agent with all its runs and steps (stats drop them too)',
    params: AgentParams,
    status: 204,
    handler: async ({ auth, params }) => {
      if (!(await deleteAgent(ctx, auth.projectId, params.agent_id)))
        throw AppError.notFound('agent', params.agent_id);
      ctx.hub.publish({
        kind: 'agent',
        projectId: auth.projectId,
        agentId: params.agent_id,
        agent: null,
      });
      return undefined;
    },
  });

  defineRoute(app, {
    method: 'GET',
    url: '/api/v1/agents/:agent_id/runs',
    scope: 'read',
    tag: 'agents',
    summary: "An agent's runs newest first; page with next_cursor",
    params: AgentParams,
    query: AgentRunsQuery,
    response: RunList,
    handler: async ({ auth, params, query }) => {
      const page = await listRunsPage(
        ctx.db,
        auth.projectId,
        {
          agentIds: [params.agent_id],
          ...(query.status ? { statuses: query.status } : {}),
          ...(query.trigger ? { triggers: query.trigger } : {}),
        },
        { limit: query.limit, cursor: query.cursor },
      );
      // runs of the agent show it exists; only an empty page asks (an unknown agent is a 404)
      if (page.runs.length === 0 && !(await findAgent(ctx.db, auth.projectId, params.agent_id)))
        throw AppError.notFound('agent', params.agent_id);
      return page;
    },
  });

  defineRoute(app, {
    method: 'POST',
    url: '/api/v1/agents/:agent_id/runs',
    scope: 'write',
    tag: 'agents',
    summary:
      'Queue a run for a worker (trigger api unless manual is given); 202 with the queued run. ' +
      'An id makes the call idempotent',
    params: AgentParams,
    body: EnqueueRunBody,
    response: Run,
    answers: {
      409: 'The given id belongs to a run of another agent, or parent_run_id names a run stopped already',
      413: 'The input is over the size a field holds (1 MiB): the worker would get it truncated',
    },
    status: 202,
    handler: async ({ auth, params, body }) => {
      const { run } = await enqueueRun(ctx, auth.projectId, params.agent_id, {
        ...body,
        trigger: body.trigger ?? 'api',
      });
      return run;
    },
  });
}
