import type { Kysely } from 'kysely';

// Frozen in time: takes Kysely<any> and never imports app code.
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on the app's evolving types
export async function up(db: Kysely<any>): Promise<void> {
  // The workers that asked for runs lately (claims and heartbeats), for `GET /workers`
  await db.schema
    .createTable('workers')
    .addColumn('project_id', 'text', (c) => c.notNull())
    .addColumn('id', 'text', (c) => c.notNull())
    // JSON array of the agent ids its last claim asked for
    .addColumn('agents', 'text', (c) => c.notNull())
    .addColumn('first_seen_at', 'bigint', (c) => c.notNull())
    .addColumn('last_seen_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('workers_pk', ['project_id', 'id'])
    .execute();
  await db.schema
    .createIndex('workers_seen')
    .on('workers')
    .columns(['project_id', 'last_seen_at'])
    .execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('workers').ifExists().execute();
}
