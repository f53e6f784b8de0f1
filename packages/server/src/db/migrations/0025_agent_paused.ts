import type { Kysely } from 'kysely';

// Frozen in time: takes Kysely<any> and never imports app code.
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on the app's evolving types
export async function up(db: Kysely<any>): Promise<void> {
  // When the agent was paused (epoch ms): workers are handed none of its queued runs and its
  // schedule queues none until it is resumed. Null, as before: it runs.
  await db.schema.alterTable('agents').addColumn('paused_at', 'bigint').execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('agents').dropColumn('paused_at').execute();
}
