import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import {
  ClaimBody,
  ClaimResponse,
  EnqueueRunsBody,
  EnqueuedRuns,
  HeartbeatBody,
  HeartbeatResponse,
  HeartbeatRunsBody,
  HeartbeatRunsResponse,
  Id,
  ReleaseBody,
  Run,
  WorkerId,
  WorkerList,
  scopeAllows,
} from '@runlog/core';
import type { AppContext } from '../context.js';
import { AppError } from '../http/errors.js';
import { defineRoute } from '../http/route.js';
import { enqueueRuns } from './control.service.js';
import {
  DEFAULT_CLAIM_LEASE_MS,
  claimRuns,
  noteWorkerSeen,
  heartbeatRun,
  forgetWorker,
  heartbeatRuns,
  listWorkers,
  noteWorker,
  releaseRun,
  shuttingDown,
  waitForQueued,
} from './workers.service.js';

const RunParams = z.object({ run_id: Id });
const WorkerParams = z.object({ worker_id: WorkerId });
const WorkerStopQuery = z.object({
  release: z
    .enum(['true', 'false'])
    .optional()
    .describe('give the runs still running under this worker id back to the queue'),
});

/** How often a waiting claim looks again, for runs queued on other instances. */
const CLAIM_POLL_MS = 1_000;

/** Workers and control: claim queued runs, renew leases, give runs back. */
export async function controlRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  defineRoute(app, {
    method: 'POST',
    url: '/api/v1/workers/claim',
    scope: 'write',
    tag: 'workers',
    summary:
      'Claim the oldest queued run of the given agents (now running under a lease), or 204 after ' +
      'wait_ms; with max, up to max runs as {runs: [...]}',
    body: ClaimBody,
    response: ClaimResponse,
    answers: { 204: 'Nothing was queued within wait_ms' },
    handler: async ({ auth, body, request, reply }) => {
      let gone = false;
      reply.raw.once('close', () => (gone = true));
      const deadline = Date.now() + body.wait_ms;
      const workerId = body.worker_id ?? `key:${auth.keyId}`;
      for (;;) {
        // a worker that hung up must not be handed a run it will never execute (the request
        // stream itself is destroyed once its body is read: the socket tells)
        if (gone || request.raw.socket.destroyed) return reply.status(204).send();
        // a key revoked (or a session ended) while the poll waits is handed no run: a leaked
        // key's worker would otherwise take the next one, input and all, up to wait_ms later
        const still = await ctx.auth.authenticateRequest(request);
        if (still?.projectId !== auth.projectId || !scopeAllows(still.scope, 'write'))
          throw new AppError(
            'unauthorized',
            'the key or session of this request was revoked while it waited',
          );
        await Promise.all([
          noteWorkerSeen(ctx, auth.projectId, body.agents),
          noteWorker(ctx, auth.projectId, workerId, body.agents),
        ]);
        const runs = await claimRuns(ctx, auth.projectId, {
          agents: body.agents,
          leaseMs: body.lease_ms ?? DEFAULT_CLAIM_LEASE_MS,
          workerId,
          max: body.max ?? 1,
        });
        if (runs.length > 0) {
          // it hung up while the claim committed (a worker stopping mid-poll): its runs go
          // back to the queue, or they would lapse to timed_out unexecuted
          if (gone || request.raw.socket.destroyed) {
            for (const run of runs) await releaseRun(ctx, auth.projectId, run.id, workerId);
            return reply.status(204).send();
          }
          return body.max === undefined ? runs[0] : { runs };
        }
        const left = deadline - Date.now();
        // a server shutting down answers the poll, so it can close and the worker ask another
        if (left <= 0 || shuttingDown(ctx)) return reply.status(204).send();
        await waitForQueued(ctx, auth.projectId, body.agents, Math.min(left, CLAIM_POLL_MS));
      }
    },
  });

  defineRoute(app, {
    method: 'GET',
    url: '/api/v1/workers',
    scope: 'read',
    tag: 'workers',
    summary:
      'The workers seen in the last 24 hours (claims and heartbeats): the agents each asks ' +
      'for, whether it is online (seen in the last 90 s), and the runs it holds now',
    response: WorkerList,
    handler: ({ auth }) => listWorkers(ctx, auth.projectId),
  });

  defineRoute(app, {
    method: 'DELETE',
    url: '/api/v1/workers/:worker_id',
    scope: 'write',
    tag: 'workers',
    summary:
      'A worker stops: it leaves the workers list at once (its next claim, if any, lists it ' +
      'again); with release=true the runs still running under its id go back to the queue. ' +
      '204 whether or not it was listed',
    params: WorkerParams,
    query: WorkerStopQuery,
    status: 204,
    handler: async ({ auth, params, query }) => {
      await forgetWorker(ctx, auth.projectId, params.worker_id, {
        release: query.release === 'true',
      });
      return undefined;
    },
  });

  defineRoute(app, {
    method: 'POST',
    url: '/api/v1/runs/:run_id/heartbeat',
    scope: 'write',
    tag: 'workers',
    summary: 'Keep a running run alive; answers whether Stop was pressed',
    params: RunParams,
    body: HeartbeatBody,
    response: HeartbeatResponse,
    answers: { 409: 'The run is held by another worker (worker_id)' },
    handler: async ({ auth, params, body }) => {
      if (body.worker_id) await noteWorker(ctx, auth.projectId, body.worker_id, undefined);
      return heartbeatRun(ctx, auth.projectId, params.run_id, {
        leaseMs: body.lease_ms,
        workerId: body.worker_id,
      });
    },
  });

  defineRoute(app, {
    method: 'POST',
    url: '/api/v1/runs/heartbeat',
    scope: 'write',
    tag: 'workers',
    summary:
      'Keep several running runs alive in one request (a worker with many runs); each run ' +
      'answers on its own, a missing or foreign one with its error',
    body: HeartbeatRunsBody,
    response: HeartbeatRunsResponse,
    handler: async ({ auth, body }) => {
      if (body.worker_id) await noteWorker(ctx, auth.projectId, body.worker_id, undefined);
      return {
        runs: await heartbeatRuns(ctx, auth.projectId, body.runs, {
          leaseMs: body.lease_ms,
          workerId: body.worker_id,
        }),
      };
    },
  });

  defineRoute(app, {
    method: 'POST',
    url: '/api/v1/runs/enqueue',
    scope: 'write',
    tag: 'workers',
    summary:
      'Queue runs of any agents in one request, all or none; 202 with the queued runs in the ' +
      'order asked. An id makes its run idempotent',
    body: EnqueueRunsBody,
    response: EnqueuedRuns,
    answers: {
      409: 'A given id belongs to a run of another agent, or a parent_run_id names a run stopped already (nothing was queued)',
      413: 'An input is over the size a field holds (1 MiB; nothing was queued)',
    },
    status: 202,
    handler: async ({ auth, body }) => {
      const queued = await enqueueRuns(
        ctx,
        auth.projectId,
        body.runs.map((r) => ({ ...r, trigger: r.trigger ?? 'api' })),
        { named: true },
      );
      return { runs: queued.map((q) => q.run) };
    },
  });

  defineRoute(app, {
    method: 'POST',
    url: '/api/v1/runs/:run_id/release',
    scope: 'write',
    tag: 'workers',
    summary: 'Give a claimed run back to the queue (a worker shutting down)',
    params: RunParams,
    body: ReleaseBody,
    response: Run,
    answers: { 409: 'No worker claimed the run, or another worker holds it' },
    handler: ({ auth, params, body }) =>
      releaseRun(ctx, auth.projectId, params.run_id, body.worker_id),
  });
}
