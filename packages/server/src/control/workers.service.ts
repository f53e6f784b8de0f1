import {
  isTerminalStatus,
  type ErrorCode,
  toIso,
  type HeartbeatResponse,
  type HeartbeatResult,
  type Run,
  type RunStatus,
  type Worker,
  type WorkerList,
} from '@runlog/core';
import type { AppContext } from '../context.js';
import { advisoryLocks, statusIn } from '../db/dialect.js';
import {
  runningOnWorkers,
  selectQueuedForClaim,
  slotLock,
  threadKey,
  threadLock,
  type QueuedCandidate,
  type ThreadCap,
} from '../db/queue.js';
import { sql, type Kysely } from 'kysely';
import { readOffLoop } from '../db/readers.js';
import type { Database, RunRow } from '../db/schema.js';
import type { Db } from '../db/database.js';
import { agentsOverBudget } from '../agents/agents.repository.js';
import { AppError } from '../http/errors.js';
import { applyHeartbeat } from '../ingest/apply.js';
import { tryLockRuns } from '../ingest/unit-of-work.js';
import type { HubInterest } from '../realtime/hub.js';
import { errorMessage, toRun } from '../runs/runs.mapper.js';
import { findRuns } from '../runs/runs.repository.js';
import { endRun, type RunEnding } from './control.service.js';

/** How long a claimed run stays its worker's without a heartbeat, unless the worker says. */
export const DEFAULT_CLAIM_LEASE_MS = 30_000;

export interface ClaimOptions {
  agents: string[];
  leaseMs: number;
  workerId: string;
}

/**
 * The claim settings of the agents that have one: a timeout, a concurrency cap, and whether
 * its queued runs are held back (`held`: it is paused, or its runs of the last 24 hours cost
 * its `max_cost_usd_24h` or more).
 */
async function claimSettings(
  trx: Kysely<Database>,
  db: Db,
  projectId: string,
  agentIds: string[],
  now: number,
): Promise<
  Map<
    string,
    { timeout: number | null; cap: number | null; perThread: number | null; held: boolean }
  >
> {
  const rows = await trx
    .selectFrom('agents')
    .select([
      'id',
      'timeout_ms',
      'max_concurrency',
      'max_concurrency_per_thread',
      'paused_at',
      'max_cost_nanos_24h',
    ])
    .where('project_id', '=', projectId)
    .where('id', 'in', agentIds)
    .where((eb) =>
      eb.or([
        eb('timeout_ms', 'is not', null),
        eb('max_concurrency', 'is not', null),
        eb('max_concurrency_per_thread', 'is not', null),
        eb('paused_at', 'is not', null),
        eb('max_cost_nanos_24h', 'is not', null),
      ]),
    )
    .execute();
  // the budgets of those not held back already
  const overBudget = await agentsOverBudget(
    trx,
    db,
    projectId,
    rows.filter((r) => r.paused_at === null),
    now,
  );
  return new Map(
    rows.map((r) => [
      r.id,
      {
        timeout: r.timeout_ms,
        cap: r.max_concurrency === null ? null : Number(r.max_concurrency),
        perThread:
          r.max_concurrency_per_thread === null ? null : Number(r.max_concurrency_per_thread),
        held: r.paused_at !== null || overBudget.has(r.id),
      },
    ]),
  );
}

/**
 * Runs a note of the claims (`noteWorkerSeen`, `noteWorker`, `forgetWorker`). On PostgreSQL
 * each statement is its own short transaction, outside the group commit: there a row would
 * stay locked until the whole group commits, and other instances' writes of it (new runs of
 * an agent insert it if missing) would wait on it, or deadlock with it. On SQLite, through
 * the writer.
 */
function noteWrite(ctx: AppContext, write: (k: Kysely<Database>) => Promise<unknown>) {
  return ctx.db.dialect === 'postgres'
    ? write(ctx.db.kysely)
    : ctx.writer.transact(async (uow) => void (await write(uow.trx)));
}

/** How stale an agent's `worker_seen_at` may grow while its workers keep asking. */
export const WORKER_SEEN_EVERY_MS = 15_000;

/** Per server: when this instance last wrote each agent's `worker_seen_at` (project\0agent). */
const workerSeenWrites = new WeakMap<AppContext, Map<string, number>>();

