import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import SQLite from 'better-sqlite3';
import { Kysely, SqliteDialect, type Compilable } from 'kysely';
import type { Db } from './database.js';
import { FOLD, fold } from './dialect.js';
import type { Database } from './schema.js';

/**
 * The worker's code: one read-only connection to the database file, its statements kept
 * for reuse, rows sent back as arrays (cheaper to copy between threads than objects).
 * Plain JavaScript evaluated as the worker, so it runs the same from sources and from dist.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const SQLite = require(workerData.driver);
const db = new SQLite(workerData.path, { readonly: true, fileMustExist: true });
db.pragma('busy_timeout = 5000');
db.pragma('cache_size = -16384');
// as the main connection has it: text search beyond ASCII folds case with it (dialect.ts)
db.function(${JSON.stringify(FOLD)}, { deterministic: true }, ${fold.toString()});
const statements = new Map();
parentPort.on('message', ({ id, sql, parameters }) => {
  try {
    let stmt = statements.get(sql);
    if (!stmt) {
      stmt = db.prepare(sql);
      stmt.raw(true);
      if (statements.size >= 200) statements.delete(statements.keys().next().value);
      statements.set(sql, stmt);
    }
    const rows = stmt.all(parameters);
    parentPort.postMessage({ id, columns: stmt.columns().map((c) => c.name), rows });
  } catch (err) {
    parentPort.postMessage({ id, error: { message: String(err && err.message), code: err && err.code } });
  }
});
`;

interface Reply {
  id: number;
  columns?: string[];
  rows?: unknown[][];
  error?: { message: string; code?: string };
}

interface Reader {
  worker: Worker;
  pending: Map<number, { resolve: (rows: unknown[]) => void; reject: (err: Error) => void }>;
}

/**
 * Read-only connections to a SQLite file, each in its own worker thread, for the reads that
 * take milliseconds (stats over many days): they run beside the event loop, not on it, so
 * recording, live updates and small reads go on meanwhile, and a request's independent
 * queries run in parallel. WAL mode lets them read while the writer commits; they see
 * committed data only. Started on first use.
 */
export class ReaderPool {
  private readers: Reader[] = [];
  private nextId = 0;
  private closed = false;

  constructor(
    private readonly path: string,
    private readonly size = Math.max(1, Math.min(2, availableParallelism())),
  ) {}

  /** The rows of one query, as objects keyed by column name. */
  all<R>(sql: string, parameters: readonly unknown[]): Promise<R[]> {
    if (this.closed) return Promise.reject(new Error('the database is closed'));
    const reader = this.pick();
    const id = this.nextId++;
    return new Promise<unknown[]>((resolve, reject) => {
      // a reader keeps the process alive while it owes an answer, and only then
      if (reader.pending.size === 0) reader.worker.ref();
      reader.pending.set(id, { resolve, reject });
      reader.worker.postMessage({ id, sql, parameters });
    }) as Promise<R[]>;
  }

  async close(): Promise<void> {
    this.closed = true;
    const readers = this.readers;
    this.readers = [];
    const closed = new Error('the database is closed');
    for (const reader of readers) {
      for (const waiting of reader.pending.values()) waiting.reject(closed);
      reader.pending.clear();
    }
    await Promise.all(readers.map((r) => r.worker.terminate()));
  }

  /** The reader with the fewest queries waiting, starting one while fewer than `size` run. */
  private pick(): Reader {
    const idle = this.readers.find((r) => r.pending.size === 0);
    if (idle) return idle;
    if (this.readers.length < this.size) return this.start();
    return this.readers.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
  }

  private start(): Reader {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      // a reader holds rows only until it sends them: a small young generation keeps its
      // memory small (the default lets each thread grow by tens of MB under large reads)
      resourceLimits: { maxYoungGenerationSizeMb: 8 },
      workerData: {
        path: this.path,
        driver: createRequire(import.meta.url).resolve('better-sqlite3'),
      },
    });
    const reader: Reader = { worker, pending: new Map() };
    worker.on('message', (reply: Reply) => {
      const waiting = reader.pending.get(reply.id);
      if (!waiting) return;
      reader.pending.delete(reply.id);
      if (reader.pending.size === 0) reader.worker.unref();
      if (reply.error) {
        const err = new Error(reply.error.message) as Error & { code?: string };
        if (reply.error.code) err.code = reply.error.code;
        waiting.reject(err);
        return;
      }
      const columns = reply.columns!;
      waiting.resolve(reply.rows!.map((row) => toObject(columns, row)));
    });
    const fail = (err: Error) => {
      for (const waiting of reader.pending.values()) waiting.reject(err);
      reader.pending.clear();
      this.readers = this.readers.filter((r) => r !== reader);
    };
    worker.on('error', fail);
    worker.on('exit', (code) => {
      if (!this.closed) fail(new Error(`a database reader stopped (exit code ${code})`));
    });
    this.readers.push(reader);
    return reader;
  }
}

function toObject(columns: readonly string[], row: readonly unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i < columns.length; i++) out[columns[i]!] = row[i];
  return out;
}

/**
 * Runs a read-only query off the event loop when the database has readers (a SQLite file),
 * else through Kysely as usual (PostgreSQL, in-memory SQLite). For reads that may take
 * milliseconds; a read of a few rows is cheaper on the connection itself.
 * @example const rows = await readOffLoop(db, db.kysely.selectFrom('runs').select('id'))
 */
export async function readOffLoop<R>(db: Db, query: Compilable<R>): Promise<R[]> {
  const compiled = query.compile();
  if (db.readers) return db.readers.all<R>(compiled.sql, compiled.parameters);
  return (await db.kysely.executeQuery(compiled)).rows;
}

/**
 * Runs `read` on one snapshot of the database, as a server may be writing meanwhile: its
 * queries see no write committed after the first of them. PostgreSQL: a repeatable-read
 * transaction; a SQLite file: a read transaction on a read-only connection of its own, so
 * the server's writes go on beside it (the main connection's transactions take the write
 * lock). An in-memory database has no other writer to be isolated from.
 * @example await readSnapshot(db, (snap) => exportFrom(snap))
 */
export async function readSnapshot<T>(db: Db, read: (snapshot: Db) => Promise<T>): Promise<T> {
  if (db.dialect === 'postgres')
    return db.kysely
      .transaction()
      .setIsolationLevel('repeatable read')
      .execute((trx) => read({ ...db, kysely: trx }));
  if (!db.sqlite || db.sqlite.memory) return read(db);
  const conn = new SQLite(db.sqlite.name, { readonly: true, fileMustExist: true });
  conn.pragma('busy_timeout = 5000');
  conn.function(FOLD, { deterministic: true }, fold);
  const kysely = new Kysely<Database>({ dialect: new SqliteDialect({ database: conn }) });
  try {
    // deferred: the snapshot is taken at the first read
    conn.exec('BEGIN');
    const { readers: _readers, ...rest } = db;
    return await read({ ...rest, kysely, sqlite: conn });
  } finally {
    if (conn.inTransaction) conn.exec('COMMIT');
    await kysely.destroy();
  }
}
