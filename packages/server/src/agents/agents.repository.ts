import { sql, type Kysely } from 'kysely';
import type { Db } from '../db/database.js';
import { readOffLoop } from '../db/readers.js';
import { jsonStringField, sumOf } from '../db/dialect.js';
import type { AgentRow, Database, RunRow } from '../db/schema.js';
import { DAY_MS, HOUR_MS, hourOf } from '../stats/rollup.js';

/**
 * A new agent as it is stored before anyone configures it: named after its id, no
 * description, schedule or timeout.
 */
export function newAgentRow(projectId: string, id: string, name: string, now: number): AgentRow {
  return {
    project_id: projectId,
    id,
    name,
    description: null,
    schedule_cron: null,
    schedule_tz: null,
    schedule_next_at: null,
    schedule_paused: 0,
    timeout_ms: null,
    max_cost_nanos: null,
    max_tokens: null,
    max_steps: null,
    retry_policy: null,
    max_concurrency: null,
    max_concurrency_per_thread: null,
    paused_at: null,
    max_cost_nanos_24h: null,
    over_budget_at: null,
    metadata: '{}',
    created_at: now,
    updated_at: now,
    worker_seen_at: null,
  };
}

/** An agent row with the ids of its newest run and of its newest failed / timed-out runs. */
export type AgentWithLatest = AgentRow & {
  latest_id: string | null;
  /** The failed or timed-out run that ended last. */
  error_id: string | null;
};

/** What `last_error` needs of a failed run: its error's message, cut to a summary. */
export type ErrorRunRow = Pick<RunRow, 'id' | 'status' | 'ended_at'> & {
  error_message: string | null;
};

/** How much of an error's message an agent's `last_error` carries (an error may be 1 MiB). */
export const LAST_ERROR_CHARS = 2000;

/** The failed runs `errorIds` names, as `last_error` needs them. */
export async function findErrorRuns(
  db: Db,
  projectId: string,
  errorIds: readonly string[],
): Promise<ErrorRunRow[]> {
  const rows: ErrorRunRow[] = [];
  // a message that is not a string (a number, an object) is none: the status says it
  const message = jsonStringField(db, sql.ref('error'), 'message');
  for (let i = 0; i < errorIds.length; i += 500) {
    rows.push(
      ...(await db.kysely
        .selectFrom('runs')
        .select(['id', 'status', 'ended_at'])
        .select(
          sql<string | null>`substr(${message}, 1, ${sql.lit(LAST_ERROR_CHARS)})`.as(
            'error_message',
          ),
        )
        .where('project_id', '=', projectId)
        .where('id', 'in', errorIds.slice(i, i + 500))
        .execute()),
    );
  }
  return rows;
}

export async function findAgent(
  db: Db,
  projectId: string,
  id: string,
): Promise<AgentRow | undefined> {
  return db.kysely
    .selectFrom('agents')
    .selectAll()
    .where('project_id', '=', projectId)
    .where('id', '=', id)
    .executeTakeFirst();
}

/**
 * The project's agents (or one) by id, each with its newest run ids. One statement: each
 * id is a correlated probe of a (project, agent[, status], sort_at, id) index, so a
 * thousand agents cost a thousand index seeks, never a scan of their runs. The latest run
 * is the newest but a queued run listed after `now`: one queued to start later (or an
 * automatic retry waiting its delay) has not happened yet, and would hide the run that last
 * did.
 */
