import { sql, type Kysely, type SqlBool } from 'kysely';

// Frozen in time: takes Kysely<any> and never imports app code.
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on the app's evolving types
export async function up(db: Kysely<any>): Promise<void> {
  // limits on one run of the agent: past one, the sweeper ends the run failed
  for (const column of ['max_cost_nanos', 'max_tokens', 'max_steps'])
    await db.schema.alterTable('agents').addColumn(column, 'bigint').execute();
  // the sweeper reads, every second, the agents that have any: few among many
  await db.schema
    .createIndex('agents_limited')
    .on('agents')
    .columns(['project_id', 'id'])
    .where(
      sql<SqlBool>`max_cost_nanos IS NOT NULL OR max_tokens IS NOT NULL OR max_steps IS NOT NULL`,
    )
    .execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('agents_limited').execute();
  for (const column of ['max_cost_nanos', 'max_tokens', 'max_steps'])
    await db.schema.alterTable('agents').dropColumn(column).execute();
}
