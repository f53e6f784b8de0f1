import type { Kysely } from 'kysely';

// Frozen in time: takes Kysely<any> and never imports app code.
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on the app's evolving types
export async function up(db: Kysely<any>): Promise<void> {
  // At most this many of an agent's runs executing on workers at once, over every worker and
  // server instance: claims hand out no more. Null, as for every agent stored before: no cap.
  await db.schema.alterTable('agents').addColumn('max_concurrency', 'integer').execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('agents').dropColumn('max_concurrency').execute();
}
