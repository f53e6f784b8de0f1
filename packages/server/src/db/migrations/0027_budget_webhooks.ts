import { PostgresAdapter, sql, type Kysely, type SqlBool } from 'kysely';

// Frozen in time: takes Kysely<any> and never imports app code.
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on the app's evolving types
export async function up(db: Kysely<any>): Promise<void> {
  const pg = db.getExecutor().adapter instanceof PostgresAdapter;
  // ids compare as bytes, as runs' do (0007)
  const idType = pg ? sql`text COLLATE "C"` : sql`text`;
  // Since when the agent's spend over the last 24 hours has stood at its budget (epoch ms), as
  // the budget watch last saw it: it tells webhooks once when the spend reaches the budget
  // and once when it falls back under. Null: under its budget, or none.
  await db.schema.alterTable('agents').addColumn('over_budget_at', 'bigint').execute();
  // the budget watch's read, every second: the few agents with a budget among many
  await db.schema
    .createIndex('agents_budget_watch')
    .on('agents')
    .columns(['project_id', 'id'])
    .where(sql<SqlBool>`max_cost_nanos_24h IS NOT NULL OR over_budget_at IS NOT NULL`)
    .execute();
  // The agent an event is about: a run event's run's agent, an agent event's agent.
  await db.schema.alterTable('webhook_deliveries').addColumn('agent_id', idType).execute();
  await sql`UPDATE webhook_deliveries SET agent_id = (
      SELECT agent_id FROM runs
      WHERE runs.project_id = webhook_deliveries.project_id AND runs.id = webhook_deliveries.run_id
    ) WHERE run_id IS NOT NULL`.execute(db);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('webhook_deliveries').dropColumn('agent_id').execute();
  await db.schema.dropIndex('agents_budget_watch').execute();
  await db.schema.alterTable('agents').dropColumn('over_budget_at').execute();
}
