import {
  MAX_RUN_DELAY_MS,
  isTerminalStatus,
  isTruncatedJson,
  newId,
  toIso,
  type EnqueueRunBody,
  type Run,
  type RunStatus,
  type RunTrigger,
} from '@runlog/core';
import type { AppContext } from '../context.js';
import type { RunRow } from '../db/schema.js';
import { statusIn } from '../db/dialect.js';
import { AppError } from '../http/errors.js';
import { bytesOver, encodeJson, encodeMetadata, newRunRow, payloadText } from '../ingest/apply.js';
import { toRun } from '../runs/runs.mapper.js';
import { BUDGET_EXCEEDED, errorType } from './auto-retry.js';
import type { UnitOfWork } from '../ingest/unit-of-work.js';

export interface EnqueueOptions extends Omit<EnqueueRunBody, 'trigger' | 'parent_run_id'> {
  trigger?: RunTrigger;
  retry_of?: string | null;
  attempt?: number;
  parent_run_id?: string | null;
}

/**
 * When a queued run may start: `run_at` or `delay_ms` from `now` (checked already by
 * `checkQueued`), never before `now`.
 * @example startAt({ delay_ms: 60_000 }, 1_000) === 61_000
 */
export function startAt(opts: Pick<EnqueueRunBody, 'delay_ms' | 'run_at'>, now: number): number {
  if (opts.run_at !== undefined) return Math.max(opts.run_at, now);
  return now + (opts.delay_ms ?? 0);
}

/**
 * A new `queued` run row of `agentId`, asked for at `at.now` and waiting from when it may
 * start (`startAt`: then, or later with `delay_ms` or `run_at`, `queued_at` ahead, as an
 * automatic retry waits its delay). With the agent's timeout it gets a deadline counted from
 * then, so a run nobody claims still ends (`timed_out`).
 * @example
 * queuedRunRow('default', 'bug-triager', newId(), { trigger: 'api' },
 *   { now: Date.now(), timeoutMs: null, maxFieldBytes: 1 << 20 })
 */
export function queuedRunRow(
  projectId: string,
  agentId: string,
  id: string,
  opts: EnqueueOptions,
  at: { now: number; timeoutMs: number | null; maxFieldBytes: number },
): RunRow {
  const start = startAt(opts, at.now);
  return {
    ...newRunRow(projectId, id, at.now),
    agent_id: agentId,
    status: 'queued',
    trigger: opts.trigger ?? 'api',
    source: opts.source ?? null,
    triggered_by: opts.triggered_by ?? null,
    user_id: opts.user_id ?? null,
    thread_id: opts.thread_id ?? null,
    retry_of: opts.retry_of ?? null,
    parent_run_id: opts.parent_run_id ?? null,
    attempt: opts.attempt ?? 1,
    input: opts.input === undefined ? null : encodeJson(opts.input, at.maxFieldBytes),
    tags: JSON.stringify(opts.tags ?? []),
    metadata: encodeMetadata(opts.metadata ?? {}, at.maxFieldBytes),
    queued_at: start,
    // listed, and counted in the stats, at the time it may start, as an automatic retry
    sort_at: start,
    deadline_at: at.timeoutMs ? start + at.timeoutMs : null,
  };
}

/**
 * Why the control plane ends a run its agent did not end: Stop, a timeout, a lapsed lease, or
 * (an OTLP trace whose root never came) its spans' own outcome.
 */
export interface RunEnding {
  status: 'cancelled' | 'timed_out' | 'succeeded' | 'failed';
  error: { message: string; type: string } | null;
  /** When the run ended, if before the change that ends it (default: then). */
  endedAt?: number;
}

/**
 * `run` ended by the control plane at `at`: final status, the error saying why, duration, no
 * lease. Stored with `uow.putRun`, which moves the stats rollups from the row's old status.
 */
function endedRun(run: RunRow, ending: RunEnding, at: number): RunRow {
  // never before its start: a start stamped by a clock ahead of the server's would otherwise
  // end the run before it began
  const endedAt = Math.max(ending.endedAt ?? at, run.started_at ?? Number.NEGATIVE_INFINITY);
  return {
    ...run,
    // a run queued to start later and ended before then (stopped) is listed, counted and
    // summed in its thread when it ended, not at a start that never comes: it sat at the top
    // of the newest-first list until then. `queued_at` keeps the start it was to have.
    sort_at: run.started_at === null ? Math.min(run.sort_at, endedAt) : run.sort_at,
    status: ending.status,
    error: ending.error ? JSON.stringify(ending.error) : null,
    ended_at: endedAt,
    duration_ms: run.started_at !== null ? endedAt - run.started_at : null,
    lease_expires_at: null,
    updated_at: at,
  };
}