/**
 * Notes that a worker asks for the runs of `agents`: their `worker_seen_at`, written at most
 * every `WORKER_SEEN_EVERY_MS` per agent (a polling worker asks every second), so a queued
 * run can tell whether any worker is there to claim it. Never fails the caller.
 */
export async function noteWorkerSeen(
  ctx: AppContext,
  projectId: string,
  agents: readonly string[],
  now = Date.now(),
): Promise<void> {
  let written = workerSeenWrites.get(ctx);
  if (!written) workerSeenWrites.set(ctx, (written = new Map()));
  const key = (agent: string) => `${projectId}\u0000${agent}`;
  const due = agents.filter((a) => {
    const at = written.get(key(a));
    return at === undefined || at <= now - WORKER_SEEN_EVERY_MS;
  });
  if (due.length === 0) return;
  if (written.size > 10_000) written.clear();
  // asked again in a second or two, not written again until then
  for (const a of due) written.set(key(a), now - WORKER_SEEN_EVERY_MS + 2000);
  // one row per statement: an agent row is never held while another is waited for
  const note = (k: Kysely<Database>, agent: string) =>
    k
      .updateTable('agents')
      .set({ worker_seen_at: now })
      .where('project_id', '=', projectId)
      .where('id', '=', agent)
      .executeTakeFirst();
  try {
    const noted: string[] = [];
    await noteWrite(ctx, async (k) => {
      for (const agent of [...due].sort())
        if (Number((await note(k, agent)).numUpdatedRows) > 0) noted.push(agent);
    });
    // an agent not made yet (no run of it so far) is noted once it is
    for (const a of noted) written.set(key(a), now);
  } catch {
    // a note, not the claim: the next ask writes it
  }
}

/** A worker that asked nothing for this long shows as gone (it polls, or beats, every few seconds). */
export const WORKER_ONLINE_MS = 90_000;
/** How far back `GET /workers` looks. */
export const WORKERS_LISTED_MS = 24 * 3_600_000;
/** Workers not seen for this long are forgotten (retention deletes them). */
export const WORKER_MEMORY_MS = 7 * 24 * 3_600_000;
/** Most workers `GET /workers` lists, the most lately seen. */
const MAX_WORKERS = 500;
/** Running runs shown per worker (its `running` counts them all). */
const RUNNING_SHOWN = 20;

/** Per server: when this instance last wrote each worker's row, and the agents it wrote. */
const workerWrites = new WeakMap<AppContext, Map<string, { at: number; agents: string }>>();

/**
 * Notes that worker `workerId` asked for runs (a claim, with its `agents`) or is working
 * (a heartbeat, `agents` undefined): its row in `workers`, written at most every
 * `WORKER_SEEN_EVERY_MS` unless the agents it asks for change. Never fails the caller.
 */
export async function noteWorker(
  ctx: AppContext,
  projectId: string,
  workerId: string,
  agents: readonly string[] | undefined,
  now = Date.now(),
): Promise<void> {
  let writes = workerWrites.get(ctx);
  if (!writes) workerWrites.set(ctx, (writes = new Map()));
  const key = `${projectId}\u0000${workerId}`;
  const asked = agents ? JSON.stringify([...new Set(agents)].sort()) : undefined;
  const last = writes.get(key);
  if (
    last &&
    last.at > now - WORKER_SEEN_EVERY_MS &&
    (asked === undefined || asked === last.agents)
  )
    return;
  if (writes.size > 10_000) writes.clear();
  // set before the write: the claims and beats meanwhile do not write it again
  writes.set(key, { at: now, agents: asked ?? last?.agents ?? '' });
  const write = (k: Kysely<Database>) =>
    asked === undefined
      ? // a heartbeat notes a worker its claims made: one that said it stopped (or was
        // forgotten) is not brought back by a beat still on its way
        k
          .updateTable('workers')
          .set({ last_seen_at: now })
          .where('project_id', '=', projectId)
          .where('id', '=', workerId)
          .execute()
      : k
          .insertInto('workers')
          .values({
            project_id: projectId,
            id: workerId,
            agents: asked,
            first_seen_at: now,
            last_seen_at: now,
          })
          .onConflict((oc) =>
            oc.columns(['project_id', 'id']).doUpdateSet((eb) => ({
              last_seen_at: eb.ref('excluded.last_seen_at'),
              agents: eb.ref('excluded.agents'),
            })),
          )
          .execute();
  try {
    await noteWrite(ctx, write);
  } catch {
    // a note, not the claim: the next ask writes it
    writes.delete(key);
  }
}