export async function listAgentsWithLatest(
  db: Db,
  projectId: string,
  agentId?: string,
  now = Date.now(),
): Promise<AgentWithLatest[]> {
  let query = db.kysely
    .selectFrom('agents')
    .selectAll('agents')
    .select((eb) => {
      const runs = () =>
        eb
          .selectFrom('runs as r')
          .select('r.id')
          .whereRef('r.project_id', '=', 'agents.project_id')
          .whereRef('r.agent_id', '=', 'agents.id');
      return [
        runs()
          // a host's clock ahead puts a recorded run's start ahead too: only queued runs wait
          .where((w) => w.or([w('r.sort_at', '<=', now), w('r.status', '!=', 'queued')]))
          .orderBy('r.sort_at', 'desc')
          .orderBy('r.id', 'desc')
          .limit(1)
          .as('latest_id'),
        // the error that happened last: by end, not start (a long run failing now is newer
        // than a short one that started after it); the runs_errors index holds just these
        runs()
          .where('r.status', 'in', sql<string>`('failed', 'timed_out')`)
          .where('r.ended_at', 'is not', null)
          .orderBy('r.ended_at', 'desc')
          .orderBy('r.id', 'desc')
          .limit(1)
          .as('error_id'),
      ];
    })
    .where('agents.project_id', '=', projectId);
  if (agentId !== undefined) query = query.where('agents.id', '=', agentId);
  // a thousand agents' probes take milliseconds: beside the event loop where it can
  return readOffLoop(db, query.orderBy('agents.id'));
}

/**
 * The agents' counts of the last 24 hours (`counts_24h`, the metrics' `*_24h`): from the start
 * of the hour 24 h before `now` to the end of the current hour, as the stats count them. Runs
 * by status, tokens and cost from the rollups, folded per agent, and the failures no run
 * retries (of `agentIds`). The one place that window is drawn.
 */
export async function counts24h(
  db: Db,
  projectId: string,
  now: number,
  agentIds: readonly string[],
  /** Only this agent's counts. */
  agentId?: string,
): Promise<ReturnType<typeof foldAgentCounts> & { notRetried: Map<string, number> }> {
  const { since, until } = last24Hours(now);
  const [counts, notRetried] = await Promise.all([
    countsByAgentSince(db, projectId, since, until, agentId),
    unretriedFailuresSince(db, projectId, since, until, agentIds),
  ]);
  return { ...foldAgentCounts(counts), notRetried };
}

/** `countsByAgentSince`'s rows folded per agent: runs by status, and tokens and cost. */
export function foldAgentCounts(
  counts: readonly {
    agent_id: string;
    status: string;
    runs: number;
    tokens: number;
    cost_nanos: number;
  }[],
): {
  byStatus: Map<string, Map<string, number>>;
  usage: Map<string, { tokens: number; cost_nanos: number }>;
} {
  const byStatus = new Map<string, Map<string, number>>();
  const usage = new Map<string, { tokens: number; cost_nanos: number }>();
  for (const c of counts) {
    let m = byStatus.get(c.agent_id);
    if (!m) byStatus.set(c.agent_id, (m = new Map()));
    m.set(c.status, (m.get(c.status) ?? 0) + c.runs);
    const u = usage.get(c.agent_id) ?? { tokens: 0, cost_nanos: 0 };
    u.tokens += c.tokens;
    u.cost_nanos += c.cost_nanos;
    usage.set(c.agent_id, u);
  }
  return { byStatus, usage };
}

/**
 * Runs, tokens and cost per agent and status whose hour (of `sort_at`) is at or after
 * `sinceHour`, from the rollups.
 */
export async function countsByAgentSince(
  db: Db,
  projectId: string,
  sinceHour: number,
  /** The hour after the last counted (the current hour's end), as the stats' `to` bounds them. */
  untilHour: number,
  agentId?: string,
): Promise<
  { agent_id: string; status: string; runs: number; tokens: number; cost_nanos: number }[]
> {
  let query = db.kysely
    .selectFrom('run_rollups')
    .select(['agent_id', 'status'])
    .select([
      sumOf(db, 'runs'),
      sumOf(db, 'input_tokens'),
      sumOf(db, 'output_tokens'),
      sumOf(db, 'cost_nanos'),
    ])
    .where('project_id', '=', projectId)
    .where('hour', '>=', sinceHour)
    .where('hour', '<', untilHour);
  if (agentId !== undefined) query = query.where('agent_id', '=', agentId);
  const rows = await readOffLoop(db, query.groupBy(['agent_id', 'status']));
  return rows.map((r) => ({
    agent_id: r.agent_id,
    status: r.status,
    runs: Number(r.runs),
    tokens: Number(r.input_tokens) + Number(r.output_tokens),
    cost_nanos: Number(r.cost_nanos),
  }));
}

