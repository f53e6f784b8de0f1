import { closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import {
  CompiledQuery,
  Kysely,
  type DatabaseConnection,
  type DialectAdapter,
  type Driver,
  PostgresDialect,
  SqliteAdapter,
  SqliteDialect,
  sql,
  type SqliteDatabase,
  type SqliteStatement,
} from 'kysely';
import type { Database } from './schema.js';
import { PreparingPool } from './pg-prepared.js';
import { ReaderPool } from './readers.js';
import { FOLD, fold } from './dialect.js';

export type DialectName = 'sqlite' | 'postgres';

/** An open database: the Kysely handle plus what differs between the two dialects. */
export interface Db {
  kysely: Kysely<Database>;
  dialect: DialectName;
  /** The PostgreSQL pool (for LISTEN/NOTIFY); undefined on SQLite. */
  pgPool?: pg.Pool;
  /** The PostgreSQL schema in use, when the URL picked one with `?schema=`. */
  pgSchema?: string;
  /** The better-sqlite3 handle; undefined on PostgreSQL. */
  sqlite?: SQLite.Database;
  /** Read-only connections in worker threads for long reads (`readOffLoop`); a SQLite file only. */
  readers?: ReaderPool;
  /**
   * Resolves once every transaction committed before the call is durable on disk. On
   * PostgreSQL a commit already is; on SQLite the WAL is fsynced here, off the event loop
   * (libuv's thread pool), so a commit never blocks request handling for a disk flush.
   */
  durable(): Promise<void>;
  close(): Promise<void>;
}

export interface OpenOptions {
  /**
   * SQLite `synchronous` pragma. NORMAL (default): commits do not flush; `durable()` flushes
   * the WAL off the event loop before the write path acknowledges. FULL: every commit
   * flushes, on the event loop.
   */
  sqliteSynchronous?: 'FULL' | 'NORMAL';
  poolSize?: number;
  /**
   * PostgreSQL with `?schema=`: create the schema when it does not exist (default). Unset, a
   * missing schema is an error, as a missing SQLite file is for the CLI's admin commands.
   */
  createSchema?: boolean;
}

export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//i.test(url);
}

const INT8_OID = 20;
const NUMERIC_OID = 1700;

/**
 * Opens `url`: a `postgres://` URL (optionally `?schema=name` to use and create a
 * schema) or a SQLite file path (`:memory:` for a private in-memory database).
 */
export async function openDatabase(url: string, options: OpenOptions = {}): Promise<Db> {
  if (isPostgresUrl(url)) return openPostgres(url, options);
  return openSqlite(url, options);
}

/**
 * Makes a new SQLite file (and the folders it needs) its owner's only: runs hold prompts,
 * users' data and tool output, and the file the key hashes; with the usual umask it was
 * readable by every user of the machine. SQLite gives its -wal and -shm files the mode of the
 * database. A file or folder that is already there keeps its mode.
 */
