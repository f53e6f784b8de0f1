import { sql, type Kysely } from 'kysely';

// Frozen in time: takes Kysely<any> and never imports app code.
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on the app's evolving types
export async function up(db: Kysely<any>): Promise<void> {
  // An agent's last error is the failed or timed-out run that ended last (a long run failing
  // now is newer than a short one that started after it). Only such runs are in this index:
  // a succeeded run's insert never writes it.
  await db.schema
    .createIndex('runs_errors')
    .on('runs')
    .columns(['project_id', 'agent_id', 'ended_at', 'id'])
    .where(sql.ref('status'), 'in', sql`('failed', 'timed_out')`)
    .execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('runs_errors').execute();
}