/**
 * Ends `run` for the control plane (`endedRun`) in `uow`, with its steps still running, which
 * nobody will end now, ended as failed saying so.
 */
export async function endRun(
  uow: UnitOfWork,
  run: RunRow,
  ending: RunEnding,
  at: number,
): Promise<RunRow> {
  const ended = endedRun(run, ending, at);
  uow.putRun(ended);
  // now rather than at the flush: the answer counts the steps this ends
  await uow.closeStepsOfEndedRuns();
  return uow.getRun(run.project_id, run.id) ?? ended;
}

/**
 * Queues a run for a worker. With a caller-supplied id that already exists for the same
 * agent, answers that run (the call is idempotent); for another agent, 409.
 */
export async function enqueueRun(
  ctx: AppContext,
  projectId: string,
  agentId: string,
  opts: EnqueueOptions,
): Promise<{ run: Run; created: boolean }> {
  const [queued] = await enqueueRuns(ctx, projectId, [{ ...opts, agent_id: agentId }]);
  return queued!;
}

/**
 * What the body's schema cannot say of a queued run: its input is what its worker executes,
 * so over the field limit it is refused (413 naming it), not stored truncated (a marker and
 * a preview) as a recorded payload is; it starts after `delay_ms` or at `run_at`, not both,
 * and `run_at` is at most a year ahead (400 naming the field).
 */
function checkQueued(
  maxFieldBytes: number,
  items: readonly EnqueueOptions[],
  now: number,
  named?: boolean,
): void {
  for (const [i, item] of items.entries()) {
    const at = (name: string) => (named ? `body.runs.${i}.${name}` : `body.${name}`);
    if (item.run_at !== undefined && item.delay_ms !== undefined)
      throw AppError.invalid(at('run_at'), 'give delay_ms or run_at, not both');
    if (item.run_at !== undefined && item.run_at - now > MAX_RUN_DELAY_MS)
      throw AppError.invalid(
        at('run_at'),
        `${toIso(item.run_at)} is more than a year ahead: a queued run starts within a year`,
      );
  }
  for (const [i, item] of items.entries()) {
    const text = payloadText(item.input);
    const size = text === undefined ? undefined : bytesOver(text, maxFieldBytes);
    if (size === undefined) continue;
    const field = named ? `body.runs.${i}.input` : 'body.input';
    const problem = `${size} bytes of JSON, over the ${maxFieldBytes} a field holds: a queued run's worker needs its input whole`;
    throw new AppError('payload_too_large', `${field}: ${problem}`, [{ field, message: problem }]);
  }
}

/**
 * Queues runs of any agents in one change, all or none: each as `enqueueRun` queues one
 * (an id that exists for the same agent answers that run; for another agent the whole call
 * is a 409 naming the item). The answers are in the order asked.
 */
export async function enqueueRuns(
  ctx: AppContext,
  projectId: string,
  items: readonly (EnqueueOptions & { agent_id: string })[],
  /** Errors name the item (`runs.3.id: ...`), as for `POST /runs/enqueue`. */
  opts: { named?: boolean } = {},
): Promise<{ run: Run; created: boolean }[]> {
  const now = Date.now();
  checkQueued(ctx.config.maxFieldBytes, items, now, opts.named);
  return ctx.writer.transact((uow, env) =>
    queueRuns(uow, projectId, items, { now, maxFieldBytes: env.maxFieldBytes, named: opts.named }),
  );
}

/**
 * A queued run's `parent_run_id`: not the run itself, and not a run stopped already (409),
 * whose code, if it goes on regardless, must not set more work going. A parent not stored
 * is taken: a recorded run's start may still be on its way from the SDK that queues this.
 */
function checkParent(
  uow: UnitOfWork,
  projectId: string,
  id: string,
  parentId: string,
  i: number,
  opts: { named?: boolean | undefined },
): void {
  const field = opts.named ? `body.runs.${i}.parent_run_id` : 'body.parent_run_id';
  if (parentId === id) throw AppError.invalid(field, 'a run cannot be its own parent');
  const parent = uow.getRun(projectId, parentId);
  if (!parent || !wasStopped(parent)) return;
  const how = parent.status === 'running' ? 'is being stopped' : `was stopped (${parent.status})`;
  const where = opts.named ? `runs.${i}.parent_run_id: ` : '';
  throw new AppError('conflict', `${where}run ${parentId} ${how}: no sub-run of it is queued`, [
    { field, message: `run ${parentId} ${how}` },
  ]);
}

