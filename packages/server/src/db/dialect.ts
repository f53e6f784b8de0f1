import { isJsonNumber, type RunStatus } from '@runlog/core';
import {
  sql,
  type AliasedRawBuilder,
  type Expression,
  type Kysely,
  type RawBuilder,
  type SqlBool,
} from 'kysely';
import type { Db } from './database.js';

/**
 * PostgreSQL: takes the transaction-scoped advisory locks of these keys (text, no NUL), in
 * one statement and one fixed order (by hash), waiting for each: two transactions locking
 * overlapping sets never wait on each other in opposite orders.
 * @example await advisoryLocks(trx, ['default/run-1', 'default/run-2'])
 */
export async function advisoryLocks<DB>(trx: Kysely<DB>, keys: Iterable<string>): Promise<void> {
  const list = [...keys];
  if (list.length === 0) return;
  await sql`SELECT pg_advisory_xact_lock(h) FROM (SELECT DISTINCT ${lockId(sql.ref('k'))} AS h FROM unnest(${list}::text[]) AS k ORDER BY h) AS locks`.execute(
    trx,
  );
}

/**
 * PostgreSQL: the advisory lock number of `key` (text) in the schema in use. Advisory locks
 * are the whole database's, so the schema is part of the key: instances on other schemas of
 * one database (`?schema=`) never wait on each other's runs, agents or threads, as they
 * never hear each other's NOTIFYs (`channelName`).
 * @example sql`SELECT pg_try_advisory_xact_lock(${lockId(sql.ref('k'))}) FROM unnest(${keys}::text[]) AS k`
 */
export function lockId(key: Expression<unknown> | RawBuilder<unknown>): RawBuilder<string> {
  return sql<string>`hashtextextended(coalesce(current_schema(), '') || '/' || ${key}, 0)`;
}

/**
 * Case-insensitive substring match: ILIKE on PostgreSQL; LIKE on SQLite, whose case folding
 * is ASCII's only, so a needle beyond ASCII ("äö") compares both sides folded by
 * `runlog_fold` (JavaScript's toLowerCase, registered on every SQLite connection) instead.
 */
