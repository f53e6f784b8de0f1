import { statusIn } from './dialect.js';
import type { Kysely } from 'kysely';
import type { DialectName } from './database.js';
import type { Database } from './schema.js';

/**
 * The oldest queued runs of the given agents that may run by `now` (an automatic retry waits
 * its delay with `queued_at` ahead), for a claim inside a write transaction, not locked: on PostgreSQL the claim then takes the runs it can of these with the write path's
 * own (advisory) locks, without waiting (`tryLockRuns`); on SQLite the single writer already
 * serialises claims.
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
): Promise<string[]> {
  const q = trx
    .selectFrom('runs')
    .select('id')
    .where(statusIn('queued'))
    .where('agent_id', 'in', agentIds)
    .where('project_id', '=', projectId)
    // within the index's range: (project_id, agent_id, queued_at, id) of the queued runs
    .where('queued_at', '<=', now)
    .orderBy('queued_at')
    .orderBy('id')
    // on PostgreSQL a few more: another instance may hold some of the oldest
    .limit(dialect === 'postgres' ? Math.min(limit * 2 + 8, 200) + skipped : limit);
  return (await q.execute()).map((r) => r.id);
}
