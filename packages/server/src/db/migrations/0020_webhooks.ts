import { PostgresAdapter, sql, type Kysely, type SqlBool } from 'kysely';

// Frozen in time: takes Kysely<any> and never imports app code.
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on the app's evolving types
export async function up(db: Kysely<any>): Promise<void> {
  const pg = db.getExecutor().adapter instanceof PostgresAdapter;
  // ids compare as bytes, as runs' do (0007)
  const idType = pg ? sql`text COLLATE "C"` : sql`text`;
  // A project's webhook endpoints. The signing secret is stored as it is: the server signs
  // each delivery with it, so a hash (as for API keys) would not do.
  await db.schema
    .createTable('webhook_endpoints')
    .addColumn('project_id', 'text', (c) => c.notNull())
    .addColumn('id', idType, (c) => c.notNull())
    .addColumn('url', 'text', (c) => c.notNull())
    .addColumn('description', 'text')
    // JSON arrays: the events sent, and the agents whose runs are (null: every agent)
    .addColumn('events', 'text', (c) => c.notNull())
    .addColumn('agent_ids', 'text')
    .addColumn('secret', 'text', (c) => c.notNull())
    .addColumn('enabled', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('webhook_endpoints_pk', ['project_id', 'id'])
    .execute();
  // One event for one endpoint, written in the transaction that ended its run, with its body
  // as first built; attempts move `next_attempt_at` on until it is delivered or given up.
  await db.schema
    .createTable('webhook_deliveries')
    .addColumn('project_id', 'text', (c) => c.notNull())
    .addColumn('id', idType, (c) => c.notNull())
    .addColumn('webhook_id', idType, (c) => c.notNull())
    .addColumn('event', 'text', (c) => c.notNull())
    .addColumn('run_id', idType)
    .addColumn('payload', 'text', (c) => c.notNull())
    // pending, delivered or failed (given up)
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'bigint')
    .addColumn('last_status_code', 'integer')
    .addColumn('last_error', 'text')
    .addColumn('delivered_at', 'bigint')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('webhook_deliveries_pk', ['project_id', 'id'])
    .execute();
  // the deliverer's pick, every second: the few pending among many done
  await db.schema
    .createIndex('webhook_deliveries_due')
    .on('webhook_deliveries')
    .columns(['next_attempt_at'])
    .where(sql<SqlBool>`status = 'pending'`)
    .execute();
  // an endpoint's recent deliveries, newest first; deleted with it
  await db.schema
    .createIndex('webhook_deliveries_endpoint')
    .on('webhook_deliveries')
    .columns(['project_id', 'webhook_id', 'created_at'])
    .execute();
  // retention deletes a project's old ones
  await db.schema
    .createIndex('webhook_deliveries_created')
    .on('webhook_deliveries')
    .columns(['project_id', 'created_at'])
    .execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('webhook_deliveries').ifExists().execute();
  await db.schema.dropTable('webhook_endpoints').ifExists().execute();
}