/**
 * `enqueueRuns` inside a change of the write path: the runs are queued in `uow` (or, for a
 * given id, that run answered). Inputs must have been checked against the field limit.
 */
async function queueRuns(
  uow: UnitOfWork,
  projectId: string,
  items: readonly (EnqueueOptions & { agent_id: string })[],
  opts: { now: number; maxFieldBytes: number; named?: boolean | undefined },
): Promise<{ run: Run; created: boolean }[]> {
  const ids = items.map((item) => item.id ?? newId());
  const given = items.flatMap((item) => (item.id !== undefined ? [item.id] : []));
  const parents = items.flatMap((item) => (item.parent_run_id != null ? [item.parent_run_id] : []));
  const now = opts.now;
  // in one call, so in one order of locks on PostgreSQL
  if (given.length + parents.length > 0) await uow.loadRuns(projectId, [...given, ...parents]);
  // the id of a run deleted lately is not free: its worker may still send the old run's end,
  // which would end this one (POST /runs and /ingest refuse it the same way)
  const deleted = given.length > 0 ? await uow.deletedLately(projectId, given) : new Set();
  // read in the transaction: outside one, each statement is a read transaction of its own
  const timeouts = new Map<string, number | null>();
  const queued: { run: Run; created: boolean }[] = [];
  for (const [i, item] of items.entries()) {
    const id = ids[i]!;
    const existing = item.id !== undefined ? uow.getRun(projectId, id) : undefined;
    const field = opts.named ? `body.runs.${i}.id` : 'body.id';
    if (!existing && deleted.has(id)) {
      throw new AppError('conflict', `run ${id} was deleted less than a day ago`, [
        { field, message: 'the id of a run deleted less than a day ago' },
      ]);
    }
    if (existing) {
      if (existing.agent_id !== item.agent_id) {
        const where = opts.named ? `runs.${i}.id: ` : '';
        throw new AppError(
          'conflict',
          `${where}run ${id} already exists for agent ${existing.agent_id}`,
          [{ field, message: `already a run of agent ${existing.agent_id}` }],
        );
      }
      queued.push({ run: toRun(existing), created: false });
      continue;
    }
    if (item.parent_run_id != null) checkParent(uow, projectId, id, item.parent_run_id, i, opts);
    let timeoutMs = timeouts.get(item.agent_id);
    if (timeoutMs === undefined) {
      timeoutMs = await uow.agentTimeoutMs(projectId, item.agent_id);
      timeouts.set(item.agent_id, timeoutMs);
    }
    const row = queuedRunRow(projectId, item.agent_id, id, item, {
      now,
      timeoutMs,
      maxFieldBytes: opts.maxFieldBytes,
    });
    if (item.id !== undefined) uow.putRun(row);
    else uow.putNewRun(row);
    queued.push({ run: toRun(row), created: true });
  }
  return queued;
}

/**
 * Stop. A queued run is cancelled at once; a running one gets `cancel_requested_at`, which
 * its worker sees (WebSocket or next heartbeat) and confirms by ending the run `cancelled`;
 * the control plane forces `cancelled` after the grace period. A finished run answers 409.
 * Its queued and running sub-runs are stopped with it (`stopSubRuns`).
 */
export async function cancelRun(ctx: AppContext, projectId: string, runId: string): Promise<Run> {
  return ctx.writer.transact(async (uow, env) => {
    await uow.loadRuns(projectId, [runId]);
    const run = uow.getRun(projectId, runId);
    if (!run) throw AppError.notFound('run', runId);
    const status = run.status as RunStatus;
    if (isTerminalStatus(status))
      throw new AppError('conflict', `run ${runId} has already ended (${status})`);
    stopRun(uow, run, 'cancelled before it started', env.now);
    await stopSubRuns(uow, projectId, [runId], env.now);
    await uow.closeStepsOfEndedRuns();
    return toRun(uow.getRun(projectId, runId)!);
  });
}

/**
 * Stops a queued or running run in `uow`: a queued one ends `cancelled` with `message` at
 * once; a running one gets `cancel_requested_at` (kept when asked already) for its worker or
 * SDK to confirm. The caller closes the steps of the runs it ended
 * (`uow.closeStepsOfEndedRuns`): a queued run has none, so once for many.
 */