/** Per server: who hears of the workers forgotten here (the bridge, to tell other instances). */
const forgetListeners = new WeakMap<
  AppContext,
  Set<(projectId: string, workerId: string) => void>
>();

/**
 * Calls `listener` with each worker `forgetWorker` forgets on this instance; returns the
 * unsubscribe function.
 */
export function onWorkerForgotten(
  ctx: AppContext,
  listener: (projectId: string, workerId: string) => void,
): () => void {
  let set = forgetListeners.get(ctx);
  if (!set) forgetListeners.set(ctx, (set = new Set()));
  set.add(listener);
  return () => set.delete(listener);
}

/**
 * Another instance forgot a worker: the next claim of it here writes its row again, instead
 * of taking the row as written a moment ago and leaving the worker off the list for up to
 * `WORKER_SEEN_EVERY_MS`.
 */
export function workerForgottenElsewhere(
  ctx: AppContext,
  projectId: string,
  workerId: string,
): void {
  workerWrites.get(ctx)?.delete(`${projectId}\u0000${workerId}`);
}

/** Most runs a stopping worker's `forgetWorker` gives back (a claim takes at most 100). */
const RELEASED_ON_STOP = 1_000;

/**
 * Forgets a worker that says it stops (the SDK's `worker.stop()`), so the list shows it gone
 * at once rather than 90 s later. Its next claim, if any, notes it again.
 *
 * With `release` (the worker gave back the runs it held and delivered the ends of the others),
 * any run still running under its id goes back to the queue as `releaseRun` gives one back:
 * a run claimed for it as it stopped whose answer it never read (it hung up on the long poll,
 * or its event loop was busy past the poll's grace), or one whose release did not get
 * through. Otherwise it would lapse to `timed_out`, never executed. A `key:` id names every
 * claim of a key sent without a `worker_id`, not one worker: its runs stay.
 */
export async function forgetWorker(
  ctx: AppContext,
  projectId: string,
  workerId: string,
  opts: { release?: boolean } = {},
): Promise<void> {
  if (opts.release && !workerId.startsWith('key:')) {
    const held = await ctx.db.kysely
      .selectFrom('runs')
      .select('id')
      .where('project_id', '=', projectId)
      .where(statusIn('running'))
      .where('worker_id', '=', workerId)
      .limit(RELEASED_ON_STOP)
      .execute();
    for (const { id } of held) {
      try {
        await releaseRun(ctx, projectId, id, workerId);
      } catch (err) {
        // claimed by another worker or deleted since the read: not this worker's any more
        if (!(err instanceof AppError)) throw err;
      }
    }
  }
  workerWrites.get(ctx)?.delete(`${projectId}\u0000${workerId}`);
  await noteWrite(ctx, (k) =>
    k
      .deleteFrom('workers')
      .where('project_id', '=', projectId)
      .where('id', '=', workerId)
      .execute(),
  );
  for (const listener of forgetListeners.get(ctx) ?? []) listener(projectId, workerId);
}

/**
 * The workers seen in the last `WORKERS_LISTED_MS`: online ones first, then the most lately
 * seen, each with the runs it holds now.
 */
