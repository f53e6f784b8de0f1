import { CompiledQuery, type Compilable, type Kysely } from 'kysely';
import { cachedStatement, type Db, type DialectName } from './database.js';
import type { Database } from './schema.js';

/** Where an argument goes in a prepared query; see `prepared`. */
class Slot {
  constructor(readonly index: number) {}
}

/**
 * A query built and compiled once per dialect and then run with new argument values. The
 * write path's hot queries (a run by id, an agent's timeout) cost more in Kysely's builder
 * and compiler than in the database; this keeps Kysely's typed builder for writing them and
 * skips it when running them. On SQLite the query runs as a reused prepared statement on the
 * connection, which is the caller's transaction (as in `bulk.ts`).
 * @example
 *   const runById = prepared((db, $) =>
 *     db.selectFrom('runs').selectAll().where('project_id', '=', $(0)).where('id', '=', $(1)));
 *   const rows = await runById(db, trx, projectId, id);
 */
export function prepared<R>(
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a slot stands for any column's value
  build: (db: Kysely<Database>, $: (index: number) => any) => Compilable<R>,
): (db: Db, executor: Kysely<Database>, ...args: unknown[]) => Promise<R[]> {
  const compiled = new Map<DialectName, { sql: string; parameters: readonly unknown[] }>();
  return async (db, executor, ...args) => {
    let template = compiled.get(db.dialect);
    if (!template) {
      const query = build(db.kysely, (index) => new Slot(index)).compile();
      template = { sql: query.sql, parameters: query.parameters };
      compiled.set(db.dialect, template);
    }
    const parameters = template.parameters.map((p) => (p instanceof Slot ? args[p.index] : p));
    if (db.sqlite) {
      // the connection is the transaction's (one connection, one caller at a time), as in bulk.ts
      const stmt = cachedStatement(db.sqlite, template.sql);
      if (stmt.reader) return stmt.all(parameters) as R[];
      stmt.run(parameters);
      return [];
    }
    const result = await executor.executeQuery<R>(CompiledQuery.raw(template.sql, parameters));
    return result.rows;
  };
}
