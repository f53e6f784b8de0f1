import { sql, type Kysely } from 'kysely';
import { statusIn } from './dialect.js';
import type { DialectName } from './database.js';
import type { Database } from './schema.js';

/** A queued run a claim may take, in queue order (`queued_at`, then `id`). */
export interface QueuedCandidate {
  id: string;
  agent_id: string;
  queued_at: number;
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
): Promise<QueuedCandidate[]> {
  // on PostgreSQL a few more: another instance may hold some of the oldest
  const reach = (n: number) => (dialect === 'postgres' ? Math.min(n * 2 + 8, 200) + skipped : n);
  const read = (agents: string[], n: number) =>
    trx
      .selectFrom('runs')
      .select(['id', 'agent_id', 'queued_at'])
      .where(statusIn('queued'))
      .where('agent_id', 'in', agents)
      .where('project_id', '=', projectId)
      // within the index's range: (project_id, agent_id, queued_at, id) of the queued runs
      .where('queued_at', '<=', now)
      .orderBy('queued_at')
      .orderBy('id')
      .limit(reach(n))
      .execute() as Promise<QueuedCandidate[]>;
  if (!slots || slots.size === 0) return read(agentIds, limit);
  const free = agentIds.filter((a) => !slots.has(a));
  const reads: Promise<QueuedCandidate[]>[] = free.length > 0 ? [read(free, limit)] : [];
  for (const [agent, open] of slots) if (open > 0) reads.push(read([agent], Math.min(open, limit)));
  const rows: QueuedCandidate[] = [];
  for (const r of reads) rows.push(...(await r));
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
