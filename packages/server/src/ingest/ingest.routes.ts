import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import {
  Id,
  IngestBody,
  IngestEvent,
  MAX_INGEST_EVENTS,
  eventRunId,
  IngestResponse,
  MAX_SCORES_PER_RUN,
  PatchRunBody,
  PostStepBody,
  Run,
  StartRunBody,
  Step,
  isTerminalStatus,
  newId,
  type IngestResult,
} from '@runlog/core';
import type { AppContext } from '../context.js';
import type { RunRow } from '../db/schema.js';
import { AppError } from '../http/errors.js';
import { defineRoute } from '../http/route.js';
import { findRun, findStep } from '../runs/runs.repository.js';
import { toRun, toStep } from '../runs/runs.mapper.js';
import { assertEventValid, validateEvents } from './ingest.service.js';
import { applyEvents } from './writer.js';
import { movesRun } from './apply.js';

const RunParams = z.object({ run_id: Id });

/** `POST /ingest` and the REST sugar over the same write path. */
export async function ingestRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  defineRoute(app, {
    method: 'POST',
    url: '/api/v1/ingest',
    scope: 'write',
    tag: 'recording',
    summary: 'Record up to 1000 run and step events; idempotent by ids, in any order',
    body: IngestBody,
    describedBody: z.object({ events: z.array(IngestEvent).min(1).max(MAX_INGEST_EVENTS) }),
    response: IngestResponse,
    answers: {
      207: {
        description: 'Some events were refused: `results` gives each event its own answer',
        schema: IngestResponse,
      },
    },
    handler: async ({ auth, body, reply }) => {
      const { valid, results } = validateEvents(body.events);
      const refused = await ctx.writer.submit(auth.projectId, valid);
      if (refused.length > 0) {
        // valid[i] is the i-th event whose result is ok
        const validResults = results.filter((r) => r.ok);
        for (const { index: i, reason } of refused) {
          const event = valid[i]!;
          const runId = eventRunId(event);
          const result = validResults[i]!;
          result.ok = false;
          result.error =
            reason === 'too_many_scores'
              ? tooManyScoresError(runId, result.index)
              : deletedRunError(
                  runId,
                  result.index,
                  'run' in event ? 'run.id' : 'step' in event ? 'step.run_id' : 'score.run_id',
                );
        }
      }
      const accepted = valid.length - refused.length;
      const rejected = results.length - accepted;
      if (rejected === 0) return { accepted, rejected: 0 };
      void reply.status(207);
      return { accepted, rejected, results };
    },
  });

  defineRoute(app, {
    method: 'POST',
    url: '/api/v1/runs',
    scope: 'write',
    tag: 'recording',
    summary: 'Start a run now (status running); give an id to make retries of this call idempotent',
    body: StartRunBody,
    response: Run,
    status: 201,
    answers: {
      409: 'The id belongs to a run of another agent, or to a run deleted less than a day ago',
    },
    handler: async ({ auth, body }) => {
      const projectId = auth.projectId;
      const id = body.id ?? newId();
      const event: IngestEvent = { type: 'run.start', run: { ...body, id } };
      assertEventValid(event);
      // the check and the write are one step of the write path: two calls racing with one id
      // for two agents give one run and one 409, never two 201s for one run
      await ctx.writer.transact(
        async (uow, env) => {
          await uow.loadRuns(projectId, [id]);
          // the same id again is the same call again; the id of another agent's run is a
          // conflict
          const existing = uow.getRun(projectId, id);
          if (existing && movesRun(existing.agent_id, body.agent_id)) {
            throw new AppError(
              'conflict',
              `run ${id} already exists for agent ${existing.agent_id}`,
              [{ field: 'body.id', message: `already a run of agent ${existing.agent_id}` }],
            );
          }
          const refused = await applyEvents(uow, projectId, [event], env);
          if (refused.length > 0)
            throw new AppError('conflict', `run ${id} was deleted less than a day ago`, [
              { field: 'body.id', message: 'the id of a run deleted less than a day ago' },
            ]);
        },
        { events: 1, projectId },
      );
      return toRun(await committed(findRun(ctx.db, projectId, id), 'run', id));
    },
  });

  defineRoute(app, {
    method: 'PATCH',
    url: '/api/v1/runs/:run_id',
    scope: 'write',
    tag: 'recording',
    summary: 'Update a run, or end it by giving a final status',
    params: RunParams,
    body: PatchRunBody,
    response: Run,
    answers: { 409: 'agent_id names another agent than the run belongs to' },
    handler: async ({ auth, params, body }) => {
      samePathId(body.id, params.run_id, 'body.id');
      const ends = body.status !== undefined && isTerminalStatus(body.status);
      const event: IngestEvent = {
        type: ends ? 'run.end' : 'run.update',
        run: { ...body, id: params.run_id },
      };
      assertEventValid(event);
      await applyToExistingRun(ctx, auth.projectId, params.run_id, event, (run) => {
        // moving a run to another agent is refused, as POST /runs refuses another's id
        if (movesRun(run.agent_id, body.agent_id))
          throw new AppError('conflict', `run ${run.id} belongs to agent ${run.agent_id}`, [
            { field: 'body.agent_id', message: `the run belongs to agent ${run.agent_id}` },
          ]);
      });
      return toRun(
        await committed(findRun(ctx.db, auth.projectId, params.run_id), 'run', params.run_id),
      );
    },
  });

  defineRoute(app, {
    method: 'POST',
    url: '/api/v1/runs/:run_id/steps',
    scope: 'write',
    tag: 'recording',
    summary: 'Record a step of a run: a complete one when it has an end time or a final status',
    params: RunParams,
    body: PostStepBody,
    response: Step,
    status: 201,
    handler: async ({ auth, params, body }) => {
      samePathId(body.run_id, params.run_id, 'body.run_id');
      const id = body.id ?? newId();
      const step = { ...body, id, run_id: params.run_id };
      const complete =
        body.ended_at !== undefined || (body.status !== undefined && body.status !== 'running');
      const event: IngestEvent = { type: complete ? 'step.end' : 'step.start', step };
      assertEventValid(event);
      await applyToExistingRun(ctx, auth.projectId, params.run_id, event);
      // as committed: a step started under an ended run has ended with it by now
      return toStep(
        await committed(findStep(ctx.db, auth.projectId, params.run_id, id), 'step', id),
      );
    },
  });
}

