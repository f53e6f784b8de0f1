import type { Kysely } from 'kysely';

// Frozen in time: takes Kysely<any> and never imports app code.
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on the app's evolving types
export async function up(db: Kysely<any>): Promise<void> {
  // limits on one run of the agent: past one, the sweeper ends the run failed
  for (const column of ['max_cost_nanos', 'max_tokens', 'max_steps'])
    await db.schema.alterTable('agents').addColumn(column, 'bigint').execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see up()
export async function down(db: Kysely<any>): Promise<void> {
  for (const column of ['max_cost_nanos', 'max_tokens', 'max_steps'])
    await db.schema.alterTable('agents').dropColumn(column).execute();
}
