import { nanosToUsd, toIso } from '@runlog/core';
import { sql } from 'kysely';
import type { AppContext } from '../context.js';
import { statusIn } from '../db/dialect.js';
import type { AgentRow, RunRow } from '../db/schema.js';
import { BUDGET_EXCEEDED } from './auto-retry.js';
import { endRun, stopSubRuns, type RunEnding } from './control.service.js';
import type { UnitOfWork } from '../ingest/unit-of-work.js';
import { parseObject } from '../ingest/apply.js';
import { STAND_IN_KEY } from '../otlp/otlp.mapper.js';
import { DEFAULT_CLAIM_LEASE_MS } from './workers.service.js';

/** Most runs ended per sweep and kind; the next sweep takes the rest. */
const BATCH = 500;

/**
 * How long after the sweeper starts a limit of a running run that passed before it started
 * (a lease, a deadline, a stop's grace period, passed while no server could hear the
 * worker's heartbeat or the run's end) still waits: one worker lease, for workers and SDKs
 * to reach the server again and renew, end or confirm. A queued run's wait is not extended.
 */
export const RESTART_GRACE_MS = DEFAULT_CLAIM_LEASE_MS;

/**
 * When the sweeper started, and the grace a limit that passed before then gets. A limit
 * passed while no server was up is no sign the agent is gone: its heartbeats and its end
 * had nowhere to go, and come once it is back.
 */
export interface SweepRestart {
  at: number;
  graceMs: number;
}

/**
 * The time a limit counts as passed: itself, or for one that passed before the sweeper
 * started, the end of the grace after the start.
 */
function passedAt(limit: number, restart: SweepRestart | undefined): number {
  return restart && limit < restart.at ? restart.at + restart.graceMs : limit;
}

/** An agent's limits on one run (its `max_*` columns); `null`: no limit. */
export type RunLimits = Pick<AgentRow, 'max_cost_nanos' | 'max_tokens' | 'max_steps'>;

/**
 * What the sweep reads of a run's agent: its limits on one run, and, when read, its
 * `timeout_ms` (what a queued run's timeout message names), whether it is paused (a
 * paused agent's queued runs do not time out: their wait counts again from its resume) and
 * whether it is over its 24 h budget (a queued run's timeout then says so).
 */
export type SweptAgent = RunLimits &
  Partial<Pick<AgentRow, 'timeout_ms' | 'paused_at' | 'over_budget_at'>>;

/** The limit a running run has gone past, said as its error; `undefined` within them all. */
export function budgetVerdict(run: RunRow, limits: RunLimits): RunEnding | undefined {
  const over = (what: string, used: number, limit: number | null, say: (n: number) => string) =>
    limit !== null && used > Number(limit)
      ? {
          status: 'failed' as const,
          error: {
            message: `stopped: ${say(used)} passed the agent's ${what} (${say(Number(limit))})`,
            type: BUDGET_EXCEEDED,
          },
        }
      : undefined;
  const count = (n: number) => n.toLocaleString('en-US');
  return (
    over(
      'max_cost_usd',
      Number(run.cost_nanos),
      limits.max_cost_nanos,
      (n) => `$${nanosToUsd(n)}`,
    ) ??
    over(
      'max_tokens',
      Number(run.input_tokens) + Number(run.output_tokens),
      limits.max_tokens,
      (n) => `${count(n)} ${n === 1 ? 'token' : 'tokens'}`,
    ) ??
    over(
      'max_steps',
      Number(run.step_count),
      limits.max_steps,
      (n) => `${count(n)} ${n === 1 ? 'step' : 'steps'}`,
    )
  );
}

/**
 * Why a run must end now, or `undefined` while it may go on. `limits`: its agent's limits
 * on one run, which end a running run no one asked to stop.
 */
