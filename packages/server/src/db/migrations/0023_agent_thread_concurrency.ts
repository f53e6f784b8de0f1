import type { Kysely } from 'kysely';

// Frozen in time: takes Kysely<any> and never imports app code.
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on the app's evolving types
export async function up(db: Kysely<any>): Promise<void> {
  // At most this many runs of one thread (conversation) of the agent executing on workers at
  // once: a thread's next run waits for the one before it. Null, as before: no such cap.
  await db.schema.alterTable('agents').addColumn('max_concurrency_per_thread', 'integer').execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('agents').dropColumn('max_concurrency_per_thread').execute();
}
