import {
  isTerminalStatus,
  nanosToUsd,
  toIso,
  type Agent,
  type AgentSummary,
  type AgentUpsertBody,
  type RunStatus,
  type Schedule,
} from '@runlog/core';
import type { AppContext } from '../context.js';
import type { Db } from '../db/database.js';
import type { AgentRow } from '../db/schema.js';
import { nextSlot, scheduleProblems } from '../control/schedule.js';
import { AppError } from '../http/errors.js';
import { toRun } from '../runs/runs.mapper.js';
import { findRun, findRunsWithinBudget } from '../runs/runs.repository.js';
import { AGENT_LIST_PAYLOAD_BYTES } from '../db/payloads.js';
import { ensureAgents } from '../ingest/unit-of-work.js';
import { UNKNOWN_AGENT, encodeMetadata } from '../ingest/apply.js';
import { encodeRetryPolicy, limitColumns, toAgent } from './agents.mapper.js';
import {
  agentRunIds,
  counts24h,
  deleteAgentRow,
  findAgent,
  listAgentsWithLatest,
  newAgentRow,
  saveAgent,
  findErrorRuns,
  movePausedDeadlines,
  type ErrorRunRow,
} from './agents.repository.js';

/**
 * Checks a schedule and gives its next slot strictly after `after` (the scheduler's own
 * `nextSlot`): a 400 naming `body.schedule.cron` and/or `body.schedule.timezone` when
 * either is not understood.
 * @example checkedNextSlot({ cron: '0 * * * *', timezone: 'UTC' }, Date.now())
 */
export function checkedNextSlot(
  schedule: Pick<Schedule, 'cron' | 'timezone'>,
  after: number,
): number | null {
  const problems = scheduleProblems(schedule);
  if (problems.length > 0)
    throw AppError.invalidFields(
      problems.map(({ field, message }) => ({ field: `body.schedule.${field}`, message })),
    );
  return nextSlot(schedule.cron, schedule.timezone, after);
}

/** Creates the agent or changes the fields the body gives; absent fields keep their value. */
export async function upsertAgent(
  db: Db,
  projectId: string,
  agentId: string,
  body: AgentUpsertBody,
  at: { now: number; maxFieldBytes: number },
): Promise<Agent> {
  const { now, maxFieldBytes } = at;
  const existing = await findAgent(db, projectId, agentId);
  const base: AgentRow = existing ?? newAgentRow(projectId, agentId, agentId, now);
  const row: AgentRow = { ...base, updated_at: now };
  if (body.name !== undefined) row.name = body.name;
  if (body.description !== undefined) row.description = body.description;
  if (body.timeout_ms !== undefined) row.timeout_ms = body.timeout_ms;
  Object.assign(row, limitColumns(body));
  if (body.retry !== undefined) row.retry_policy = encodeRetryPolicy(body.retry);
  if (body.max_concurrency !== undefined) row.max_concurrency = body.max_concurrency;
  if (body.max_concurrency_per_thread !== undefined)
    row.max_concurrency_per_thread = body.max_concurrency_per_thread;
  if (body.metadata !== undefined) row.metadata = encodeMetadata(body.metadata, maxFieldBytes);
  const scheduleColumns = scheduleChanges(agentId, base, body.schedule, now);
  Object.assign(row, scheduleColumns);
  // the columns this body sets, and no other: a save from elsewhere at the same time (the
  // CLI setting a limit while the dashboard renames) keeps its own
  const columns: (keyof AgentRow)[] = ['updated_at'];
  if (body.name !== undefined) columns.push('name');
  if (body.description !== undefined) columns.push('description');
  if (body.timeout_ms !== undefined) columns.push('timeout_ms');
  columns.push(...(Object.keys(limitColumns(body)) as (keyof AgentRow)[]));
  if (body.retry !== undefined) columns.push('retry_policy');
  if (body.max_concurrency !== undefined) columns.push('max_concurrency');
  if (body.max_concurrency_per_thread !== undefined) columns.push('max_concurrency_per_thread');
  if (body.metadata !== undefined) columns.push('metadata');
  columns.push(...(Object.keys(scheduleColumns) as (keyof AgentRow)[]));
  if (body.paused !== undefined) {
    // paused again, it keeps the time it was first paused
    row.paused_at = body.paused ? (base.paused_at ?? now) : null;
    columns.push('paused_at');
  }
  if (base.paused_at !== null && body.paused === false) {
    // before the resume is saved, while the sweep still passes them over: the queued runs'
    // wait for a worker counts again from now
    await movePausedDeadlines(db, projectId, agentId, Number(base.paused_at), now);
    // its schedule goes on from its next slot, as a resumed schedule does (unless this body
    // set the schedule's slot itself): the slots passed while paused are skipped
    if (row.schedule_cron !== null && scheduleColumns.schedule_next_at === undefined) {
      row.schedule_next_at = resumedSlot(row.schedule_cron, row.schedule_tz, now);
      columns.push('schedule_next_at');
    }
  }
  return toAgent(await saveAgent(db, row, columns));
}

