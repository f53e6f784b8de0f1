import { statusIn } from './dialect.js';
import type { Kysely } from 'kysely';
import type { DialectName } from './database.js';
import type { Database } from './schema.js';

/**
 * The oldest queued runs of the given agents, for a claim inside a write transaction. On
 * PostgreSQL the rows are locked `FOR UPDATE SKIP LOCKED`, so instances claiming at the same
 * time each get different runs instead of waiting on one another; on SQLite the single
 * writer already serialises claims.
 */
export async function selectQueuedForClaim(
  trx: Kysely<Database>,
  dialect: DialectName,
  projectId: string,
  agentIds: string[],
  limit: number,
): Promise<string[]> {
  let q = trx
    .selectFrom('runs')
    .select('id')
    .where(statusIn('queued'))
    .where('agent_id', 'in', agentIds)
    .where('project_id', '=', projectId)
    .orderBy('queued_at')
    .orderBy('id')
    .limit(limit);
  if (dialect === 'postgres') q = q.forUpdate().skipLocked();
  return (await q.execute()).map((r) => r.id);
}
