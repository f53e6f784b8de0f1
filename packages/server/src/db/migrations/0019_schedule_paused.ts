import type { Kysely } from 'kysely';

// Frozen in time: takes Kysely<any> and never imports app code.
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on the app's evolving types
export async function up(db: Kysely<any>): Promise<void> {
  // 1 while an agent's schedule is paused: the scheduler queues nothing for it. Every schedule
  // stored before this column runs on (0), as it did.
  await db.schema
    .alterTable('agents')
    .addColumn('schedule_paused', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('agents').dropColumn('schedule_paused').execute();
}