export async function listWorkers(
  ctx: AppContext,
  projectId: string,
  now = Date.now(),
): Promise<WorkerList> {
  const db = ctx.db.kysely;
  const rows = await readOffLoop(
    ctx.db,
    db
      .selectFrom('workers')
      .selectAll()
      .where('project_id', '=', projectId)
      .where('last_seen_at', '>=', now - WORKERS_LISTED_MS)
      .orderBy('last_seen_at', 'desc')
      .orderBy('id')
      .limit(MAX_WORKERS),
  );
  const ids = rows.map((w) => w.id);
  // each listed worker's oldest runs, RUNNING_SHOWN of them whoever else holds older ones,
  // each carrying how many its worker holds; beside the event loop on SQLite, as a fleet may
  // hold thousands
  const running =
    ids.length === 0
      ? []
      : await readOffLoop(
          ctx.db,
          db
            .selectFrom(
              db
                .selectFrom('runs')
                .where('project_id', '=', projectId)
                .where('status', '=', 'running')
                .where('worker_id', 'in', ids)
                .select([
                  'id',
                  'agent_id',
                  'worker_id',
                  'started_at',
                  sql<number>`row_number() over (partition by worker_id order by started_at, id)`.as(
                    'nth',
                  ),
                  sql<number | string>`count(*) over (partition by worker_id)`.as('held'),
                ])
                .as('h'),
            )
            .selectAll()
            .where('nth', '<=', RUNNING_SHOWN)
            .orderBy('started_at')
            .orderBy('id'),
        );
  const count = new Map<string, number>();
  const held = new Map<string, Worker['running_runs']>();
  for (const r of running) {
    count.set(r.worker_id!, Number(r.held));
    const list = held.get(r.worker_id!) ?? [];
    list.push({ id: r.id, agent_id: r.agent_id, started_at: toIso(r.started_at) });
    held.set(r.worker_id!, list);
  }
  const workers: Worker[] = rows.map((w) => ({
    id: w.id,
    agents: parseAgents(w.agents),
    first_seen_at: toIso(Number(w.first_seen_at)),
    last_seen_at: toIso(Number(w.last_seen_at)),
    online: Number(w.last_seen_at) >= now - WORKER_ONLINE_MS,
    running: count.get(w.id) ?? 0,
    running_runs: held.get(w.id) ?? [],
  }));
  // online first; within each, as read (the most lately seen first)
  workers.sort((a, b) => Number(b.online) - Number(a.online));
  return { workers };
}

function parseAgents(text: string): string[] {
  try {
    const parsed = JSON.parse(text) as unknown;
    return Array.isArray(parsed) ? parsed.filter((a): a is string => typeof a === 'string') : [];
  } catch {
    return [];
  }
}

/**
 * How often a claim on PostgreSQL reads its candidates when other claims hold them all. Each
 * read reaches past twice as many as were tried (the window doubles), so a dozen get past
 * tens of thousands held by other instances' claims (one `max: 100` claim holds 100).
 */
const CLAIM_READS = 12;

/**
 * Hands the oldest queued runs of `agents` (up to `max`, default 1) to one worker: each
 * becomes `running` under a lease of `leaseMs`, with a deadline from the agent's
 * `timeout_ms`. Empty when none waits.
 */
