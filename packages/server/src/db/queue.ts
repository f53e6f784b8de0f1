import { sql, type Kysely } from 'kysely';
import { statusIn } from './dialect.js';
import type { DialectName } from './database.js';
import type { Database } from './schema.js';

/** A queued run a claim may take, in queue order (`queued_at`, then `id`). */
export interface QueuedCandidate {
  id: string;
  agent_id: string;
  queued_at: number;
  thread_id: string | null;
  /**
   * For an agent with a per-thread cap: how many runs of its thread the agent's workers are
   * executing now (0 without a thread, or without that cap).
   */
  thread_running: number;
}

/**
 * The oldest queued runs of the given agents that may run by `now` (an automatic retry waits
 * its delay with `queued_at` ahead), for a claim inside a write transaction, not locked: on
 * PostgreSQL the claim then takes the runs it can of these with the write path's own
 * (advisory) locks, without waiting (`tryLockRuns`); on SQLite the single writer already
 * serialises claims.
 *
 * `slots` bounds agents with a concurrency cap: at most that many of each one's runs (none
 * for 0), read from its own range of the queue index, so a capped agent's older runs do not
 * take the places of other agents' runs the claim may hand out.
 */
export async function selectQueuedForClaim(
  trx: Kysely<Database>,
  dialect: DialectName,
  projectId: string,
  agentIds: string[],
  limit: number,
  now: number,
  /** More candidates on PostgreSQL, past this many already tried. */
  skipped = 0,
  slots?: ReadonlyMap<string, number>,
  /** Agents with a per-thread cap: runs of a thread already at it are not candidates. */
  threadCaps?: ReadonlyMap<string, number>,
): Promise<QueuedCandidate[]> {
  // on PostgreSQL a few more: another instance may hold some of the oldest
  const reach = (n: number) => (dialect === 'postgres' ? Math.min(n * 2 + 8, 200) + skipped : n);
  const read = async (agents: string[], n: number, perThread?: number) => {
    // the thread's runs the agent's workers execute now, read off the (project, agent,
    // status) index: an agent runs few at once, however long its threads
    const running = sql<number | string>`(select count(*) from runs as x
      where x.project_id = runs.project_id and x.agent_id = runs.agent_id
        and x.status = 'running' and x.thread_id = runs.thread_id and x.worker_id is not null)`;
    let q = trx
      .selectFrom('runs')
      .select(['id', 'agent_id', 'queued_at', 'thread_id'])
      .where(statusIn('queued'))
      .where('agent_id', 'in', agents)
      .where('project_id', '=', projectId)
      // within the index's range: (project_id, agent_id, queued_at, id) of the queued runs
      .where('queued_at', '<=', now);
    if (perThread !== undefined)
      q = q.where((eb) => eb.or([eb('thread_id', 'is', null), eb(running, '<', perThread)]));
    const rows = await q
      .select(
        (perThread !== undefined
          ? sql<number | string>`case when runs.thread_id is null then 0 else ${running} end`
          : sql<number | string>`0`
        ).as('thread_running'),
      )
      .orderBy('queued_at')
      .orderBy('id')
      .limit(reach(n))
      .execute();
    return rows.map((r) => ({
      id: r.id,
      agent_id: r.agent_id,
      queued_at: Number(r.queued_at),
      thread_id: r.thread_id,
      thread_running: Number(r.thread_running),
    }));
  };
  // capped agents are read each on its own: so many runs of one, past the threads at their cap
  const apart = (a: string) => slots?.has(a) === true || threadCaps?.has(a) === true;
  if (!agentIds.some(apart)) return read(agentIds, limit);
  const free = agentIds.filter((a) => !apart(a));
  const rows: QueuedCandidate[] = free.length > 0 ? await read(free, limit) : [];
  for (const agent of new Set(agentIds.filter(apart))) {
    const open = slots?.get(agent) ?? limit;
    if (open > 0)
      rows.push(...(await read([agent], Math.min(open, limit), threadCaps?.get(agent))));
  }
  return rows
    .sort((a, b) => a.queued_at - b.queued_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .slice(0, reach(limit));
}

/**
 * How many runs of each of these agents workers are executing now (running, claimed by a
 * worker). On PostgreSQL it first takes each agent's slot lock (transaction-scoped, in one
 * order), so concurrent claims of a capped agent, on any instance, count one after another:
 * each sees the runs the one before it claimed once that one committed.
 */
export async function runningOnWorkers(
  trx: Kysely<Database>,
  dialect: DialectName,
  projectId: string,
  agentIds: readonly string[],
): Promise<Map<string, number>> {
  if (agentIds.length === 0) return new Map();
  if (dialect === 'postgres') {
    const keys = agentIds.map((a) => `slots/${projectId}/${a}`);
    await sql`SELECT pg_advisory_xact_lock(h) FROM (SELECT DISTINCT hashtextextended(k, 0) AS h FROM unnest(${keys}::text[]) AS k ORDER BY h) AS locks`.execute(
      trx,
    );
  }
  // an agent's running runs, read off the (project, agent, status) index: few, whatever the
  // history (SQLite is told the index: sampled statistics may prefer another)
  const runs =
    dialect === 'sqlite' ? sql`runs as r indexed by runs_agent_status_sort` : sql`runs as r`;
  const rows = await sql<{ agent_id: string; n: number | string }>`select r.agent_id, count(*) as n
    from ${runs}
    where r.project_id = ${projectId} and r.agent_id in (${sql.join([...agentIds])})
      and r.status = 'running' and r.worker_id is not null
    group by r.agent_id`.execute(trx);
  return new Map(rows.rows.map((r) => [r.agent_id, Number(r.n)]));
}

/** The key of one thread of an agent, as the per-thread caps count and lock it. */
export const threadKey = (agentId: string, threadId: string) => `${agentId}\u0000${threadId}`;

/**
 * PostgreSQL: takes the transaction-scoped locks of these threads of agents (`threadKey`s)
 * in one fixed order, so that claims of the same thread, on any instance, count its running
 * runs one after another. Taken in one statement, after the agents' slot locks: two claims
 * never wait on each other's locks in opposite orders.
 */
export async function lockThreads(
  trx: Kysely<Database>,
  projectId: string,
  keys: readonly string[],
): Promise<void> {
  if (keys.length === 0) return;
  // text without NUL, which PostgreSQL refuses: an agent id has no '/' to make it ambiguous
  const locks = keys.map((k) => `thread/${projectId}/${k.replace('\u0000', '/')}`);
  await sql`SELECT pg_advisory_xact_lock(h) FROM (SELECT DISTINCT hashtextextended(k, 0) AS h FROM unnest(${locks}::text[]) AS k ORDER BY h) AS locks`.execute(
    trx,
  );
}