function createPrivately(file: string): void {
  makeFolders(dirname(file));
  try {
    closeSync(openSync(file, 'wx', 0o600));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}

/**
 * `mkdir -p` with mode 0700, a folder at a time. Node's recursive mkdir loops forever where
 * making a folder answers ENOENT under one that exists (`--db /proc/nope/x.db` hung the start
 * without a word); here that error reaches the caller.
 */
function makeFolders(dir: string): void {
  const missing: string[] = [];
  let found = dir;
  for (; !existsSync(found) && dirname(found) !== found; found = dirname(found))
    missing.unshift(found);
  if (!statSync(found).isDirectory())
    throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${found}'`), {
      code: 'ENOTDIR',
      path: found,
      syscall: 'mkdir',
    });
  for (const d of missing) {
    try {
      mkdirSync(d, { mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}

/**
 * A warning when every user of the machine may read the SQLite file at `path`: versions
 * before the file was made 0600 created it so (with the usual umask), and an upgrade keeps a
 * file's mode. Undefined for a file others may not read, or one that is not there.
 */
export function othersMayRead(path: string): string | undefined {
  let mode: number;
  try {
    mode = statSync(path).mode & 0o777;
  } catch {
    return undefined;
  }
  if ((mode & 0o004) === 0) return undefined;
  return (
    `${path} is readable by every user of this machine (mode ${mode.toString(8)}): it holds ` +
    `run inputs and outputs and the API key hashes; make it the owner's only with: chmod 600 ${path}`
  );
}

/** The size a SQLite WAL file is cut back to after a checkpoint (64 MiB). */
export const WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024;

function openSqlite(path: string, options: OpenOptions): Db {
  const memory = path === ':memory:' || path === '';
  if (!memory) createPrivately(resolve(path));
  const sqlite = new SQLite(path);
  sqlite.pragma('journal_mode = WAL');
  // a WAL that grew while a long read held back its checkpoints (a `runlog export` beside a
  // busy server: 130 MB a minute at a modest rate) is cut back once checkpointed; without a
  // limit the file kept its largest size for as long as the server ran
  sqlite.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`);
  sqlite.pragma(`synchronous = ${options.sqliteSynchronous ?? 'NORMAL'}`);
  // no sleeping on the event loop for another process's lock: ImmediateSqliteDialect waits
  sqlite.pragma('busy_timeout = 0');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('cache_size = -65536');
  // what PRAGMA optimize reads of each index: enough for good plans, milliseconds at any size
  sqlite.pragma('analysis_limit = 1000');
  sqlite.function(FOLD, { deterministic: true }, fold);
  const kysely = new Kysely<Database>({
    dialect: new ImmediateSqliteDialect(sqlite, { database: cachingStatements(sqlite) }),
  });
  const wal = memory ? undefined : new WalSync(`${resolve(path)}-wal`);
  const readers = memory ? undefined : new ReaderPool(resolve(path));
  return {
    kysely,
    dialect: 'sqlite',
    sqlite,
    ...(readers ? { readers } : {}),
    durable: () => (wal ? wal.sync() : Promise.resolve()),
    close: async () => {
      await readers?.close();
      await wal?.close();
      await kysely.destroy();
    },
  };
}

/**
 * Refreshes SQLite's query planner statistics (`sqlite_stat1`) where tables grew or shrank
 * enough to need it (`PRAGMA optimize`, reading at most `analysis_limit` rows of each index):
 * `atOpen` checks every table, as SQLite advises for a connection that lives long.
 */
export async function optimizeSqlite(db: Db, atOpen = false): Promise<void> {
  if (db.dialect !== 'sqlite') return;
  await sql.raw(atOpen ? 'PRAGMA optimize=0x10002' : 'PRAGMA optimize').execute(db.kysely);
}

/** How long a SQLite statement waits for another process's write lock before SQLITE_BUSY. */
const SQLITE_BUSY_TIMEOUT_MS = 5000;
/** Longest pause between two tries of a statement that met another process's write lock. */
const SQLITE_BUSY_PAUSE_MAX_MS = 50;

/**
 * SQLite whose transactions begin IMMEDIATE: they take the write lock first, waiting for it
 * (up to `SQLITE_BUSY_TIMEOUT_MS`) while another process (the CLI beside a running server)
 * holds it. Every transaction here writes; one begun deferred reads first, and when another
 * process commits meanwhile, its first write fails at once with SQLITE_BUSY instead of
 * waiting.
 *
 * The wait is tries with pauses between them, not SQLite's busy timeout (the connection's is
 * 0): that one sleeps inside the statement, and better-sqlite3 runs statements on the event
 * loop, so a lock held by another process (a sqlite3 shell, a backup, a long CLI command)
 * stopped the whole server, health checks, reads and WebSockets, for 5 s a statement.
 * Only a statement outside a transaction is tried again (`BEGIN IMMEDIATE`, or one
 * autocommit statement): it failed whole and changed nothing.
 *
 * A transaction SQLite already rolled back itself (a full disk, an I/O error) is not rolled
 * back again: that fails ("no transaction is active") and its error would replace the one
 * that says why, turning a 503 into a 500.
 */
class ImmediateSqliteDialect extends SqliteDialect {
  constructor(
    private readonly sqlite: SQLite.Database,
    config: ConstructorParameters<typeof SqliteDialect>[0],
  ) {
    super(config);
  }

  /**
   * SQLite's schema changes are transactional, but Kysely's adapter says they are not, so
   * its migrator ran each statement on its own: a start stopped during an upgrade (a kill,
   * a crash, a full disk) left a migration half done and unrecorded, and every later start
   * failed on what it had done ("duplicate column name"). Migrations now run and are
   * recorded in one transaction, as on PostgreSQL.
   */
  override createAdapter(): DialectAdapter {
    return new TransactionalDdlSqliteAdapter();
  }

  override createDriver(): Driver {
    const driver = super.createDriver();
    const rollback = driver.rollbackTransaction.bind(driver);
    const acquire = driver.acquireConnection.bind(driver);
    const release = driver.releaseConnection.bind(driver);
    // each connection's own executeQuery, before waitForLock wraps it
    const unwrapped = new WeakMap<DatabaseConnection, DatabaseConnection['executeQuery']>();
    driver.acquireConnection = async () => {
      const connection = await acquire();
      if (!unwrapped.has(connection)) {
        const execute = connection.executeQuery.bind(connection);
        unwrapped.set(connection, execute);
        connection.executeQuery = ((query: CompiledQuery) =>
          this.waitForLock(() => execute(query))) as typeof connection.executeQuery;
      }
      return connection;
    };
    // Kysely's SQLite driver has one connection, taken by one caller at a time: a transaction
    // waiting for another process's write lock while holding it held up every read too (the
    // dashboard, /readyz) for as long as the lock was held. It waits with the connection given
    // back, and takes it again for each try.
    driver.beginTransaction = async (connection: DatabaseConnection) => {
      // the connection came through acquireConnection above, which kept its own executeQuery
      const begin = unwrapped.get(connection)!;
      await this.waitForLock(
        () => begin(CompiledQuery.raw('begin immediate')),
        async (pause) => {
          await release(connection);
          await delay(pause);
          await acquire();
        },
      );
    };
    driver.rollbackTransaction = async (connection: DatabaseConnection) => {
      if (this.sqlite.inTransaction) await rollback(connection);
    };
    return driver;
  }

  /**
   * Runs `statement`, again after a pause while another process holds the write lock;
   * `wait` pauses (by default it sleeps).
   */
  private async waitForLock<T>(
    statement: () => Promise<T>,
    wait: (pause: number) => Promise<unknown> = delay,
  ): Promise<T> {
    // the clock is read only once a statement met the lock: every query passes here, and
    // reading it on each would cost them all (and change what a caller's next Date.now() is)
    let until: number | undefined;
    for (let pause = 1; ; pause = Math.min(pause * 2, SQLITE_BUSY_PAUSE_MAX_MS)) {
      try {
        return await statement();
      } catch (err) {
        const busy = /^SQLITE_BUSY/.test(String((err as { code?: unknown } | null)?.code));
        if (!busy || this.sqlite.inTransaction) throw err;
        const now = Date.now();
        until ??= now + SQLITE_BUSY_TIMEOUT_MS;
        if (now + pause > until) throw err;
      }
      await wait(pause);
    }
  }
}

class TransactionalDdlSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}

/**
 * fsyncs the WAL file, coalescing callers: a caller waits for a flush that started after it
 * called (one already running may predate its commit), and every caller waiting meanwhile
 * shares that next flush.
 */
class WalSync {
  private handle: Promise<FileHandle> | undefined;
  private running: Promise<void> | undefined;
  private next: Promise<void> | undefined;

  constructor(private readonly walPath: string) {}

  sync(): Promise<void> {
    if (!this.running) return this.start();
    this.next ??= this.running.then(
      () => this.startNext(),
      () => this.startNext(),
    );
    return this.next;
  }

  private startNext(): Promise<void> {
    this.next = undefined;
    return this.start();
  }

  private start(): Promise<void> {
    const run = this.flush().finally(() => {
      if (this.running === run) this.running = undefined;
    });
    this.running = run;
    return run;
  }

  private async flush(): Promise<void> {
    this.handle ??= open(this.walPath, 'r');
    const handle = await this.handle;
    await handle.datasync();
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.running, this.next]);
    const handle = this.handle;
    this.handle = undefined;
    if (handle) await (await handle).close();
  }
}

/**
 * Kysely prepares a new statement for every query; preparing is a large share of a small
 * write's cost. The write path repeats the same SQL texts, so statements are kept and reused
 * (better-sqlite3 statements are reusable, and the connection is used by one caller at a time).
 */
function cachingStatements(sqlite: SQLite.Database): SqliteDatabase {
  return {
    close: () => {
      statementCaches.delete(sqlite);
      sqlite.close();
    },
    prepare: (text: string) => cachedStatement(sqlite, text),
  };
}

const statementCaches = new WeakMap<SQLite.Database, Map<string, SqliteStatement>>();

/**
 * The connection's prepared statement for `text`, kept for reuse (the 500 most recently
 * used): one cache for Kysely's queries, `db/prepared` and the bulk writes of `db/bulk`.
 */
export function cachedStatement(sqlite: SQLite.Database, text: string): SqliteStatement {
  let cache = statementCaches.get(sqlite);
  if (!cache) statementCaches.set(sqlite, (cache = new Map()));
  let stmt = cache.get(text);
  if (stmt) {
    // refresh its place in the LRU order
    cache.delete(text);
  } else {
    stmt = withFastRows(sqlite.prepare(text));
    if (cache.size >= 500) cache.delete(cache.keys().next().value!);
  }
  cache.set(text, stmt);
  return stmt;
}

/**
 * A statement whose result rows are built faster. better-sqlite3 builds each row object
 * property by property in C++, which for wide rows (a run has 37 columns) costs more than the
 * query: reading 21 runs took ~330 us, of which ~160 us was building the objects. Here rows
 * come back as arrays and become objects through one object literal per statement, which V8
 * gives a single fast shape. Same objects as before: a repeated column name keeps its last
 * value.
 */
export function withFastRows(stmt: SQLite.Statement): SqliteStatement {
  if (!stmt.reader) return stmt;
  const names = stmt.columns().map((c) => c.name);
  const fields = names.map((name, i) => `${JSON.stringify(name)}: r[${i}]`).join(', ');
  // generated from the statement's own column names, each quoted by JSON.stringify
  const build = new Function('r', `return { ${fields} };`) as (row: unknown[]) => unknown;
  stmt.raw(true);
  return {
    reader: true,
    all: (parameters) => (stmt.all(parameters) as unknown[][]).map(build),
    get: (parameters: readonly unknown[]) => {
      const row = stmt.get(parameters) as unknown[] | undefined;
      return row && build(row);
    },
    run: (parameters) => stmt.run(parameters),
    *iterate(parameters) {
      for (const row of stmt.iterate(parameters) as IterableIterator<unknown[]>) yield build(row);
    },
  } as SqliteStatement;
}

/** How long a PostgreSQL statement waits for a lock held elsewhere before failing (55P03). */
const PG_LOCK_TIMEOUT_MS = 5000;

async function openPostgres(rawUrl: string, options: OpenOptions): Promise<Db> {
  const url = new URL(rawUrl);
  const schema = url.searchParams.get('schema') ?? undefined;
  url.searchParams.delete('schema');
  if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new Error(`invalid schema name in database URL: ${schema}`);
  }
  const pool = new pg.Pool({
    connectionString: url.toString(),
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: 5000,
    // a connection whose peer went silent (a dropped route, a stalled proxy) is found out:
    // probes from 10 s idle, not from the system's default of two hours
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    // a lock held elsewhere (a maintenance session's LOCK TABLE, VACUUM FULL or ALTER TABLE)
    // fails a statement after this long (55P03: a 503 with Retry-After), as SQLite's busy
    // wait does: without it every request, and the write path behind them, waited as long as
    // the lock was held, with /readyz saying ready. Set when the connection opens, as the
    // search path is. Migrations still wait as long as they need: Kysely's migrator sets its
    // own lock_timeout (an hour) in the transaction that holds its lock and runs them.
    lock_timeout: PG_LOCK_TIMEOUT_MS,
    ...(schema ? { options: `-c search_path=${schema}` } : {}),
    // bigint and numeric columns hold epoch ms, counts and nano-USD: all exact in a double
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === INT8_OID || oid === NUMERIC_OID
          ? (value: string) => Number(value)
          : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
    },
  });
  // a client's connection error (the server restarted, a failover, the connection killed)
  // must not crash the process: the pool handles it only for idle clients, and a client lent
  // out between two statements of a transaction has no listener of its own. Its query fails
  // (a 503 to the caller, a retry for the write path) and the pool drops it on release.
  pool.on('error', () => {});
  pool.on('connect', (client) => client.on('error', () => {}));
  try {
    const client = await pool.connect();
    try {
      if (schema && options.createSchema === false) {
        const found = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
        if (found.rowCount === 0) throw new Error(`no schema ${schema} in this database`);
      } else if (schema)
        // instances starting at once race here: IF NOT EXISTS still lets two of them try to
        // create it, and the second then fails on the catalog's unique index
        await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`).catch((err: unknown) => {
          const code = (err as { code?: string }).code;
          if (code !== '23505' && code !== '42P06') throw err;
        });
    } finally {
      client.release();
    }
  } catch (err) {
    await pool.end().catch(() => {});
    throw err;
  }
  const kysely = new Kysely<Database>({
    dialect: new PostgresDialect({ pool: new PreparingPool(pool, schema) }),
  });
  return {
    kysely,
    dialect: 'postgres',
    pgPool: pool,
    ...(schema ? { pgSchema: schema } : {}),
    durable: () => Promise.resolve(),
    close: () => kysely.destroy(),
  };
}