export async function claimRuns(
  ctx: AppContext,
  projectId: string,
  opts: ClaimOptions & { max?: number },
): Promise<Run[]> {
  return ctx.writer.transact(async (uow, env) => {
    const max = opts.max ?? 1;
    const dialect = ctx.db.dialect;
    // capped agents: how many of each one's runs may start now, and how many of those places
    // are still open as this claim locks runs (what the reads ask for)
    let slots: Map<string, number> | undefined;
    let open: Map<string, number> | undefined;
    // agents with a per-thread cap: the most runs of one thread at once, and how many runs of
    // each thread they execute now
    let perThread: Map<string, number> | undefined;
    let threads: Map<string, ThreadCap> | undefined;
    // the threads this claim counted under their locks (PostgreSQL): a run of another thread,
    // read later, waits for the next claim
    let lockedThreads: Set<string> | undefined;
    // the agents asked for, less those held back (paused, over budget) once the settings are read
    let agents = opts.agents;
    const select = (limit: number, skipped = 0) =>
      selectQueuedForClaim(
        uow.trx,
        dialect,
        projectId,
        agents,
        limit,
        env.now,
        skipped,
        open,
        threads,
      );
    let candidates = await select(max);
    // a long-polling worker looks every second: nothing more to read when nothing waits
    if (candidates.length === 0) return [];
    const settings = await claimSettings(uow.trx, ctx.db, projectId, opts.agents, env.now);
    // a paused agent's runs wait, queued, as do those of an agent over its 24 h budget: read
    // again without them when they were among the oldest (read first, as the settings are: a
    // claim with nothing waiting reads no agent)
    const held = new Set([...settings].flatMap(([agent, s]) => (s.held ? [agent] : [])));
    if (held.size > 0) {
      agents = agents.filter((agent) => !held.has(agent));
      if (agents.length === 0) return [];
      if (candidates.some((c) => held.has(c.agent_id))) {
        candidates = await select(max);
        if (candidates.length === 0) return [];
      }
    }
    const caps = [...settings].flatMap(([agent, s]) =>
      s.cap === null ? [] : ([[agent, s.cap]] as const),
    );
    const threadCaps = [...settings].flatMap(([agent, s]) =>
      s.perThread === null ? [] : ([[agent, s.perThread]] as const),
    );
    if (caps.length > 0 || threadCaps.length > 0) {
      // PostgreSQL: the claims of a capped agent, on any instance, count one after another
      if (dialect === 'postgres')
        await advisoryLocks(
          uow.trx,
          caps.map(([agent]) => slotLock(projectId, agent)),
        );
      const capped = [...new Set([...caps, ...threadCaps].map(([agent]) => agent))];
      const byThread = threadCaps.map(([agent]) => agent);
      let running = await runningOnWorkers(uow.trx, dialect, projectId, capped, byThread);
      if (caps.length > 0) {
        slots = new Map(
          caps.map(([agent, cap]) => [agent, Math.max(0, cap - (running.agents.get(agent) ?? 0))]),
        );
        open = new Map(slots);
      }
      if (threadCaps.length > 0) {
        perThread = new Map(threadCaps);
        const threadsOf = (counted: typeof running) =>
          new Map(
            threadCaps.map(([agent, cap]) => [
              agent,
              { cap, running: counted.threads.get(agent) ?? new Map<string, number>() },
            ]),
          );
        threads = threadsOf(running);
        if (dialect === 'postgres') {
          // the threads of the runs it may take, locked, then counted again: the counts are
          // those of the claims before it, committed
          const first = await select(max);
          lockedThreads = new Set(
            first.flatMap((c) =>
              c.thread_id !== null && perThread!.has(c.agent_id)
                ? [threadKey(c.agent_id, c.thread_id)]
                : [],
            ),
          );
          await advisoryLocks(
            uow.trx,
            [...lockedThreads].map((key) => threadLock(projectId, key)),
          );
          running = await runningOnWorkers(uow.trx, dialect, projectId, capped, byThread);
          threads = threadsOf(running);
        }
      }
      candidates = await select(max);
      noteFull(ctx, projectId, opts.agents, slots, perThread);
      if (candidates.length === 0) return [];
    }
    // the candidates keep to the caps (each capped agent read for its open places, a capped
    // thread's runs as many as it has room for); on PostgreSQL, which reads more of them and
    // again, the runs locked keep to them too
    let runs: (RunRow | undefined)[];
    if (dialect === 'postgres') {
      const candidate = new Map(candidates.map((c) => [c.id, c]));
      // the runs this claim locked of each capped thread
      const threadTaken = new Map<string, number>();
      const threadOf = (c: QueuedCandidate | undefined) =>
        c?.thread_id != null && perThread?.has(c.agent_id)
          ? threadKey(c.agent_id, c.thread_id)
          : undefined;
      // the oldest runs no other transaction holds, locked a few at a time until `max` of
      // them are still queued (another instance may have claimed some since the read); the
      // candidates read again while others took them all, each read seeing what they
      // committed since
      runs = [];
      let rest = candidates;
      let queued = 0;
      // every id tried so far: held by another claim, or locked here
      const tried = new Set<string>();
      for (let reads = 1; queued < max;) {
        if (rest.length === 0) {
          if (reads++ >= CLAIM_READS) break;
          // past the ones tried, which stay at the head of the queue while others hold them,
          // reaching twice as far as last time
          rest = (await select(max - queued, tried.size * 2)).filter((c) => !tried.has(c.id));
          for (const c of rest) if (!candidate.has(c.id)) candidate.set(c.id, c);
          if (rest.length === 0) break;
        }
        // runs past an agent's open places or a thread's cap are not locked: another claim
        // takes them once a slot frees (and the next read asks for none of the agent's)
        const planned = new Map<string, number>();
        const plannedThreads = new Map<string, number>();
        rest = rest.filter((c) => {
          const thread = threadOf(c);
          if (thread !== undefined) {
            if (lockedThreads && !lockedThreads.has(thread)) return false;
            const n = (threadTaken.get(thread) ?? 0) + (plannedThreads.get(thread) ?? 0);
            if (c.thread_running + n >= perThread!.get(c.agent_id)!) return false;
          }
          if (open?.has(c.agent_id)) {
            const n = planned.get(c.agent_id) ?? 0;
            if (n >= open.get(c.agent_id)!) return false;
            planned.set(c.agent_id, n + 1);
          }
          if (thread !== undefined)
            plannedThreads.set(thread, (plannedThreads.get(thread) ?? 0) + 1);
          return true;
        });
        if (rest.length === 0) continue;
        const ids = rest.map((c) => c.id);
        const attempt = await tryLockRuns(uow.trx, projectId, ids, max - queued);
        for (const id of ids.slice(0, attempt.tried)) tried.add(id);
        rest = rest.slice(attempt.tried);
        if (attempt.locked.length === 0) continue;
        await uow.loadRuns(projectId, attempt.locked);
        for (const id of attempt.locked) {
          const run = uow.getRun(projectId, id);
          runs.push(run);
          if (run?.status === 'queued') {
            queued++;
            const left = open?.get(run.agent_id);
            if (left !== undefined) open!.set(run.agent_id, left - 1);
            const thread = threadOf(candidate.get(id));
            if (thread !== undefined) threadTaken.set(thread, (threadTaken.get(thread) ?? 0) + 1);
          }
        }
      }
    } else {
      const ids = candidates.map((c) => c.id);
      await uow.loadRuns(projectId, ids);
      runs = ids.map((id) => uow.getRun(projectId, id));
    }
    const claimed: Run[] = [];
    for (const run of runs) {
      if (claimed.length >= max) break;
      // claimed and committed by another instance since the read above
      if (!run || run.status !== 'queued') continue;
      const timeout = settings.get(run.agent_id)?.timeout ?? null;
      const next: RunRow = {
        ...run,
        status: 'running',
        started_at: env.now,
        worker_id: opts.workerId,
        last_heartbeat_at: env.now,
        lease_expires_at: env.now + opts.leaseMs,
        // timeout_ms (as the agent has it now) bounds the execution; the queued deadline only
        // bounded the wait, and must not outlive a timeout removed meanwhile
        deadline_at: timeout !== null ? env.now + timeout : null,
        updated_at: env.now,
      };
      uow.putRun(next);
      claimed.push(toRun(next));
    }
    return claimed;
  });
}

