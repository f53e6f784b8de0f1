import { sql, type CreateTableBuilder, type Kysely } from 'kysely';

const DAY_MS = 86_400_000;

// Frozen in time: takes Kysely<any> and never imports app code.
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on the app's evolving types
export async function up(db: Kysely<any>): Promise<void> {
  // The same sums at more grains, so a stats answer reads (buckets x combinations) rows
  // whatever the number of agents: per agent and day, per project and hour, per project and day.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a builder of any table's columns
  const metrics = (t: CreateTableBuilder<any, any>) =>
    t
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('trigger', 'text', (c) => c.notNull())
      .addColumn('runs', 'bigint', (c) => c.notNull())
      .addColumn('duration_count', 'bigint', (c) => c.notNull())
      .addColumn('duration_sum', 'bigint', (c) => c.notNull())
      .addColumn('input_tokens', 'bigint', (c) => c.notNull())
      .addColumn('output_tokens', 'bigint', (c) => c.notNull())
      .addColumn('cost_nanos', 'bigint', (c) => c.notNull());

  await metrics(
    db.schema
      .createTable('run_rollups_daily')
      .addColumn('project_id', 'text', (c) => c.notNull())
      .addColumn('agent_id', 'text', (c) => c.notNull())
      .addColumn('day', 'bigint', (c) => c.notNull()),
  )
    .addPrimaryKeyConstraint('run_rollups_daily_pk', [
      'project_id',
      'day',
      'agent_id',
      'status',
      'trigger',
    ])
    .execute();
  // an agent's all-time totals (the `total` of its run list) read its days only
  await db.schema
    .createIndex('run_rollups_daily_agent')
    .on('run_rollups_daily')
    .columns(['project_id', 'agent_id', 'day'])
    .execute();
  await metrics(
    db.schema
      .createTable('project_rollups')
      .addColumn('project_id', 'text', (c) => c.notNull())
      .addColumn('hour', 'bigint', (c) => c.notNull()),
  )
    .addPrimaryKeyConstraint('project_rollups_pk', ['project_id', 'hour', 'status', 'trigger'])
    .execute();
  await metrics(
    db.schema
      .createTable('project_rollups_daily')
      .addColumn('project_id', 'text', (c) => c.notNull())
      .addColumn('day', 'bigint', (c) => c.notNull()),
  )
    .addPrimaryKeyConstraint('project_rollups_daily_pk', ['project_id', 'day', 'status', 'trigger'])
    .execute();

  await db.schema
    .createTable('duration_histogram_daily')
    .addColumn('project_id', 'text', (c) => c.notNull())
    .addColumn('agent_id', 'text', (c) => c.notNull())
    .addColumn('day', 'bigint', (c) => c.notNull())
    .addColumn('bin', 'integer', (c) => c.notNull())
    .addColumn('runs', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('duration_histogram_daily_pk', [
      'project_id',
      'day',
      'agent_id',
      'bin',
    ])
    .execute();
  // the per-agent percentiles read (agent, bin) groups in index order, without sorting
  await db.schema
    .createIndex('duration_histogram_daily_agent_bin')
    .on('duration_histogram_daily')
    .columns(['project_id', 'agent_id', 'bin', 'day', 'runs'])
    .execute();
  await db.schema
    .createTable('project_duration_histogram')
    .addColumn('project_id', 'text', (c) => c.notNull())
    .addColumn('hour', 'bigint', (c) => c.notNull())
    .addColumn('bin', 'integer', (c) => c.notNull())
    .addColumn('runs', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('project_duration_histogram_pk', ['project_id', 'hour', 'bin'])
    .execute();
  await db.schema
    .createTable('project_duration_histogram_daily')
    .addColumn('project_id', 'text', (c) => c.notNull())
    .addColumn('day', 'bigint', (c) => c.notNull())
    .addColumn('bin', 'integer', (c) => c.notNull())
    .addColumn('runs', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('project_duration_histogram_daily_pk', ['project_id', 'day', 'bin'])
    .execute();

  // backfill from the hourly per-agent tables
  const sums = sql.raw(
    'SUM(runs), SUM(duration_count), SUM(duration_sum), SUM(input_tokens), SUM(output_tokens), SUM(cost_nanos)',
  );
  const cols = sql.raw(
    'runs, duration_count, duration_sum, input_tokens, output_tokens, cost_nanos',
  );
  const day = sql.raw(`hour - (hour % ${DAY_MS})`);
  await sql`INSERT INTO run_rollups_daily (project_id, agent_id, day, status, trigger, ${cols})
    SELECT project_id, agent_id, ${day}, status, trigger, ${sums} FROM run_rollups
    GROUP BY project_id, agent_id, ${day}, status, trigger`.execute(db);
  await sql`INSERT INTO project_rollups (project_id, hour, status, trigger, ${cols})
    SELECT project_id, hour, status, trigger, ${sums} FROM run_rollups
    GROUP BY project_id, hour, status, trigger`.execute(db);
  await sql`INSERT INTO project_rollups_daily (project_id, day, status, trigger, ${cols})
    SELECT project_id, ${day}, status, trigger, ${sums} FROM run_rollups
    GROUP BY project_id, ${day}, status, trigger`.execute(db);
  await sql`INSERT INTO duration_histogram_daily (project_id, agent_id, day, bin, runs)
    SELECT project_id, agent_id, ${day}, bin, SUM(runs) FROM duration_histogram
    GROUP BY project_id, agent_id, ${day}, bin`.execute(db);
  await sql`INSERT INTO project_duration_histogram (project_id, hour, bin, runs)
    SELECT project_id, hour, bin, SUM(runs) FROM duration_histogram
    GROUP BY project_id, hour, bin`.execute(db);
  await sql`INSERT INTO project_duration_histogram_daily (project_id, day, bin, runs)
    SELECT project_id, ${day}, bin, SUM(runs) FROM duration_histogram
    GROUP BY project_id, ${day}, bin`.execute(db);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see up()
export async function down(db: Kysely<any>): Promise<void> {
  for (const table of [
    'project_duration_histogram_daily',
    'project_duration_histogram',
    'duration_histogram_daily',
    'project_rollups_daily',
    'project_rollups',
    'run_rollups_daily',
  ]) {
    await db.schema.dropTable(table).ifExists().execute();
  }
}