/** The result of an `/ingest` event refused because its run was deleted lately. */
function deletedRunError(runId: string, index: number, field: string): IngestResult['error'] {
  const message = `run ${runId} was deleted: its events are not recorded`;
  return {
    code: 'not_found',
    message: `events.${index}.${field}: ${message}`,
    details: [{ field: `events.${index}.${field}`, message }],
  };
}

/** The result of an `/ingest` score refused because its run holds as many as it may. */
function tooManyScoresError(runId: string, index: number): IngestResult['error'] {
  const field = `events.${index}.score.run_id`;
  const message = `run ${runId} holds ${MAX_SCORES_PER_RUN} scores already, the most a run holds`;
  return {
    code: 'conflict',
    message: `${field}: ${message}`,
    details: [{ field, message }],
  };
}

/**
 * Applies one event to a run that must exist when it is written: the check and the write
 * are one step of the write path, so a DELETE landing in between cannot bring the run back
 * (as agent `unknown`, which is what a write to a missing run creates). Resolves once
 * committed; a missing run is a 404 and writes nothing.
 */
async function applyToExistingRun(
  ctx: AppContext,
  projectId: string,
  runId: string,
  event: IngestEvent,
  check?: (run: RunRow) => void,
): Promise<void> {
  await ctx.writer.transact(
    async (uow, env) => {
      await uow.loadRuns(projectId, [runId]);
      const run = uow.getRun(projectId, runId);
      if (!run) throw AppError.notFound('run', runId);
      check?.(run);
      await applyEvents(uow, projectId, [event], env);
    },
    { events: 1, projectId },
  );
}

/** A row just written, read back; deleted in the meantime, it is a 404 like any missing one. */
/** A run id the body repeats must be the path's: another would be silently ignored. */
export function samePathId(given: string | undefined, runId: string, field: string): void {
  if (given === undefined || given === runId) return;
  const message = `must be the run of the path (${runId}) when given`;
  throw new AppError('invalid_input', `${field}: ${message}`, [{ field, message }]);
}

async function committed<R>(read: Promise<R | undefined>, what: 'run' | 'step', id: string) {
  const row = await read;
  if (!row) throw AppError.notFound(what, id);
  return row;
}