interface Waiter {
  projectId: string;
  agents: Set<string>;
  wake: () => void;
}

/** Per server instance: the claims waiting for work, oldest first. */
const waiting = new WeakMap<AppContext, Waiter[]>();

/** Another instance's run change is read back only when a claim here waits for its agent. */
function wantedByWaiters(waiters: Waiter[]): HubInterest {
  return (t) =>
    t.kind === 'run' &&
    waiters.some(
      (w) => w.projectId === t.projectId && (t.agentId === undefined || w.agents.has(t.agentId)),
    );
}

/** Per server instance: the capped agents the last claim of each found with no open slot. */
const full = new WeakMap<AppContext, Set<string>>();

const slotKey = (projectId: string, agentId: string) => `${projectId}\u0000${agentId}`;

function fullOf(ctx: AppContext): Set<string> {
  let set = full.get(ctx);
  if (!set) full.set(ctx, (set = new Set()));
  return set;
}

/**
 * Keeps which capped agents may hold runs back, so that one of their runs ending wakes a
 * claim: those with no open place, and those with a per-thread cap (a thread at it).
 */
function noteFull(
  ctx: AppContext,
  projectId: string,
  agents: readonly string[],
  slots: ReadonlyMap<string, number> | undefined,
  perThread: ReadonlyMap<string, number> | undefined,
): void {
  const set = fullOf(ctx);
  for (const agent of agents) {
    if (slots?.get(agent) === 0 || perThread?.has(agent)) set.add(slotKey(projectId, agent));
    else set.delete(slotKey(projectId, agent));
  }
}

/** Contexts shutting down: a waiting claim answers now instead of waiting on. */
const closing = new WeakSet<AppContext>();

/** Whether the server is shutting down, so long polls end (204) and let it close. */
export function shuttingDown(ctx: AppContext): boolean {
  return closing.has(ctx);
}