function stopRun(uow: UnitOfWork, run: RunRow, message: string, at: number): void {
  if (run.status === 'queued') {
    const ending: RunEnding = { status: 'cancelled', error: { message, type: 'Cancelled' } };
    uow.putRun(endedRun({ ...run, cancel_requested_at: at }, ending, at));
  } else if (run.status === 'running' && run.cancel_requested_at === null)
    uow.putRun({ ...run, cancel_requested_at: at, updated_at: at });
}

/** The most sub-runs one stop reaches; a tree larger than this is stopped in part. */
export const MAX_STOPPED_SUB_RUNS = 10_000;

/**
 * Stops the queued and running sub-runs of these runs (`parent_run_id`), and theirs, as
 * Stop stops a run (`stopRun`): an orchestrator's sub-agents on workers do not go on working
 * for a run that is over. Each is looked at again under its lock; sub-runs that ended are
 * left alone, and so are their own. At most `MAX_STOPPED_SUB_RUNS`; answers how many.
 */
export async function stopSubRuns(
  uow: UnitOfWork,
  projectId: string,
  runIds: readonly string[],
  at: number,
): Promise<number> {
  const seen = new Set(runIds);
  let level = [...runIds];
  let stopped = 0;
  while (level.length > 0 && stopped < MAX_STOPPED_SUB_RUNS) {
    const next: string[] = [];
    for (let i = 0; i < level.length && stopped + next.length < MAX_STOPPED_SUB_RUNS; i += 500) {
      const rows = await uow.trx
        .selectFrom('runs')
        .select(['id', 'parent_run_id'])
        .where('project_id', '=', projectId)
        .where('parent_run_id', 'in', level.slice(i, i + 500))
        .where(statusIn('queued', 'running'))
        .limit(MAX_STOPPED_SUB_RUNS - stopped - next.length)
        .execute();
      for (const row of rows) {
        // a cycle of parents (recorded runs may name any) is walked once
        if (seen.has(row.id)) continue;
        seen.add(row.id);
        next.push(row.id);
      }
    }
    await uow.loadRuns(projectId, next);
    for (const id of next) {
      const run = uow.getRun(projectId, id);
      if (!run || (run.status !== 'queued' && run.status !== 'running')) continue;
      stopRun(
        uow,
        run,
        `cancelled before it started: its parent run ${run.parent_run_id} was stopped`,
        at,
      );
      stopped++;
    }
    level = next;
  }
  return stopped;
}

/**
 * Whether a run was stopped (Stop, its timeout, its agent's limits on one run): a run queued
 * as its sub-run would work for a run that is over.
 */
export function wasStopped(run: RunRow): boolean {
  if (run.cancel_requested_at !== null) return true;
  if (run.status === 'cancelled' || run.status === 'timed_out') return true;
  return run.status === 'failed' && errorType(run.error) === BUDGET_EXCEEDED;
}

/**
 * Start now: a queued run held back until later (queued with `delay_ms` or `run_at`, or an
 * automatic retry waiting its delay) may be taken by a worker at once. Its `queued_at` (and
 * list time) becomes now, and its wait for a worker (the agent's timeout) counts from now
 * as it counted from then. A queued run already due is answered as it is; any other a 409.
 */
export async function startRunNow(ctx: AppContext, projectId: string, runId: string): Promise<Run> {
  return ctx.writer.transact(async (uow, env) => {
    await uow.loadRuns(projectId, [runId]);
    const run = uow.getRun(projectId, runId);
    if (!run) throw AppError.notFound('run', runId);
    if (run.status !== 'queued')
      throw new AppError(
        'conflict',
        `run ${runId} is ${run.status}: only a queued run waits to start`,
      );
    if (run.queued_at === null || run.queued_at <= env.now) return toRun(run);
    const next: RunRow = {
      ...run,
      queued_at: env.now,
      sort_at: env.now,
      deadline_at: run.deadline_at === null ? null : env.now + (run.deadline_at - run.queued_at),
      updated_at: env.now,
    };
    uow.putRun(next);
    return toRun(next);
  });
}

/** How `POST /runs/:run_id/retry` is asked: `RetryRunBody`, and who asks. */
export interface RetryOptions {
  /** The retry's input instead of the run's own, when the key is there (`null`: none). */
  input?: unknown;
  /** The new run's id: a retry of this run with that id is answered as it is. */
  id?: string | undefined;
  /** A run retried already is answered with its newest retry instead of a new one. */
  once?: boolean | undefined;
  source?: string | undefined;
  triggered_by?: string | undefined;
}