/**
 * The hours the Agents page's 24 h counts read (`counts_24h`), and so an agent's budget: from
 * the start of the hour 24 hours ago to the end of the current one, on the hourly rollups.
 */
function last24Hours(now: number): { since: number; until: number } {
  return { since: hourOf(now - DAY_MS), until: hourOf(now) + HOUR_MS };
}

/**
 * Which of `agents` are over their budget (`max_cost_nanos_24h`): the runs each started in
 * the last 24 hours (`counts_24h.cost_usd`) cost it or more, so workers are handed none of its
 * queued runs and its schedule skips its slots. Read in `k` (a claim's or a schedule slot's
 * transaction), from the hourly rollups (25 rows an agent), only for agents with a budget.
 */
export async function agentsOverBudget(
  k: Kysely<Database>,
  db: Db,
  projectId: string,
  agents: readonly Pick<AgentRow, 'id' | 'max_cost_nanos_24h'>[],
  now: number,
): Promise<Set<string>> {
  const budgeted = agents.filter((a) => a.max_cost_nanos_24h !== null);
  const spent = await spentIn24Hours(
    k,
    db,
    projectId,
    budgeted.map((a) => a.id),
    now,
  );
  return new Set(
    budgeted.filter((a) => (spent.get(a.id) ?? 0) >= Number(a.max_cost_nanos_24h)).map((a) => a.id),
  );
}

/**
 * What the runs each of `agentIds` started in the last 24 hours cost, in nano-USD (the
 * Agents page's Cost 24 h), from the hourly rollups; an agent without any is left out.
 */
export async function spentIn24Hours(
  k: Kysely<Database>,
  db: Db,
  projectId: string,
  agentIds: readonly string[],
  now: number,
): Promise<Map<string, number>> {
  if (agentIds.length === 0) return new Map();
  const { since, until } = last24Hours(now);
  const rows = await k
    .selectFrom('run_rollups')
    .select('agent_id')
    .select(sumOf(db, 'cost_nanos'))
    .where('project_id', '=', projectId)
    .where('agent_id', 'in', agentIds)
    .where('hour', '>=', since)
    .where('hour', '<', until)
    .groupBy('agent_id')
    .execute();
  return new Map(rows.map((r) => [r.agent_id, Number(r.cost_nanos)]));
}

/** Agents one `unretriedFailuresSince` statement asks about. */
const UNRETRIED_CHUNK = 5000;

/**
 * Per agent of `agentIds`: its failed and timed-out runs listed from `since` to `until` (the
 * hours `countsByAgentSince` counts) that nothing retried (no run is their `retry_of`): the failures still standing once manual and
 * automatic retries are counted out. Each agent's failures are a range of the covering
 * (project, agent, status, list time) index, each probed in the `retry_of` index: about a
 * millisecond for 8,000 failures a day over 50 agents (SQLite names the index: its sampled
 * statistics chose the (project, status) one and a table read per failure, 6x slower).
 */