function waitersOf(ctx: AppContext): Waiter[] {
  let list = waiting.get(ctx);
  if (!list) {
    const created: Waiter[] = [];
    list = created;
    waiting.set(ctx, created);
    const unsubscribe = ctx.hub.subscribe((e) => {
      if (e.kind !== 'run') return;
      // one queued run wakes one waiting claim, not all of them; so does a run of an agent
      // at its concurrency cap that ends (a slot frees)
      const wakes =
        e.status === 'queued' ||
        (isTerminalStatus(e.status) && fullOf(ctx).has(slotKey(e.projectId, e.agentId)));
      if (!wakes) return;
      const i = created.findIndex((w) => w.projectId === e.projectId && w.agents.has(e.agentId));
      if (i >= 0) created.splice(i, 1)[0]!.wake();
    }, wantedByWaiters(created));
    ctx.onClose.push(() => {
      closing.add(ctx);
      unsubscribe();
      for (const w of created.splice(0)) w.wake();
    });
  }
  return list;
}

/**
 * Resolves when a run of one of `agents` may have been queued (a hub event, handed to one
 * waiting claim) or after `ms`; other instances' enqueues are caught by the caller looking
 * again.
 */
export function waitForQueued(
  ctx: AppContext,
  projectId: string,
  agents: string[],
  ms: number,
): Promise<void> {
  const list = waitersOf(ctx);
  if (closing.has(ctx)) return Promise.resolve();
  return new Promise((resolve) => {
    const waiter: Waiter = {
      projectId,
      agents: new Set(agents),
      wake: () => {
        clearTimeout(timer);
        resolve();
      },
    };
    const timer = setTimeout(() => {
      const i = list.indexOf(waiter);
      if (i >= 0) list.splice(i, 1);
      resolve();
    }, ms);
    list.push(waiter);
  });
}

interface BeatOptions {
  leaseMs?: number | undefined;
  workerId?: string | undefined;
}

/**
 * Keeps a running run alive for `leaseMs` more (a claimed run: its worker's lease; a recorded
 * run: the default lease) and tells the caller whether Stop was pressed.
 */
export async function heartbeatRun(
  ctx: AppContext,
  projectId: string,
  runId: string,
  opts: BeatOptions,
): Promise<HeartbeatResponse> {
  const [result] = await heartbeatRuns(ctx, projectId, [runId], opts);
  if (result!.ok) {
    const { id: _id, ok: _ok, ...answer } = result!;
    return answer;
  }
  throw new AppError(result!.error.code as ErrorCode, result!.error.message);
}

/**
 * `heartbeatRun` for many runs: each answers on its own (a run that is gone or held by
 * another worker is an error for that run, not for the others).
 *
 * A lease is written once less than half of it is left (as a step's event renews one), or
 * when the beat asks for a shorter one: a beat before that changes nothing worth a write,
 * and when no run of the call needs one, the answer is read from the stored runs without
 * waiting for a commit. So beats can come often (Stop reaches the worker within a beat)
 * while a run's row is written about twice per lease.
 */
export async function heartbeatRuns(
  ctx: AppContext,
  projectId: string,
  runIds: readonly string[],
  opts: BeatOptions,
): Promise<HeartbeatResult[]> {
  const stored = new Map(
    (await findRuns(ctx.db, projectId, [...new Set(runIds)])).map((r) => [r.id, r]),
  );
  const now = Date.now();
  const env = { now, leaseMs: ctx.writer.runLeaseMs };
  const read = runIds.map((id) => answerBeat(stored.get(id), id, env, opts));
  if (read.every((r) => !r.write)) return read.map((r) => r.result);
  return ctx.writer.transact(async (uow, env) => {
    await uow.loadRuns(projectId, runIds);
    return runIds.map((id) => {
      const { result, write } = answerBeat(uow.getRun(projectId, id), id, env, opts);
      if (write) uow.putRun(write);
      return result;
    });
  });
}

