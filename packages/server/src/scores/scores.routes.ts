import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import {
  Id,
  MAX_SCORES_PER_RUN,
  PostScoreBody,
  Score,
  ScoreList,
  newId,
  type IngestEvent,
} from '@runlog/core';
import type { AppContext } from '../context.js';
import { AppError } from '../http/errors.js';
import { defineRoute } from '../http/route.js';
import { assertEventValid } from '../ingest/ingest.service.js';
import { samePathId } from '../ingest/ingest.routes.js';
import { applyEvents } from '../ingest/writer.js';
import { findRun } from '../runs/runs.repository.js';
import { listScores, toScore } from './scores.js';

const RunParams = z.object({ run_id: Id });
const ScoreParams = z.object({ run_id: Id, score_id: Id });

/** Scores of runs: an evaluator's verdict, a user's feedback, a reviewer's label. */
export async function scoresRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  defineRoute(app, {
    method: 'POST',
    url: '/api/v1/runs/:run_id/scores',
    scope: 'write',
    tag: 'runs',
    summary:
      'Score a run or one of its steps: a number, true/false or a label. 201 with the score; ' +
      'an id naming a score of the run replaces it (200)',
    params: RunParams,
    body: PostScoreBody,
    // 201 for a new score, 200 for one replaced: the status is the handler's
    response: Score,
    answers: {
      201: { description: 'A new score', schema: Score },
      409: 'The run holds as many scores as a run may (1,000)',
      // a score is recorded through the write path, which refuses one while it is behind
      429: 'The write path is behind: retry',
    },
    handler: async ({ auth, params, body, reply }) => {
      samePathId(body.run_id, params.run_id, 'body.run_id');
      const projectId = auth.projectId;
      const id = body.id ?? newId();
      const event: IngestEvent = { type: 'score', score: { ...body, id, run_id: params.run_id } };
      assertEventValid(event);
      const { existed, row } = await ctx.writer.transact(
        async (uow, env) => {
          await uow.loadRuns(projectId, [params.run_id]);
          if (!uow.getRun(projectId, params.run_id)) throw AppError.notFound('run', params.run_id);
          // the step must be there now (an /ingest score may come before its step)
          if (body.step_id) {
            await uow.loadSteps(projectId, [{ run_id: params.run_id, id: body.step_id }]);
            if (!uow.getStep(projectId, params.run_id, body.step_id))
              throw AppError.invalid(
                'body.step_id',
                `run ${params.run_id} has no step ${body.step_id}`,
              );
          }
          await uow.loadScores(projectId, [
            { run_id: params.run_id, id, fresh: body.id === undefined },
          ]);
          const before = uow.getScore(projectId, params.run_id, id);
          const refused = await applyEvents(uow, projectId, [event], env);
          if (refused.length > 0) {
            const message = `holds ${MAX_SCORES_PER_RUN} scores already, the most a run holds`;
            throw new AppError('conflict', `run ${params.run_id} ${message}`, [
              { field: 'params.run_id', message },
            ]);
          }
          // as written: the answer is the committed row
          return {
            existed: before !== undefined,
            row: uow.getScore(projectId, params.run_id, id)!,
          };
        },
        { events: 1, projectId },
      );
      if (!existed) void reply.status(201);
      return toScore(row);
    },
  });

  defineRoute(app, {
    method: 'GET',
    url: '/api/v1/runs/:run_id/scores',
    scope: 'read',
    tag: 'runs',
    summary: "A run's scores, oldest first",
    params: RunParams,
    response: ScoreList,
    handler: async ({ auth, params }) => {
      if (!(await findRun(ctx.db, auth.projectId, params.run_id)))
        throw AppError.notFound('run', params.run_id);
      const rows = await listScores(ctx.db, auth.projectId, params.run_id);
      return { scores: rows.map(toScore) };
    },
  });

  defineRoute(app, {
    method: 'DELETE',
    url: '/api/v1/runs/:run_id/scores/:score_id',
    scope: 'write',
    tag: 'runs',
    summary: 'Delete a score of a run',
    params: ScoreParams,
    status: 204,
    handler: async ({ auth, params }) => {
      const projectId = auth.projectId;
      await ctx.writer.transact(
        async (uow) => {
          await uow.loadRuns(projectId, [params.run_id]);
          if (!uow.getRun(projectId, params.run_id)) throw AppError.notFound('run', params.run_id);
          await uow.loadScores(projectId, [{ run_id: params.run_id, id: params.score_id }]);
          if (!uow.deleteScore(projectId, params.run_id, params.score_id))
            throw AppError.notFound('score', params.score_id);
        },
        { events: 0, projectId: undefined },
      );
      return undefined;
    },
  });
}
