import { PostgresAdapter, sql, type Kysely } from 'kysely';

// Frozen in time: takes Kysely<any> and never imports app code.

/**
 * `GET /runs?agent_id=...&sort=cost|duration|tokens`: one agent's runs in each order, read off
 * an index led by the project and the agent. With 0010's indexes alone, SQLite walked the
 * project's whole order to find a small agent's runs (about 1 s for an agent of 100 runs
 * among 400,000). The expressions are those the list orders by, as in 0010.
 */
const INDEXES: [name: string, expression: string, onPostgres?: string][] = [
  ['runs_agent_sort_cost', 'cost_nanos'],
  ['runs_agent_sort_duration', 'coalesce(duration_ms, -1)'],
  [
    'runs_agent_sort_tokens',
    '(input_tokens + output_tokens)',
    '(input_tokens::numeric + output_tokens)',
  ],
];

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on the app's evolving types
export async function up(db: Kysely<any>): Promise<void> {
  const pg = db.getExecutor().adapter instanceof PostgresAdapter;
  for (const [name, sqliteExpression, pgExpression] of INDEXES) {
    const expression = pg ? (pgExpression ?? sqliteExpression) : sqliteExpression;
    await sql`CREATE INDEX ${sql.id(name)} ON runs (project_id, agent_id, ${sql.raw(expression)}, id)`.execute(
      db,
    );
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see up()
export async function down(db: Kysely<any>): Promise<void> {
  for (const [name] of INDEXES) await db.schema.dropIndex(name).ifExists().execute();
}