export function sweepVerdict(
  run: RunRow,
  now: number,
  cancelGraceMs: number,
  restart?: SweepRestart,
  limits?: SweptAgent,
): RunEnding | undefined {
  const active = run.status === 'running' || run.status === 'queued';
  if (!active) return undefined;
  // held in the queue on purpose: the wait for a worker counts again from the resume
  if (run.status === 'queued' && limits?.paused_at != null) return undefined;
  // a queued run has nobody to renew or end it: its wait ends as it would have
  const grace = run.status === 'running' ? restart : undefined;
  const passed = (limit: number | null) => limit !== null && passedAt(limit, grace) < now;
  if (run.deadline_at !== null && passed(run.deadline_at)) {
    // Stop was asked for before the timeout passed: the run ends as the user wanted, not as
    // a failure (a Stop after it, before the sweep came by, does not undo the timeout)
    if (
      run.status === 'running' &&
      run.cancel_requested_at !== null &&
      run.cancel_requested_at <= run.deadline_at
    )
      return {
        status: 'cancelled',
        error: {
          message: `stopped: its timeout_ms passed before ${
            run.worker_id !== null ? 'its worker' : 'the process running it'
          } confirmed the stop`,
          type: 'Cancelled',
        },
      };
    // a recorded run's deadline counts from when this server learned of its start, which its
    // agent's clock may put an hour before or after: its agent's timeout_ms is the limit, as
    // is a queued run's, whose deadline moves on by a pause of its agent
    const from = run.started_at ?? run.queued_at;
    const limit =
      (run.status === 'queued' || run.worker_id === null) && limits?.timeout_ms != null
        ? `${limits.timeout_ms} ms`
        : from !== null && run.deadline_at > Math.max(from, run.created_at)
          ? `${run.deadline_at - Math.max(from, run.created_at)} ms`
          : 'its limit';
    return {
      status: 'timed_out',
      error: {
        message:
          run.status === 'queued'
            ? `timed out after timeout_ms (${limit}) while still queued: no worker claimed it in time (${
                limits?.over_budget_at != null
                  ? "its agent's runs of the last 24 hours cost its budget, max_cost_usd_24h, so none was handed it"
                  : "none asked, or its agent's concurrency caps held it back"
              })`
            : `timed out after timeout_ms (${limit}) without finishing`,
        type: 'Timeout',
      },
    };
  }
  if (run.status !== 'running') return undefined;
  if (run.cancel_requested_at !== null && passed(run.cancel_requested_at + cancelGraceMs)) {
    return {
      status: 'cancelled',
      error: {
        // a claimed run has a worker; a run recorded by the SDK or by hand, only its process
        message: `stop forced after grace period (${cancelGraceMs} ms): ${
          run.worker_id !== null ? 'its worker' : 'the process running it'
        } never confirmed`,
        type: 'Cancelled',
      },
    };
  }
  if (passed(run.lease_expires_at)) {
    const since = toIso(run.last_heartbeat_at ?? run.started_at ?? run.updated_at);
    // a recorded run's lease is renewed by its events, which leave no time of their own on
    // the row: say when the lease ran out, not a 'since' that would be its start
    const expired = toIso(run.lease_expires_at);
    // Stop was asked for: the run ends as the user wanted, whoever stopped answering first
    if (run.cancel_requested_at !== null)
      return {
        status: 'cancelled',
        error: {
          message: `stopped: ${
            run.worker_id !== null
              ? `the lease of worker ${run.worker_id} expired`
              : 'the lease expired'
          } before it confirmed the stop`,
          type: 'Cancelled',
        },
      };
    return {
      status: 'timed_out',
      error: {
        message:
          run.worker_id !== null
            ? // beats are written only once half the lease is gone: those in between leave no
              // time on the row, so say when it was last renewed, not 'no heartbeat since'
              `lease expired at ${expired}: no heartbeat from worker ${run.worker_id} renewed it (last renewed ${since})`
            : `lease expired at ${expired}: no event or heartbeat from the agent renewed it`,
        type: 'LeaseExpired',
      },
    };
  }
  // a runaway run, still heard from: ended, and its agent told so on its next heartbeat (a
  // stop asked for first ends as asked; a run gone quiet ends as its lease says)
  if (limits && run.cancel_requested_at === null) return budgetVerdict(run, limits);
  return undefined;
}

