import { PostgresAdapter, sql, type Kysely } from 'kysely';

// Frozen in time: takes Kysely<any> and never imports app code.
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on the app's evolving types
export async function up(db: Kysely<any>): Promise<void> {
  const pg = db.getExecutor().adapter instanceof PostgresAdapter;
  // ids compare as bytes, as runs' and steps' do (0007): joined with runs.id
  const idType = pg ? sql`text COLLATE "C"` : sql`text`;
  // A run's scores by name, `{"<name>": {type, n, avg, labels}}`, kept with its scores
  await db.schema
    .alterTable('runs')
    .addColumn('scores', 'text', (c) => c.notNull().defaultTo('{}'))
    .execute();
  await db.schema
    .createTable('scores')
    .addColumn('project_id', 'text', (c) => c.notNull())
    .addColumn('run_id', idType, (c) => c.notNull())
    .addColumn('id', idType, (c) => c.notNull())
    .addColumn('step_id', 'text')
    .addColumn('name', 'text', (c) => c.notNull())
    // numeric, boolean or categorical
    .addColumn('type', 'text', (c) => c.notNull())
    // a number, or 1 / 0 for a boolean; null for a label
    .addColumn('value', 'double precision')
    .addColumn('label', 'text')
    .addColumn('comment', 'text')
    .addColumn('source', 'text')
    .addColumn('metadata', 'text', (c) => c.notNull().defaultTo('{}'))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('scores_pk', ['project_id', 'run_id', 'id'])
    .execute();
  // the stats read the scores given in a range
  await db.schema
    .createIndex('scores_created')
    .on('scores')
    .columns(['project_id', 'created_at'])
    .execute();
  // GET /runs?score=: the runs given a score of a name
  await db.schema
    .createIndex('scores_name')
    .on('scores')
    .columns(['project_id', 'name', 'run_id'])
    .execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('scores').ifExists().execute();
  await db.schema.alterTable('runs').dropColumn('scores').execute();
}