/**
 * Retry: a new queued run of the same agent, input and thread, linked by `retry_of`. With an
 * `id`, idempotent: a retry of this run with that id is answered as it is; any other run with
 * that id is a 409. With `once`, a run that has a retry already gets none: the answer is its
 * newest retry, `earlier: true`. The look for a retry and the queuing are one change of the
 * write path, under the run's lock on PostgreSQL (`UnitOfWork.loadRuns`), so calls racing
 * each other, on one instance or several, queue one retry between them.
 * @example const { run, earlier } = await retryRun(ctx, 'default', 'r1', { once: true })
 */
export async function retryRun(
  ctx: AppContext,
  projectId: string,
  runId: string,
  by: RetryOptions = {},
): Promise<{ run: Run; earlier: boolean }> {
  const now = Date.now();
  return ctx.writer.transact(async (uow, env) => {
    await uow.loadRuns(projectId, by.id !== undefined ? [runId, by.id] : [runId]);
    const source = uow.getRun(projectId, runId);
    if (!source) throw AppError.notFound('run', runId);
    // the same call sent again: it answers the retry it made, whatever came after
    const named = by.id !== undefined ? uow.getRun(projectId, by.id) : undefined;
    if (named) {
      if (named.retry_of !== runId || named.agent_id !== source.agent_id)
        throw new AppError(
          'conflict',
          `run ${named.id} already exists and is not a retry of ${runId}`,
          [{ field: 'body.id', message: `the id of a run that is not a retry of ${runId}` }],
        );
      return { run: toRun(named), earlier: false };
    }
    if (by.once) {
      const earlier = await newestRetry(uow, projectId, runId);
      if (earlier) return { run: toRun(earlier), earlier: true };
    }
    if (!isTerminalStatus(source.status as RunStatus)) {
      throw new AppError(
        'conflict',
        `run ${runId} is still ${source.status}; stop it or wait for it to end before retrying`,
      );
    }
    // a retry with a fix to the input runs on it; otherwise on the input the run had
    const given = Object.hasOwn(by, 'input');
    const own = source.input !== null ? (JSON.parse(source.input) as unknown) : undefined;
    const input = given ? (by.input ?? undefined) : own;
    // its worker would execute the marker and preview instead of the input the run had
    if (!given && isTruncatedJson(input))
      throw new AppError(
        'conflict',
        `run ${runId}'s input was stored truncated (${input.original_size} bytes): a retry would run on a preview of it`,
      );
    const item = {
      agent_id: source.agent_id,
      ...(by.id !== undefined ? { id: by.id } : {}),
      trigger: 'retry' as const,
      retry_of: source.id,
      attempt: source.attempt + 1,
      parent_run_id: source.parent_run_id,
      ...(input !== undefined ? { input } : {}),
      ...(source.thread_id !== null ? { thread_id: source.thread_id } : {}),
      ...(source.user_id !== null ? { user_id: source.user_id } : {}),
      ...(by.source
        ? { source: by.source }
        : source.source !== null
          ? { source: source.source }
          : {}),
      ...(by.triggered_by ? { triggered_by: by.triggered_by } : {}),
      tags: JSON.parse(source.tags) as string[],
      metadata: JSON.parse(source.metadata) as Record<string, unknown>,
    };
    checkQueued(env.maxFieldBytes, [item], now);
    const [queued] = await queueRuns(uow, projectId, [item], {
      now,
      maxFieldBytes: env.maxFieldBytes,
    });
    return { run: queued!.run, earlier: false };
  });
}

/**
 * The newest run that retried `runId` (as `GET /runs?retry_of=` lists them, newest first),
 * read in the change's transaction: a retry queued by a change before it in the same group
 * commit, or committed by another instance before the run's lock was granted, is seen.
 */
async function newestRetry(
  uow: UnitOfWork,
  projectId: string,
  runId: string,
): Promise<RunRow | undefined> {
  return uow.trx
    .selectFrom('runs')
    .selectAll()
    .where('project_id', '=', projectId)
    .where('retry_of', '=', runId)
    .orderBy('sort_at', 'desc')
    .orderBy('id', 'desc')
    .limit(1)
    .executeTakeFirst();
}

/** Deletes a run and its steps; `false` when the project has no such run. */
export async function deleteRun(
  ctx: AppContext,
  projectId: string,
  runId: string,
): Promise<boolean> {
  return ctx.writer.transact(async (uow) => {
    await uow.loadRuns(projectId, [runId]);
    if (!uow.getRun(projectId, runId)) return false;
    uow.deleteRun(projectId, runId);
    return true;
  });
}