/**
 * One sweep: ends every run whose lease lapsed, whose deadline passed or whose stop is overdue.
 * `now` may be given (tests look ahead in time); the database is re-read under the lock.
 * `restart`: while its grace lasts, limits that passed before the sweeper started wait.
 */
export async function sweepOnce(
  ctx: AppContext,
  now = Date.now(),
  restart?: SweepRestart,
): Promise<number> {
  const k = ctx.db.kysely;
  const grace = ctx.config.cancelGraceMs;
  // still in the grace after a start: only limits that passed since the start count
  const waiting = restart !== undefined && now <= restart.at + restart.graceMs;
  const candidates = [
    ...(await k
      .selectFrom('runs')
      .select(['project_id', 'id'])
      .where(statusIn('running'))
      .where('lease_expires_at', '<', now)
      .$if(waiting, (q) => q.where('lease_expires_at', '>=', restart!.at))
      .limit(BATCH)
      .execute()),
    ...(await k
      .selectFrom('runs')
      .select(['project_id', 'id'])
      .where(statusIn('running'))
      .where('deadline_at', '<', now)
      .$if(waiting, (q) => q.where('deadline_at', '>=', restart!.at))
      .limit(BATCH)
      .execute()),
    // a queued run's wait ends as it would have, restarted or not; but a paused agent's runs
    // wait on (read past here, or a paused agent's queue would fill every batch)
    ...(await k
      .selectFrom('runs')
      .select(['project_id', 'id'])
      .where(statusIn('queued'))
      .where('deadline_at', '<', now)
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom('agents')
              .select(sql.lit(1).as('one'))
              .whereRef('agents.project_id', '=', 'runs.project_id')
              .whereRef('agents.id', '=', 'runs.agent_id')
              .where('agents.paused_at', 'is not', null),
          ),
        ),
      )
      .limit(BATCH)
      .execute()),
    ...(await k
      .selectFrom('runs')
      .select(['project_id', 'id'])
      .where(statusIn('running'))
      .where('cancel_requested_at', '<', now - grace)
      .$if(waiting, (q) => q.where('cancel_requested_at', '>=', restart!.at - grace))
      .limit(BATCH)
      .execute()),
    // runs past one of their agent's limits (cost, tokens, steps), no stop asked for
    ...(await k
      .selectFrom('runs')
      .innerJoin('agents', (join) =>
        join
          .onRef('agents.project_id', '=', 'runs.project_id')
          .onRef('agents.id', '=', 'runs.agent_id'),
      )
      .select(['runs.project_id', 'runs.id'])
      // the agents with limits (few), then each one's running runs (runs_agent_status_sort)
      .where((eb) =>
        eb.or([
          eb('agents.max_cost_nanos', 'is not', null),
          eb('agents.max_tokens', 'is not', null),
          eb('agents.max_steps', 'is not', null),
        ]),
      )
      .where(statusIn('running'))
      .where('runs.cancel_requested_at', 'is', null)
      .where((eb) =>
        eb.or([
          eb('runs.cost_nanos', '>', eb.ref('agents.max_cost_nanos')),
          // numeric on PostgreSQL: two token counts held at the bigint bound would overflow
          eb(
            ctx.db.dialect === 'postgres'
              ? sql`runs.input_tokens::numeric + runs.output_tokens`
              : sql`runs.input_tokens + runs.output_tokens`,
            '>',
            eb.ref('agents.max_tokens'),
          ),
          eb('runs.step_count', '>', eb.ref('agents.max_steps')),
        ]),
      )
      .limit(BATCH)
      .execute()),
  ];
  if (candidates.length === 0) return 0;
  const byProject = new Map<string, Set<string>>();
  for (const c of candidates) {
    let set = byProject.get(c.project_id);
    if (!set) byProject.set(c.project_id, (set = new Set()));
    set.add(c.id);
  }
  let ended = 0;
  for (const [projectId, ids] of byProject) {
    ended += await ctx.writer.transact(async (uow, env) => {
      const at = Math.max(env.now, now);
      await uow.loadRuns(projectId, ids);
      const limits = await agentLimits(uow, projectId, ids);
      let n = 0;
      const stopped: string[] = [];
      for (const id of ids) {
        const run = uow.getRun(projectId, id);
        // looked at again under the lock: a heartbeat or an end may have come in meanwhile
        const verdict = run && sweepVerdict(run, at, grace, restart, limits.get(run.agent_id));
        if (!run || !verdict) continue;
        if (verdict.error?.type === 'LeaseExpired' && rootlessTrace(run))
          await endRootlessTrace(uow, run, at);
        else {
          await endRun(uow, run, verdict, at);
          stopped.push(id);
        }
        n++;
      }
      // a run the control plane ended (its timeout, its limits, its lease, an overdue stop)
      // is over: its sub-runs on workers stop with it, as they do on Stop
      if (stopped.length > 0 && (await stopSubRuns(uow, projectId, stopped, at)) > 0)
        await uow.closeStepsOfEndedRuns();
      return n;
    });
  }
  return ended;
}

