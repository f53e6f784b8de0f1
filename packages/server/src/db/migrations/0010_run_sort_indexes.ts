import { PostgresAdapter, sql, type Kysely } from 'kysely';

// Frozen in time: takes Kysely<any> and never imports app code.

/**
 * `GET /runs?sort=cost|duration|tokens`: each order read off an index, led by the project,
 * with the id after the value for the ties, so the first page of a million runs reads its
 * rows and no more. The expressions are those the list orders by.
 */
const INDEXES: [name: string, expression: string, onPostgres?: string][] = [
  ['runs_sort_cost', 'cost_nanos'],
  ['runs_sort_duration', 'coalesce(duration_ms, -1)'],
  // summed as numeric on PostgreSQL: two columns each held at 9.2e18 would overflow a
  // bigint and fail the run's write (SQLite goes to a real instead)
  ['runs_sort_tokens', '(input_tokens + output_tokens)', '(input_tokens::numeric + output_tokens)'],
];

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on the app's evolving types
export async function up(db: Kysely<any>): Promise<void> {
  const pg = db.getExecutor().adapter instanceof PostgresAdapter;
  for (const [name, sqliteExpression, pgExpression] of INDEXES) {
    const expression = pg ? (pgExpression ?? sqliteExpression) : sqliteExpression;
    await sql`CREATE INDEX ${sql.id(name)} ON runs (project_id, ${sql.raw(expression)}, id)`.execute(
      db,
    );
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see up()
export async function down(db: Kysely<any>): Promise<void> {
  for (const [name] of INDEXES) await db.schema.dropIndex(name).ifExists().execute();
}
