import { PostgresAdapter, sql, type CreateTableBuilder, type Kysely } from 'kysely';

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
/** The most a stored sum reaches (as the app's MAX_SUM): within a signed 64-bit column. */
const MAX_SUM = '9200000000000000000';

// Frozen in time: takes Kysely<any> and never imports app code.
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on the app's evolving types
export async function up(db: Kysely<any>): Promise<void> {
  const pg = db.getExecutor().adapter instanceof PostgresAdapter;
  // A run's usage per model, `{"<model>": [calls, input_tokens, output_tokens, cost_nanos]}`
  // ('' for steps without a model): the model rollups move with the run's own rollups.
  await db.schema
    .alterTable('runs')
    .addColumn('models', 'text', (c) => c.notNull().defaultTo('{}'))
    .execute();

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a builder of any table's columns
  const metrics = (t: CreateTableBuilder<any, any>) =>
    t
      .addColumn('agent_id', 'text', (c) => c.notNull())
      .addColumn('model', 'text', (c) => c.notNull())
      .addColumn('runs', 'bigint', (c) => c.notNull())
      .addColumn('calls', 'bigint', (c) => c.notNull())
      .addColumn('input_tokens', 'bigint', (c) => c.notNull())
      .addColumn('output_tokens', 'bigint', (c) => c.notNull())
      .addColumn('cost_nanos', 'bigint', (c) => c.notNull());
  // led by the time, not the agent: stats of all agents read a range of hours or days
  await metrics(
    db.schema
      .createTable('model_rollups')
      .addColumn('project_id', 'text', (c) => c.notNull())
      .addColumn('hour', 'bigint', (c) => c.notNull()),
  )
    .addPrimaryKeyConstraint('model_rollups_pk', ['project_id', 'hour', 'agent_id', 'model'])
    .execute();
  await metrics(
    db.schema
      .createTable('model_rollups_daily')
      .addColumn('project_id', 'text', (c) => c.notNull())
      .addColumn('day', 'bigint', (c) => c.notNull()),
  )
    .addPrimaryKeyConstraint('model_rollups_daily_pk', ['project_id', 'day', 'agent_id', 'model'])
    .execute();

  // backfill from the steps: which count, and what each adds (as the app's stepModelUsage)
  const counted = sql.raw(
    `(s.type = 'llm' OR s.model IS NOT NULL OR COALESCE(s.input_tokens, 0) <> 0 OR COALESCE(s.output_tokens, 0) <> 0 OR COALESCE(s.cost_nanos, 0) <> 0)`,
  );
  const calls = sql.raw(`CASE WHEN s.type = 'llm' OR s.model IS NOT NULL THEN 1 ELSE 0 END`);
  // sums held within a 64-bit column: SQLite's sum() fails past it, PostgreSQL's is a numeric
  const sum = (expr: string) =>
    pg
      ? sql.raw(`LEAST(SUM(${expr}), ${MAX_SUM})::bigint`)
      : sql.raw(`CAST(MIN(TOTAL(${expr}), ${MAX_SUM}) AS INTEGER)`);
  const perRunModel = sql`SELECT s.project_id, s.run_id, COALESCE(s.model, '') AS m,
      SUM(${calls}) AS calls, ${sum('COALESCE(s.input_tokens, 0)')} AS it,
      ${sum('COALESCE(s.output_tokens, 0)')} AS ot, ${sum('COALESCE(s.cost_nanos, 0)')} AS cost
    FROM steps s WHERE ${counted}
    GROUP BY s.project_id, s.run_id, COALESCE(s.model, '')`;
  if (pg) {
    await sql`UPDATE runs r SET models = u.models FROM (
        SELECT project_id, run_id,
          jsonb_object_agg(m, jsonb_build_array(calls, it, ot, cost))::text AS models
        FROM (${perRunModel}) x GROUP BY project_id, run_id) u
      WHERE r.project_id = u.project_id AND r.id = u.run_id`.execute(db);
  } else {
    await sql`CREATE TEMP TABLE run_models AS ${perRunModel}`.execute(db);
    // each run looks up its own rows: without an index every run read the whole table, and
    // 10,000 runs took 25 s, 50,000 over 10 minutes (a server's start hung on it)
    await sql`CREATE INDEX run_models_run ON run_models (project_id, run_id)`.execute(db);
    await sql`UPDATE runs SET models = (
        SELECT json_group_object(m, json_array(calls, it, ot, cost)) FROM run_models x
        WHERE x.project_id = runs.project_id AND x.run_id = runs.id)
      WHERE EXISTS (SELECT 1 FROM run_models x
        WHERE x.project_id = runs.project_id AND x.run_id = runs.id)`.execute(db);
    await sql`DROP TABLE run_models`.execute(db);
  }
  const hour = sql.raw(`r.sort_at - (r.sort_at % ${HOUR_MS})`);
  await sql`INSERT INTO model_rollups
      (project_id, hour, agent_id, model, runs, calls, input_tokens, output_tokens, cost_nanos)
    SELECT r.project_id, ${hour}, r.agent_id, x.m, COUNT(*), SUM(x.calls),
      ${sum('x.it')}, ${sum('x.ot')}, ${sum('x.cost')}
    FROM (${perRunModel}) x JOIN runs r ON r.project_id = x.project_id AND r.id = x.run_id
    GROUP BY r.project_id, ${hour}, r.agent_id, x.m`.execute(db);
  const day = sql.raw(`hour - (hour % ${DAY_MS})`);
  const daySum = (c: string) =>
    sql.raw(
      pg ? `LEAST(SUM(${c}), ${MAX_SUM})::bigint` : `CAST(MIN(TOTAL(${c}), ${MAX_SUM}) AS INTEGER)`,
    );
  await sql`INSERT INTO model_rollups_daily
      (project_id, day, agent_id, model, runs, calls, input_tokens, output_tokens, cost_nanos)
    SELECT project_id, ${day}, agent_id, model, SUM(runs), SUM(calls),
      ${daySum('input_tokens')}, ${daySum('output_tokens')}, ${daySum('cost_nanos')}
    FROM model_rollups GROUP BY project_id, ${day}, agent_id, model`.execute(db);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('model_rollups_daily').ifExists().execute();
  await db.schema.dropTable('model_rollups').ifExists().execute();
  await db.schema.alterTable('runs').dropColumn('models').execute();
}