/** Node's codes for a connection that could not be made or was lost. */
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
]);

/**
 * Whether `err` says the database cannot be used right now, rather than that the request was
 * wrong: PostgreSQL unreachable, restarting, dropped or out of connections; SQLite locked, out
 * of disk, failing to read its file or not allowed to write it. The API answers those 503
 * with Retry-After, so clients send again instead of taking a 500 for a bug.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : '';
  if (CONNECTION_CODES.has(code)) return true;
  // PostgreSQL: a lock held elsewhere outlasted lock_timeout (openPostgres sets it)
  if (code === '55P03') return true;
  // PostgreSQL SQLSTATEs: connection exceptions (08), shutdown or starting (57P0x), the
  // database gone (3D000), too many connections (53300), out of disk or memory (53100/53200)
  if (/^08[0-9A-Z]{3}$/.test(code) || /^57P0[1-3]$/.test(code)) return true;
  if (code === '3D000' || code === '53300' || code === '53100' || code === '53200') return true;
  // a deadlock or serialization failure that outlasted the write path's own retries: the
  // request changed nothing, and sent again it goes through
  if (code === '40P01' || code === '40001') return true;
  // FATAL ends the session: the server refused or dropped the connection, whatever the code
  // (55000: the database does not take connections now, as while an operator works on it)
  if ((e as { severity?: unknown } | null)?.severity === 'FATAL') return true;
  // SQLite: locked by another process, failing to read or write its file, out of disk, or
  // the file read-only for this process (its mode or owner changed, a read-only mount)
  if (/^SQLITE_(BUSY|LOCKED|IOERR|CANTOPEN|FULL|READONLY)/.test(code)) return true;
  const message = typeof e?.message === 'string' ? e.message : '';
  // node-postgres says these in words, without a code
  // ("timeout exceeded when trying to connect": every pooled connection busy for 5 s)
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client was closed|Cannot use a pool after calling end|not queryable/i.test(
    message,
  );
}
