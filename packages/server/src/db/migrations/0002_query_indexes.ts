import type { Kysely } from 'kysely';

// Frozen in time: takes Kysely<any> and never imports app code.
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on the app's evolving types
export async function up(db: Kysely<any>): Promise<void> {
  // an agent's newest run of one status (GET /agents' last_error, status-filtered agent runs)
  // is one index probe instead of a walk over all its runs
  await db.schema
    .createIndex('runs_agent_status_sort')
    .on('runs')
    .columns(['project_id', 'agent_id', 'status', 'sort_at', 'id'])
    .execute();
  // GET /runs?user_id= newest first
  await db.schema
    .createIndex('runs_user_sort')
    .on('runs')
    .columns(['project_id', 'user_id', 'sort_at'])
    .execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('runs_user_sort').ifExists().execute();
  await db.schema.dropIndex('runs_agent_status_sort').ifExists().execute();
}