/**
 * What the sweep reads of the agents of these (loaded) runs, by agent id: those with limits,
 * a timeout, a pause or over their 24 h budget (which a queued run's timeout names).
 */
async function agentLimits(
  uow: UnitOfWork,
  projectId: string,
  runIds: Iterable<string>,
): Promise<Map<string, SweptAgent>> {
  const agentIds = new Set<string>();
  for (const id of runIds) {
    const run = uow.getRun(projectId, id);
    if (run) agentIds.add(run.agent_id);
  }
  if (agentIds.size === 0) return new Map();
  const rows = await uow.trx
    .selectFrom('agents')
    .select([
      'id',
      'max_cost_nanos',
      'max_tokens',
      'max_steps',
      'timeout_ms',
      'paused_at',
      'over_budget_at',
    ])
    .where('project_id', '=', projectId)
    .where('id', 'in', [...agentIds])
    .where((eb) =>
      eb.or([
        eb('max_cost_nanos', 'is not', null),
        eb('max_tokens', 'is not', null),
        eb('max_steps', 'is not', null),
        eb('timeout_ms', 'is not', null),
        eb('paused_at', 'is not', null),
        eb('over_budget_at', 'is not', null),
      ]),
    )
    .execute();
  return new Map(rows.map((row) => [row.id, row]));
}

/**
 * A run an OpenTelemetry trace made of its spans alone: its root span (the service's
 * caller, upstream) never arrived to say how it ended.
 */
function rootlessTrace(run: RunRow): boolean {
  return run.status === 'running' && parseObject(run.metadata)[STAND_IN_KEY] === 'spans';
}

/**
 * Ends a root-less trace's run once no span came for a lease: the trace is over, not timed
 * out. It ended with its last span, succeeded unless a span failed. A root that still comes
 * replaces this end, as it replaces every stand-in's.
 */
async function endRootlessTrace(uow: UnitOfWork, run: RunRow, at: number): Promise<void> {
  const last = await uow.trx
    .selectFrom('steps')
    .select((eb) => eb.fn.max('ended_at').as('at'))
    .where('project_id', '=', run.project_id)
    .where('run_id', '=', run.id)
    .executeTakeFirst();
  const failed = run.error_count > 0;
  await endRun(
    uow,
    run,
    {
      status: failed ? 'failed' : 'succeeded',
      error: failed
        ? {
            message: `${run.error_count} of its spans failed, and the trace's root span never arrived to say how it ended`,
            type: 'SpanFailed',
          }
        : null,
      endedAt: Math.max(
        Number(last?.at ?? 0) || (run.lease_expires_at ?? run.updated_at),
        run.started_at ?? 0,
      ),
    },
    at,
  );
}
