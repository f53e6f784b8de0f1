import { sql, type Kysely } from 'kysely';
import { cachedStatement, type Db } from './database.js';
import type { Database } from './schema.js';

type Row = Record<string, unknown>;

// SQLite allows 32766 bound parameters per statement; runs have 40 columns
const PG_CHUNK = 400;

/**
 * Inserts rows or, when their key exists, replaces every other column: the write path's
 * one bulk write. Runs inside the caller's transaction on both dialects: on SQLite through
 * one reused prepared statement per row (the connection is the transaction's), on
 * PostgreSQL as multi-row statements.
 */
export async function upsertRows(
  db: Db,
  trx: Kysely<Database>,
  table: 'runs' | 'steps' | 'agents' | 'model_prices' | 'scores',
  rows: readonly object[],
  keys: readonly string[],
): Promise<void> {
  if (rows.length === 0) return;
  const columns = Object.keys(rows[0] as Row);
  const others = columns.filter((c) => !keys.includes(c));
  if (db.sqlite) {
    const stmt = cachedStatement(
      db.sqlite,
      `INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')}) ` +
        `ON CONFLICT (${keys.join(', ')}) DO UPDATE SET ${others.map((c) => `${c} = excluded.${c}`).join(', ')}`,
    );
    const values: unknown[] = new Array<unknown>(columns.length);
    for (const row of rows) {
      for (let i = 0; i < columns.length; i++) values[i] = (row as Row)[columns[i]!];
      stmt.run(values);
    }
    return;
  }
  for (let i = 0; i < rows.length; i += PG_CHUNK) {
    const chunk = rows.slice(i, i + PG_CHUNK);
    await trx
      .insertInto(table)
      // eslint-disable-next-line @typescript-eslint/no-explicit-any -- one generic upsert for both row types
      .values(chunk as any)
      .onConflict((oc) =>
        oc
          // eslint-disable-next-line @typescript-eslint/no-explicit-any -- column names come from the rows themselves
          .columns(keys as any)
          // eslint-disable-next-line @typescript-eslint/no-explicit-any -- every non-key column takes the new value
          .doUpdateSet(Object.fromEntries(others.map((c) => [c, sql.ref(`excluded.${c}`)])) as any),
      )
      .execute();
  }
}

/**
 * Writes what a unit of work changed: new rows are upserted; on SQLite a stored row that
 * changed gets an UPDATE of just its changed columns, so only the indexes over those columns
 * are rewritten (a heartbeat touches the lease index, not the thirteen indexes of `runs`).
 * PostgreSQL already skips unchanged index entries (HOT updates) and keeps multi-row upserts.
 */
export async function writeRows(
  db: Db,
  trx: Kysely<Database>,
  table: 'runs' | 'steps' | 'agents' | 'model_prices' | 'scores',
  tracked: Iterable<{ before: object | undefined; current: object | undefined }>,
  keys: readonly string[],
): Promise<void> {
  const inserts: object[] = [];
  const updates: { before: Row; current: Row }[] = [];
  for (const t of tracked) {
    if (!t.current || t.current === t.before) continue;
    if (t.before && db.sqlite) updates.push({ before: t.before as Row, current: t.current as Row });
    else inserts.push(t.current);
  }
  await upsertRows(db, trx, table, inserts, keys);
  if (updates.length === 0 || !db.sqlite) return;
  for (const { before, current } of updates) {
    const changed = Object.keys(current).filter(
      (c) => !keys.includes(c) && current[c] !== before[c],
    );
    if (changed.length === 0) continue;
    const stmt = cachedStatement(
      db.sqlite,
      `UPDATE ${table} SET ${changed.map((c) => `${c} = ?`).join(', ')} WHERE ${keys.map((k) => `${k} = ?`).join(' AND ')}`,
    );
    stmt.run([...changed.map((c) => current[c]), ...keys.map((k) => current[k])]);
  }
}

/**
 * The most a stored sum (tokens, nano-USD, milliseconds) reaches either way: within a signed
 * 64-bit column, exact as a double. Only made-up figures get there (9.2 billion USD).
 */
export const MAX_SUM = 9_200_000_000_000_000_000;

/** `n` held within ±`MAX_SUM`. */
export function saturated(n: number): number {
  return n > MAX_SUM ? MAX_SUM : n < -MAX_SUM ? -MAX_SUM : n;
}

/**
 * Inserts rows or, when their key exists, adds their `metrics` columns to the stored ones:
 * the rollup tables' write. Inside the caller's transaction; on SQLite through reused
 * prepared statements, on PostgreSQL as multi-row statements. Sums stop at ±`MAX_SUM`.
 */
export async function addRows(
  db: Db,
  trx: Kysely<Database>,
  table: keyof Database,
  rows: readonly Row[],
  keys: readonly string[],
  metrics: readonly string[],
): Promise<void> {
  if (rows.length === 0) return;
  const columns = [...keys, ...metrics];
  // sums stop at the column's bounds (far past any real total) rather than fail the write
  for (const row of rows)
    for (const m of metrics) {
      const v = row[m];
      if (typeof v === 'number') row[m] = saturated(v);
    }
  if (db.sqlite) {
    // past 64 bits SQLite goes to a real, which min/max bring back
    const stmt = cachedStatement(
      db.sqlite,
      `INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')}) ` +
        `ON CONFLICT (${keys.join(', ')}) DO UPDATE SET ${metrics
          .map((m) => `${m} = min(max(${m} + excluded.${m}, -${MAX_SUM}), ${MAX_SUM})`)
          .join(', ')}`,
    );
    const values: unknown[] = new Array<unknown>(columns.length);
    for (const row of rows) {
      for (let i = 0; i < columns.length; i++) values[i] = row[columns[i]!];
      stmt.run(values);
    }
    return;
  }
  for (let i = 0; i < rows.length; i += 500) {
    await trx
      .insertInto(table)
      // eslint-disable-next-line @typescript-eslint/no-explicit-any -- one upsert for every rollup table
      .values(rows.slice(i, i + 500) as any)
      .onConflict((oc) =>
        oc
          // eslint-disable-next-line @typescript-eslint/no-explicit-any -- key columns differ per table
          .columns(keys as any)
          .doUpdateSet(
            Object.fromEntries(
              metrics.map((m) => [
                m,
                // added in numeric: a bigint sum past the bound would fail
                sql`least(greatest(${sql.ref(`${table}.${m}`)}::numeric + ${sql.ref(`excluded.${m}`)}, ${sql.raw(`-${MAX_SUM}`)}), ${sql.raw(String(MAX_SUM))})::bigint`,
              ]),
              // eslint-disable-next-line @typescript-eslint/no-explicit-any -- metric columns differ per table
            ) as any,
          ),
      )
      .execute();
  }
}
