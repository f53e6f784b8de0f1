import { PostgresAdapter, sql, type Kysely } from 'kysely';

// Frozen in time: takes Kysely<any> and never imports app code.

/**
 * The id columns lists and cursors order by. On PostgreSQL they followed the database's
 * collation, so on an `en-US` database runs tied on their list time came in another order
 * than on SQLite (which compares bytes) and than after an export and import. "C" compares
 * bytes too: both databases answer alike whatever the database's locale. Text searched
 * case-insensitively (input, output, error) keeps the database's collation.
 */
const ID_COLUMNS: [table: string, columns: string[]][] = [
  ['runs', ['id', 'agent_id']],
  ['steps', ['run_id', 'id']],
  ['agents', ['id']],
  ['model_prices', ['model']],
];

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on the app's evolving types
export async function up(db: Kysely<any>): Promise<void> {
  await setCollation(db, 'C');
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see up()
export async function down(db: Kysely<any>): Promise<void> {
  await setCollation(db, 'default');
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see up()
async function setCollation(db: Kysely<any>, collation: 'C' | 'default'): Promise<void> {
  // SQLite's text comparison is by bytes already (BINARY)
  if (!(db.getExecutor().adapter instanceof PostgresAdapter)) return;
  for (const [table, columns] of ID_COLUMNS) {
    // the same type in another collation: the table is not rewritten, its indexes are rebuilt
    const changes = columns.map(
      (c) => sql`ALTER COLUMN ${sql.ref(c)} TYPE text COLLATE ${sql.id(collation)}`,
    );
    await sql`ALTER TABLE ${sql.table(table)} ${sql.join(changes)}`.execute(db);
  }
}
