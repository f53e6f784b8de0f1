import type { Kysely } from 'kysely';

// Frozen in time: takes Kysely<any> and never imports app code.
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on the app's evolving types
export async function up(db: Kysely<any>): Promise<void> {
  // a deleted run's agent: an instance that missed the NOTIFY of a deletion (its LISTEN
  // connection was down) reads the deletion back from here and announces it on the run's
  // agent topic too. Null for runs deleted before this column.
  await db.schema.alterTable('deleted_runs').addColumn('agent_id', 'text').execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('deleted_runs').dropColumn('agent_id').execute();
}
