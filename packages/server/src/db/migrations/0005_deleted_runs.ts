import type { Kysely } from 'kysely';

// Frozen in time: takes Kysely<any> and never imports app code.
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on the app's evolving types
export async function up(db: Kysely<any>): Promise<void> {
  // Runs deleted lately: an agent still running one goes on sending its steps and its end for
  // a while, and those must not bring it back (as a run of agent `unknown`). Kept a day.
  await db.schema
    .createTable('deleted_runs')
    .addColumn('project_id', 'text', (c) =>
      c.notNull().references('projects.id').onDelete('cascade'),
    )
    .addColumn('run_id', 'text', (c) => c.notNull())
    .addColumn('deleted_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('deleted_runs_pk', ['project_id', 'run_id'])
    .execute();
  await db.schema.createIndex('deleted_runs_at').on('deleted_runs').column('deleted_at').execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('deleted_runs').execute();
}