/**
 * Where a schedule resumed at `now` (its own pause, or its agent's) goes on: its first slot
 * after now, the slots passed while paused skipped (pausing is asked for, downtime is not).
 * Null for a schedule stored by hand that croner refuses: the scheduler skips it as before.
 */
function resumedSlot(cron: string, timezone: string | null, now: number): number | null {
  try {
    return nextSlot(cron, timezone, now);
  } catch {
    return null;
  }
}

type ScheduleColumns = Partial<
  Pick<AgentRow, 'schedule_cron' | 'schedule_tz' | 'schedule_next_at' | 'schedule_paused'>
>;

/**
 * The schedule columns a body's `schedule` sets on `base`: none when absent, all cleared by
 * `null`, the whole schedule from a cron, or only the paused state from `{paused}` alone.
 * Resuming goes on from the first slot after `now`: the slots passed while paused are
 * skipped, not caught up (pausing is asked for, downtime is not). Throws a 400 naming the
 * field before anything is written.
 */
function scheduleChanges(
  agentId: string,
  base: AgentRow,
  schedule: AgentUpsertBody['schedule'],
  now: number,
): ScheduleColumns {
  if (schedule === undefined) return {};
  if (schedule === null)
    return { schedule_cron: null, schedule_tz: null, schedule_next_at: null, schedule_paused: 0 };
  const had = base.schedule_cron !== null;
  const wasPaused = had && Number(base.schedule_paused) === 1;
  if (schedule.cron === undefined) {
    if (schedule.timezone !== undefined)
      throw AppError.invalidFields([
        {
          field: 'body.schedule.cron',
          message: 'required with timezone: a schedule is given whole, or as {paused} alone',
        },
      ]);
    if (schedule.paused === undefined)
      throw AppError.invalidFields([
        {
          field: 'body.schedule',
          message: 'give cron (and timezone), or paused: true or false to pause or resume',
        },
      ]);
    if (!had)
      throw AppError.invalidFields([
        {
          field: 'body.schedule.cron',
          message: `required: agent ${agentId} has no schedule to ${schedule.paused ? 'pause' : 'resume'}`,
        },
      ]);
    const columns: ScheduleColumns = { schedule_paused: schedule.paused ? 1 : 0 };
    if (wasPaused && !schedule.paused)
      columns.schedule_next_at = resumedSlot(base.schedule_cron!, base.schedule_tz, now);
    return columns;
  }
  const cron = schedule.cron;
  const timezone = schedule.timezone ?? 'UTC';
  const next = checkedNextSlot({ cron, timezone }, now);
  // a schedule edited while paused stays paused unless the body says otherwise
  const paused = schedule.paused ?? wasPaused;
  const unchanged = base.schedule_cron === cron && base.schedule_tz === timezone;
  return {
    schedule_cron: cron,
    schedule_tz: timezone,
    // the same schedule again keeps its pending slot (re-saving must not skip one), unless it
    // resumes now: then it goes on from the next slot
    schedule_next_at:
      unchanged && base.schedule_next_at !== null && !(wasPaused && !paused)
        ? base.schedule_next_at
        : next,
    schedule_paused: paused ? 1 : 0,
  };
}

function lastError(run: ErrorRunRow | undefined): AgentSummary['last_error'] {
  if (!run) return null;
  const message =
    run.error_message ?? (run.status === 'timed_out' ? 'run timed out' : 'run failed');
  return { run_id: run.id, message, at: toIso(run.ended_at) };
}

/**
 * The project's agents (or the one asked for) with their newest run, last error and 24 h
 * counts, in three queries whatever the number of agents. Counts come from the hourly
 * rollups: runs from the start of the hour 24 h ago up to now.
 */
