import type { Kysely } from 'kysely';

// Frozen in time: takes Kysely<any> and never imports app code.
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on the app's evolving types
export async function up(db: Kysely<any>): Promise<void> {
  // When a worker last asked for the agent's runs: a queued run can tell that none is there
  await db.schema.alterTable('agents').addColumn('worker_seen_at', 'bigint').execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('agents').dropColumn('worker_seen_at').execute();
}