/** A run's answer to a beat, and the row to store for it when one is worth writing. */
function answerBeat(
  run: RunRow | undefined,
  runId: string,
  env: { now: number; leaseMs: number },
  opts: BeatOptions,
): { result: HeartbeatResult; write?: RunRow } {
  const refuse = (error: AppError) => ({
    result: { id: runId, ok: false as const, error: { code: error.code, message: error.message } },
  });
  if (!run) return refuse(AppError.notFound('run', runId));
  if (opts.workerId && run.worker_id && run.worker_id !== opts.workerId)
    return refuse(new AppError('conflict', `run ${runId} is held by worker ${run.worker_id}`));
  const next = renewed(run, env, opts);
  const write = next !== run && leaseMoves(run, next, env.now) ? next : undefined;
  const kept = write ?? run;
  return {
    result: {
      id: runId,
      ok: true,
      status: kept.status as RunStatus,
      cancel_requested: kept.cancel_requested_at !== null,
      lease_expires_at: toIso(kept.lease_expires_at),
      end_reason: isTerminalStatus(kept.status as RunStatus) ? errorMessage(kept.error) : null,
    },
    ...(write ? { write } : {}),
  };
}

/** `run` after a beat at `env.now`; `run` itself when a beat changes nothing (not running). */
function renewed(run: RunRow, env: { now: number; leaseMs: number }, opts: BeatOptions): RunRow {
  if (run.status === 'running' && run.worker_id !== null) {
    // a worker's lease is renewed for what it asked, else for as long as it held it last
    const held =
      run.lease_expires_at !== null && run.last_heartbeat_at !== null
        ? run.lease_expires_at - run.last_heartbeat_at
        : DEFAULT_CLAIM_LEASE_MS;
    return {
      ...run,
      last_heartbeat_at: env.now,
      lease_expires_at: env.now + (opts.leaseMs ?? held),
    };
  }
  return applyHeartbeat(run, { now: env.now, leaseMs: opts.leaseMs ?? env.leaseMs });
}

/**
 * Whether `next`'s lease is worth a write over `run`'s at `now`: less than half of the
 * stored lease is left, or the new one is shorter (a worker asking for less).
 */
function leaseMoves(run: RunRow, next: RunRow, now: number): boolean {
  if (run.lease_expires_at === null || next.lease_expires_at === null) return true;
  if (next.lease_expires_at < run.lease_expires_at) return true;
  return run.lease_expires_at - now < (next.lease_expires_at - now) / 2;
}

/**
 * A worker shutting down gives a run back: it is queued again for another worker (or
 * cancelled, when Stop was pressed meanwhile). Runs already ended answer as they are.
 */
export async function releaseRun(
  ctx: AppContext,
  projectId: string,
  runId: string,
  workerId: string | undefined,
): Promise<Run> {
  return ctx.writer.transact(async (uow, env) => {
    await uow.loadRuns(projectId, [runId]);
    const run = uow.getRun(projectId, runId);
    if (!run) throw AppError.notFound('run', runId);
    if (isTerminalStatus(run.status as RunStatus) || run.status === 'queued') return toRun(run);
    // a run recorded as it runs (the SDK, the REST API) was never the queue's: queued, a worker
    // would execute it a second time beside the process still running it
    if (run.worker_id === null)
      throw new AppError(
        'conflict',
        `run ${runId} is not held by a worker: only a claimed run goes back to the queue`,
      );
    if (workerId && run.worker_id !== workerId)
      throw new AppError('conflict', `run ${runId} is held by worker ${run.worker_id}`);
    if (run.cancel_requested_at !== null) {
      const ending: RunEnding = {
        status: 'cancelled',
        error: { message: 'stopped while its worker shut down', type: 'Cancelled' },
      };
      return toRun(await endRun(uow, run, ending, env.now));
    }
    // back to the queue: the next attempt records its own steps, this one's are over
    await uow.closeRunningSteps(run, env.now, {
      message: 'the worker gave the run back before this step ended',
      type: 'Released',
    });
    // queued again, it waits for a worker as a new run does: its timeout_ms counts from now,
    // not from the claim (the execution given back used that up, and the run would end
    // timed_out as "still queued" moments after the release)
    const timeoutMs = await uow.agentTimeoutMs(projectId, run.agent_id);
    const next: RunRow = {
      ...(uow.getRun(projectId, runId) ?? run),
      status: 'queued',
      started_at: null,
      worker_id: null,
      last_heartbeat_at: null,
      lease_expires_at: null,
      deadline_at: timeoutMs ? env.now + timeoutMs : null,
      updated_at: env.now,
    };
    uow.putRun(next);
    return toRun(next);
  });
}
