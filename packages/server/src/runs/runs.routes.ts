import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import {
  Id,
  RetryRunBody,
  Run,
  RUN_EXPORT_FORMATS,
  RunExportQuery,
  RunList,
  RunListQuery,
  RunWithSteps,
  STEPS_PAGE,
  StepList,
  StepListQuery,
  Timeline,
  buildTimeline,
} from '@runlog/core';
import type { AppContext } from '../context.js';
import { cancelRun, deleteRun, retryRun, startRunNow } from '../control/control.service.js';
import { AppError } from '../http/errors.js';
import { defineRoute } from '../http/route.js';
import { EXPORT_MEDIA_TYPES, exportFileName, exportStream, exportedRuns } from './runs.export.js';
import { toRun } from './runs.mapper.js';
import { findRun, type RunFilter } from './runs.repository.js';
import type { RunRow } from '../db/schema.js';
import {
  TOTAL_CAP,
  decodeStepCursor,
  listRunsPage,
  listStepPage,
  listTimelineSteps,
} from './runs.service.js';

const RunParams = z.object({ run_id: Id });
const RunDetailQuery = z.object({ include: z.enum(['steps']).optional() });

/** A 400 naming `query.to` when the range is backwards. */
export function checkRange(from: number | undefined, to: number | undefined): void {
  if (from !== undefined && to !== undefined && from > to) {
    throw AppError.invalid('query.to', 'must not be before from');
  }
}

/** The runs `GET /runs` (and its exports) keep for a query; a 400 naming a field when bad. */
function runFilter(query: RunExportQuery): RunFilter {
  checkRange(query.from, query.to);
  const score = scoreFilter(query);
  return {
    ...(query.agent_id ? { agentIds: query.agent_id } : {}),
    ...(query.status ? { statuses: query.status } : {}),
    ...(query.trigger ? { triggers: query.trigger } : {}),
    ...(query.source !== undefined ? { source: query.source } : {}),
    ...(query.user_id !== undefined ? { userId: query.user_id } : {}),
    ...(query.thread_id !== undefined ? { threadId: query.thread_id } : {}),
    ...(query.retry_of !== undefined ? { retryOf: query.retry_of } : {}),
    ...(query.parent_run_id !== undefined ? { parentRunId: query.parent_run_id } : {}),
    ...(query.retried !== undefined ? { retried: query.retried } : {}),
    ...(query.tag !== undefined ? { tag: query.tag } : {}),
    ...(query.metadata !== undefined ? { metadata: query.metadata } : {}),
    ...(query.model !== undefined ? { model: query.model } : {}),
    ...(score ? { score } : {}),
    ...(query.from !== undefined ? { from: query.from } : {}),
    ...(query.to !== undefined ? { to: query.to } : {}),
    ...(query.q !== undefined ? { q: query.q } : {}),
  };
}

/** `GET /runs`'s score filter; its bounds and label without a `score` are a 400 naming it. */
function scoreFilter(query: RunExportQuery): RunFilter['score'] {
  if (query.score === undefined) {
    if (
      query.score_min !== undefined ||
      query.score_max !== undefined ||
      query.score_label !== undefined
    )
      throw AppError.invalid(
        'query.score',
        'score_min, score_max and score_label need a score name',
      );
    return undefined;
  }
  return {
    name: query.score,
    ...(query.score_min !== undefined ? { min: query.score_min } : {}),
    ...(query.score_max !== undefined ? { max: query.score_max } : {}),
    ...(query.score_label !== undefined ? { label: query.score_label } : {}),
  };
}

