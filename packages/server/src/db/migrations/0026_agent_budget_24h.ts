import type { Kysely } from 'kysely';

// Frozen in time: takes Kysely<any> and never imports app code.
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on the app's evolving types
export async function up(db: Kysely<any>): Promise<void> {
  // An agent's budget over 24 hours (nano-USD): while the runs it started in the last 24
  // hours cost this much, workers are handed none of its queued runs and its schedule skips
  // its slots. Null, as before: no such budget.
  await db.schema.alterTable('agents').addColumn('max_cost_nanos_24h', 'bigint').execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('agents').dropColumn('max_cost_nanos_24h').execute();
}
