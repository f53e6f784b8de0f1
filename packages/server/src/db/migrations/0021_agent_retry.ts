import type { Kysely } from 'kysely';

// Frozen in time: takes Kysely<any> and never imports app code.
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on the app's evolving types
export async function up(db: Kysely<any>): Promise<void> {
  // An agent's retry policy, JSON ({max_attempts, delay_ms, backoff}): a run of it that a
  // worker executed and that failed or timed out is queued again on its own, up to
  // max_attempts in all. Null, as for every agent stored before: no automatic retry.
  await db.schema.alterTable('agents').addColumn('retry_policy', 'text').execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('agents').dropColumn('retry_policy').execute();
}