/** Reading runs (`GET /runs`, detail, steps, timeline) and Stop / Retry / Delete. */
export async function runsRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  async function loadRun(projectId: string, runId: string): Promise<RunRow> {
    const row = await findRun(ctx.db, projectId, runId);
    if (!row) throw AppError.notFound('run', runId);
    return row;
  }

  defineRoute(app, {
    method: 'GET',
    url: '/api/v1/runs',
    scope: 'read',
    tag: 'runs',
    summary:
      'Runs newest first (sort_at desc, id desc). Filters combine; agent_id and status take ' +
      'comma lists; q searches input, output and error text; from/to bound the run time ' +
      '(inclusive). Page with the opaque next_cursor (keyset) or offset. total comes from the ' +
      'rollups when only agent_id/status/trigger filter; otherwise it counts at most ' +
      `${TOTAL_CAP} runs and then adds total_capped: true (total is a lower bound).`,
    query: RunListQuery,
    response: RunList,
    handler: async ({ auth, query }) =>
      listRunsPage(ctx.db, auth.projectId, runFilter(query), {
        limit: query.limit,
        cursor: query.cursor,
        offset: query.offset,
        sort: query.sort,
      }),
  });

  for (const format of RUN_EXPORT_FORMATS) {
    defineRoute(app, {
      method: 'GET',
      url: `/api/v1/runs.${format}`,
      scope: 'read',
      tag: 'runs',
      summary:
        `The runs GET /runs lists for the same filters and sort, in one ${format === 'csv' ? 'CSV file (a header row, then a row a run: ids, status, times, counts, tokens, cost, error, input and output as text)' : 'JSON Lines file (a line a run, as GET /runs lists it)'}, ` +
        'streamed as a download; at most limit runs (default 10000, up to 100000)',
      query: RunExportQuery,
      response: z.string().describe(format === 'csv' ? 'RFC 4180 CSV' : 'JSON Lines'),
      responseType: EXPORT_MEDIA_TYPES[format].split(';')[0]!,
      handler: ({ auth, query, reply }) => {
        const runs = exportedRuns(ctx.db, auth.projectId, runFilter(query), {
          limit: query.limit,
          sort: query.sort,
        });
        return reply
          .type(EXPORT_MEDIA_TYPES[format])
          .header(
            'content-disposition',
            `attachment; filename="${exportFileName(format, query.agent_id)}"`,
          )
          .send(exportStream(runs, format));
      },
    });
  }

  defineRoute(app, {
    method: 'GET',
    url: '/api/v1/runs/:run_id',
    scope: 'read',
    tag: 'runs',
    summary: `A run; with its steps in time order when ?include=steps (the first ${STEPS_PAGE}, and steps_next_cursor for the rest)`,
    params: RunParams,
    query: RunDetailQuery,
    response: RunWithSteps.partial({ steps: true }),
    handler: async ({ auth, params, query }) => {
      const run = toRun(await loadRun(auth.projectId, params.run_id));
      if (query.include !== 'steps') return run;
      const page = await listStepPage(ctx.db, auth.projectId, params.run_id, STEPS_PAGE);
      return {
        ...run,
        steps: page.steps,
        ...(page.next_cursor ? { steps_next_cursor: page.next_cursor } : {}),
      };
    },
  });

  defineRoute(app, {
    method: 'GET',
    url: '/api/v1/runs/:run_id/steps',
    scope: 'read',
    tag: 'runs',
    summary: `A run's steps in time order, in pages of up to ${STEPS_PAGE} (limit, cursor)`,
    params: RunParams,
    query: StepListQuery,
    response: StepList,
    handler: async ({ auth, params, query }) => {
      const run = await loadRun(auth.projectId, params.run_id);
      const after = query.cursor !== undefined ? decodeStepCursor(query.cursor) : undefined;
      const page = await listStepPage(ctx.db, auth.projectId, params.run_id, query.limit, after);
      return { ...page, total: run.step_count };
    },
  });

  defineRoute(app, {
    method: 'GET',
    url: '/api/v1/runs/:run_id/timeline',
    scope: 'read',
    tag: 'runs',
    summary:
      'Run and step start/end events in time order, nested steps linked to their parent; ' +
      'a run in progress is measured up to now',
    params: RunParams,
    response: Timeline,
    handler: async ({ auth, params }) => {
      const run = await loadRun(auth.projectId, params.run_id);
      const page = await listTimelineSteps(ctx.db, auth.projectId, params.run_id);
      const timeline = buildTimeline(toRun(run), page.steps, Date.now());
      if (page.has_more)
        timeline.summary.steps_omitted = Math.max(0, run.step_count - page.steps.length);
      return timeline;
    },
  });

  defineRoute(app, {
    method: 'POST',
    url: '/api/v1/runs/:run_id/cancel',
    scope: 'write',
    tag: 'runs',
    summary:
      'Stop: a queued run is cancelled at once; a running one gets cancel_requested_at and ' +
      'the agent running it (its worker, or the SDK) is told to stop. Its queued and running ' +
      'sub-runs (parent_run_id) are stopped with it. 409 when the run already ended',
    params: RunParams,
    response: Run,
    answers: { 409: 'The run already ended' },
    handler: ({ auth, params }) => cancelRun(ctx, auth.projectId, params.run_id),
  });

  defineRoute(app, {
    method: 'POST',
    url: '/api/v1/runs/:run_id/start-now',
    scope: 'write',
    tag: 'runs',
    summary:
      'Start now: a queued run held back until later (delay_ms, run_at, or an automatic ' +
      "retry's delay) may be taken by a worker at once; its queued_at becomes now. A queued " +
      'run already due is answered as it is; 409 for a run no longer queued',
    params: RunParams,
    response: Run,
    answers: { 409: 'The run is not queued (it started or ended)' },
    handler: ({ auth, params }) => startRunNow(ctx, auth.projectId, params.run_id),
  });

  defineRoute(app, {
    method: 'POST',
    url: '/api/v1/runs/:run_id/retry',
    scope: 'write',
    tag: 'runs',
    summary:
      'Retry: 201 with a new queued run of the same agent, input and thread with retry_of and ' +
      'attempt + 1. 409 while the run has not ended. With an `id` in the body, sending the ' +
      'call again answers the same retry. With `once: true`, a run retried already is not ' +
      'retried again: 200 with its newest retry, nothing queued (the check and the queuing ' +
      'are atomic, so concurrent callers queue one retry)',
    params: RunParams,
    body: RetryRunBody,
    // 201 for a retry queued (or the same call sent again), 200 for an earlier one answered
    // under `once`: the status is the handler's
    response: Run,
    answers: {
      200: {
        description: 'With once: the run was retried already; its newest retry (nothing queued)',
        schema: Run,
      },
      201: {
        description: 'A new queued run retrying this one (or, with an id, the one it queued)',
        schema: Run,
      },
      409:
        'The run is still queued or running, its input was stored truncated, or the id belongs ' +
        'to a run that is not its retry',
    },
    handler: async ({ auth, params, body, reply }) => {
      const { run, earlier } = await retryRun(ctx, auth.projectId, params.run_id, body);
      if (!earlier) void reply.status(201);
      return run;
    },
  });

  defineRoute(app, {
    method: 'DELETE',
    url: '/api/v1/runs/:run_id',
    scope: 'write',
    tag: 'runs',
    summary: 'Delete a run and its steps (stats drop it too)',
    params: RunParams,
    status: 204,
    handler: async ({ auth, params }) => {
      if (!(await deleteRun(ctx, auth.projectId, params.run_id)))
        throw AppError.notFound('run', params.run_id);
      return undefined;
    },
  });
}