export async function listAgentSummaries(
  db: Db,
  projectId: string,
  now: number,
  agentId?: string,
): Promise<AgentSummary[]> {
  // the placeholder of runs whose first event named no agent is of no interest once they
  // have their agent: listed only while it holds runs (or when asked for by id)
  const agents = (await listAgentsWithLatest(db, projectId, agentId, now)).filter(
    (a) => agentId !== undefined || a.id !== UNKNOWN_AGENT || a.latest_id !== null,
  );
  if (agents.length === 0) return [];
  const errorIds = agents.map((a) => a.error_id).filter((id): id is string => id !== null);
  const latestIds = agents.map((a) => a.latest_id).filter((id): id is string => id !== null);
  const [latestRows, errorRows, counts] = await Promise.all([
    findRunsWithinBudget(db, projectId, latestIds, AGENT_LIST_PAYLOAD_BYTES),
    findErrorRuns(db, projectId, errorIds),
    counts24h(
      db,
      projectId,
      now,
      agents.map((a) => a.id),
      agentId,
    ),
  ]);
  const latest = new Map(latestRows.map((r) => [r.id, r]));
  const errors = new Map(errorRows.map((r) => [r.id, r]));
  const { byStatus: countsOf, usage: usageOf, notRetried } = counts;
  return agents.map((a) => {
    const { latest_id, error_id, ...row } = a;
    const latestRow = latest_id !== null ? latest.get(latest_id) : undefined;
    const newestError = error_id !== null ? errors.get(error_id) : undefined;
    const byStatus = countsOf.get(a.id) ?? new Map<string, number>();
    let runs = 0;
    let finished = 0;
    for (const [status, n] of byStatus) {
      runs += n;
      if (isTerminalStatus(status as RunStatus)) finished += n;
    }
    const failedCount = (byStatus.get('failed') ?? 0) + (byStatus.get('timed_out') ?? 0);
    const agent = toAgent(row);
    return {
      ...agent,
      latest_run: latestRow ? toRun(latestRow) : null,
      last_error: lastError(newestError),
      counts_24h: {
        runs,
        succeeded: byStatus.get('succeeded') ?? 0,
        failed: failedCount,
        failed_not_retried: notRetried.get(a.id) ?? 0,
        running: byStatus.get('running') ?? 0,
        fail_rate: finished > 0 ? failedCount / finished : null,
        total_tokens: usageOf.get(a.id)?.tokens ?? 0,
        cost_usd: nanosToUsd(usageOf.get(a.id)?.cost_nanos ?? 0),
      },
    };
  });
}

/**
 * Deletes an agent with its runs and steps. Runs go through the write path in batches so
 * the stats rollups drop them and subscribers hear of it. `false` when there was no agent.
 */
export async function deleteAgent(
  ctx: AppContext,
  projectId: string,
  agentId: string,
): Promise<boolean> {
  const agent = await findAgent(ctx.db, projectId, agentId);
  // the runs there are now: one recorded while the deletion goes on is the agent's next run
  // (it makes the agent again), accepted after the delete and not lost to it
  const before = Date.now() + 1;
  // a run the writer stamps within this millisecond could be either side of the deletion:
  // wait it out, so every run written from here on is stamped at `before` or later
  while (Date.now() < before) await new Promise((resolve) => setTimeout(resolve, 1));
  // the agent (and its schedule) first: a scheduler pass after this queues nothing, and a
  // run it queued before is among the runs deleted next
  const deletedAgent = await deleteAgentRow(ctx.db, projectId, agentId);
  let deletedRuns = 0;
  for (;;) {
    const ids = await agentRunIds(ctx.db, projectId, agentId, 500, before);
    if (ids.length === 0) break;
    const n = await ctx.writer.transact(async (uow) => {
      await uow.loadRuns(projectId, ids);
      let count = 0;
      for (const id of ids) {
        // a run deleted or re-assigned meanwhile is not ours to delete
        const run = uow.getRun(projectId, id);
        if (run?.agent_id !== agentId || run.created_at >= before) continue;
        uow.deleteRun(projectId, id);
        count += 1;
      }
      return count;
    });
    // nothing deletable left in this batch: never spin
    if (n === 0) break;
    deletedRuns += n;
  }
  // a run kept may have been recorded while the agent was still there (so it did not make
  // it again) just before it went: the agent its runs name exists
  const [kept] = await agentRunIds(ctx.db, projectId, agentId, 1);
  const run = kept === undefined ? undefined : await findRun(ctx.db, projectId, kept);
  if (run) await ctx.writer.transact((uow) => ensureAgents(ctx.db, uow.trx, [run]));
  return agent !== undefined || deletedAgent || deletedRuns > 0;
}