export async function unretriedFailuresSince(
  db: Db,
  projectId: string,
  since: number,
  until: number,
  agentIds: readonly string[],
): Promise<Map<string, number>> {
  if (agentIds.length === 0) return new Map();
  // (a statement takes some 30,000 parameters on SQLite)
  if (agentIds.length > UNRETRIED_CHUNK) {
    const counts = new Map<string, number>();
    for (let i = 0; i < agentIds.length; i += UNRETRIED_CHUNK) {
      const part = agentIds.slice(i, i + UNRETRIED_CHUNK);
      for (const [k, v] of await unretriedFailuresSince(db, projectId, since, until, part))
        counts.set(k, v);
    }
    return counts;
  }
  const runs =
    db.dialect === 'sqlite' ? sql`runs as r indexed by runs_agent_status_sort` : sql`runs as r`;
  const query = sql<{ agent_id: string; n: number | string }>`select r.agent_id, count(*) as n
    from ${runs}
    where r.project_id = ${projectId} and r.agent_id in (${sql.join([...agentIds])})
      and r.status in ('failed', 'timed_out') and r.sort_at >= ${since} and r.sort_at < ${until}
      and not exists (select 1 from runs as x
        where x.project_id = r.project_id and x.retry_of = r.id)
    group by r.agent_id`;
  const rows = await readOffLoop(db, { compile: () => query.compile(db.kysely) });
  return new Map(rows.map((r) => [r.agent_id, Number(r.n)]));
}

/** Inserts or replaces an agent row. */
export async function saveAgent(
  db: Db,
  row: AgentRow,
  /** The columns an existing agent takes from `row` (default: all a save may write). */
  only?: readonly (keyof AgentRow)[],
): Promise<AgentRow> {
  // when a worker last asked is the claims' to write, and whether it is over its budget the
  // budget watch's: a save must not put back what it read (the watch would tell it twice)
  const {
    project_id: _p,
    id: _i,
    created_at: _c,
    worker_seen_at: _w,
    over_budget_at: _o,
    ...all
  } = row;
  // only the columns asked for: two saves of different settings at once keep both
  const changes = only
    ? Object.fromEntries(Object.entries(all).filter(([k]) => only.includes(k as keyof AgentRow)))
    : all;
  return db.kysely
    .insertInto('agents')
    .values(row)
    .onConflict((oc) => oc.columns(['project_id', 'id']).doUpdateSet(changes))
    .returningAll()
    .executeTakeFirstOrThrow();
}

/**
 * The agent, paused since `pausedAt`, is resumed at `now`: its queued runs' deadlines (their
 * `timeout_ms` counts a queued run's wait for a worker) move on by the time each waited
 * while paused, so a pause of an hour does not time out the queue it was meant to keep.
 */
export async function movePausedDeadlines(
  db: Db,
  projectId: string,
  agentId: string,
  pausedAt: number,
  now: number,
): Promise<void> {
  const greatest = db.dialect === 'postgres' ? sql`greatest` : sql`max`;
  await db.kysely
    .updateTable('runs')
    .set({
      deadline_at: sql<number>`deadline_at + (${now} - ${greatest}(${pausedAt}, queued_at))`,
    })
    .where('project_id', '=', projectId)
    .where('agent_id', '=', agentId)
    .where('status', '=', 'queued')
    .where('deadline_at', 'is not', null)
    // a run held back to a time still to come has not begun to wait
    .where('queued_at', '<', now)
    .execute();
}

/** Ids of up to `limit` runs of an agent (any order). */
export async function agentRunIds(
  db: Db,
  projectId: string,
  agentId: string,
  limit: number,
  /** Only runs created before this time (epoch ms). */
  createdBefore = Infinity,
): Promise<string[]> {
  const rows = await db.kysely
    .selectFrom('runs')
    .select('id')
    .where('project_id', '=', projectId)
    .where('agent_id', '=', agentId)
    .$if(Number.isFinite(createdBefore), (q) => q.where('created_at', '<', createdBefore))
    .limit(limit)
    .execute();
  return rows.map((r) => r.id);
}

/** Deletes the agent row and its schedule slots (its runs must be gone already). */
export async function deleteAgentRow(db: Db, projectId: string, agentId: string): Promise<boolean> {
  return db.kysely.transaction().execute(async (trx) => {
    await trx
      .deleteFrom('schedule_slots')
      .where('project_id', '=', projectId)
      .where('agent_id', '=', agentId)
      .execute();
    const res = await trx
      .deleteFrom('agents')
      .where('project_id', '=', projectId)
      .where('id', '=', agentId)
      .executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  });
}