export function containsText(
  db: Db,
  column: Expression<unknown>,
  needle: string,
): RawBuilder<SqlBool> {
  const pattern = `%${needle.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
  if (db.dialect === 'postgres') return sql<SqlBool>`${column} ILIKE ${pattern} ESCAPE '\\'`;
  // eslint-disable-next-line no-control-regex -- the ASCII range is the point
  if (/^[\u0000-\u007f]*$/.test(needle)) return sql<SqlBool>`${column} LIKE ${pattern} ESCAPE '\\'`;
  return sql<SqlBool>`${sql.raw(FOLD)}(${column}) LIKE ${pattern.toLowerCase()} ESCAPE '\\'`;
}

/** The SQLite function that lower-cases text as JavaScript does (all of Unicode). */
export const FOLD = 'runlog_fold';

/** `FOLD` itself: null stays null. */
export function fold(text: unknown): string | null {
  return text === null || text === undefined ? null : String(text).toLowerCase();
}

/**
 * A JSON text column as jsonb on PostgreSQL. jsonb refuses the escape `\u0000` (a NUL a
 * payload may carry, which JSON text keeps as those six characters) and a lone surrogate's
 * (`\ud800`, which is all JSON.stringify writes a surrogate as), so one such run would fail
 * every search of its project and the agents list: both are read as U+FFFD instead, an escape
 * of the same shape, so the text stays valid JSON whatever precedes it.
 */
function asJsonb(column: Expression<unknown>): RawBuilder<unknown> {
  // text without any `\u` escape (most) is cast as it is: the replacements cost a search by
  // regular expression of every row's text, 2-3 µs a row of a scan
  return sql`(case when strpos(${column}, '\\u') = 0 then (${column})::jsonb else (regexp_replace(replace(${column}, '\\u0000', '\\ufffd'), '\\\\u[dD][89a-fA-F][0-9a-fA-F]{2}', '\\\\ufffd', 'g'))::jsonb end)`;
}

/** The text of one top-level field of a JSON-object text column (null when absent). */
export function jsonField(db: Db, column: Expression<unknown>, field: string): RawBuilder<string> {
  return db.dialect === 'postgres'
    ? sql<string>`(${asJsonb(column)} ->> ${field})`
    : sql<string>`json_extract(${column}, ${`$.${field}`})`;
}

/** `jsonField` when the field holds a string; null for a number, an object or nothing. */
export function jsonStringField(
  db: Db,
  column: Expression<unknown>,
  field: string,
): RawBuilder<string | null> {
  return db.dialect === 'postgres'
    ? sql`(case when jsonb_typeof(${asJsonb(column)} -> ${field}) = 'string' then ${asJsonb(column)} ->> ${field} end)`
    : sql`(case when json_type(${column}, ${`$.${field}`}) = 'text' then json_extract(${column}, ${`$.${field}`}) end)`;
}

/** Whether a JSON-array text column holds `value` (tags). */
export function jsonArrayContains(
  db: Db,
  column: Expression<unknown>,
  value: string,
): RawBuilder<SqlBool> {
  return db.dialect === 'postgres'
    ? sql<SqlBool>`${asJsonb(column)} ? ${value}`
    : sql<SqlBool>`EXISTS (SELECT 1 FROM json_each(${column}) WHERE json_each.value = ${value})`;
}

/**
 * Whether a JSON-object text column (metadata) holds `key` with `value`: a string equal to
 * it, a number equal to it read as a number (`42` matches 42 and 42.0, exactly on both
 * databases), or the boolean it names (`true`, `false`). An object, an array or null never
 * matches. The key's JSON text, and the value's where it can only be written one way (text,
 * a boolean), are looked for first: a scan parses only the rows that may match.
 */
export function metadataHolds(
  db: Db,
  column: Expression<unknown>,
  key: string,
  value: string,
): RawBuilder<SqlBool> {
  const number = isJsonNumber(value);
  const bool = value === 'true' || value === 'false';
  const has = (text: string) =>
    db.dialect === 'postgres'
      ? sql<SqlBool>`strpos(${column}, ${text}) > 0`
      : sql<SqlBool>`instr(${column}, ${text}) > 0`;
  const written = number
    ? has(JSON.stringify(key))
    : sql<SqlBool>`${has(JSON.stringify(key))} AND (${sql.join(
        [has(JSON.stringify(value)), ...(bool ? [has(value)] : [])],
        sql` OR `,
      )})`;
  if (db.dialect === 'postgres') {
    const forms = [
      sql`to_jsonb(${value}::text)`,
      ...(number ? [sql`to_jsonb(cast(${value} as numeric))`] : []),
      ...(bool ? [sql`to_jsonb(${value}::boolean)`] : []),
    ];
    return sql<SqlBool>`(${written} AND (${asJsonb(column)} -> ${key}::text) IN (${sql.join(forms)}))`;
  }
  // an integer as a 64-bit integer (exact past 2^53), any other number as a double
  const asNumber =
    /^-?\d+$/.test(value) && BigInt.asIntN(64, BigInt(value)) === BigInt(value)
      ? BigInt(value)
      : Number(value);
  const forms = [
    sql`(json_each.type = 'text' AND json_each.value = ${value})`,
    ...(number
      ? [sql`(json_each.type IN ('integer', 'real') AND json_each.value = ${asNumber})`]
      : []),
    ...(bool ? [sql`json_each.type = ${value}`] : []),
  ];
  return sql<SqlBool>`(${written} AND EXISTS (SELECT 1 FROM json_each(${column}) WHERE json_each.key = ${key} AND (${sql.join(forms, sql` OR `)})))`;
}

/**
 * `status = 'a'` or `status IN ('a', 'b')` with the statuses as literals: the partial indexes
 * on runs (queue, leases, deadlines) are only used when a query names their statuses as
 * literally as the index does, not as bound parameters (SQLite).
 */
export function statusIn(...statuses: RunStatus[]): RawBuilder<SqlBool> {
  const list = statuses.map((s) => sql.lit(s));
  return statuses.length === 1
    ? sql<SqlBool>`status = ${list[0]}`
    : sql<SqlBool>`status IN (${sql.join(list)})`;
}

/**
 * Steps named by `(run_id, id)`, for PostgreSQL: per run, `run_id = $r AND id = ANY($ids)`,
 * which reads each step off the primary key. As a list of `(run_id, id)` pairs PostgreSQL
 * read every step of the run and compared each with every pair: a batch of 1,000 steps into
 * a run of 20,000 took 100 ms for that read alone, growing with the run.
 */
export function stepKeysIn(keys: readonly { run_id: string; id: string }[]): RawBuilder<SqlBool> {
  const byRun = new Map<string, string[]>();
  for (const k of keys) {
    const ids = byRun.get(k.run_id);
    if (ids) ids.push(k.id);
    else byRun.set(k.run_id, [k.id]);
  }
  const parts = [...byRun].map(
    ([runId, ids]) => sql<SqlBool>`(run_id = ${runId} AND id = ANY(${ids}::text[]))`,
  );
  return parts.length === 0 ? sql<SqlBool>`false` : sql<SqlBool>`(${sql.join(parts, sql` OR `)})`;
}

/**
 * The sum of a rollup column, `as` itself: SQLite's sum() fails past 64 bits (sums are held
 * at 9.2e18 each) where PostgreSQL's gives a numeric; SQLite's total() is a double, exact as
 * far as any real sum goes.
 */
export function sumOf<C extends string>(db: Db, column: C): AliasedRawBuilder<number | string, C> {
  return (
    db.dialect === 'sqlite'
      ? sql<number | string>`total(${sql.ref(column)})`
      : sql<number | string>`sum(${sql.ref(column)})`
  ).as(column);
}
