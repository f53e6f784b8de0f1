import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import pg from 'pg';
import { describe, expect, inject, it, vi } from 'vitest';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import type { ServerConfigInput } from '../src/config.js';
import { closeContext, createContext, startServer, type RunningServer } from '../src/server.js';
import { buildApp } from '../src/app.js';
import type { AppContext } from '../src/context.js';
import type { Db, DialectName } from '../src/db/database.js';
import type { IngestEvent } from '@runlog/core';

export const PG_BASE_URL =
  process.env.RUNLOG_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** The dialects this run covers: RUNLOG_TEST_DB=sqlite|postgres|all (default all). */
export function dialects(): DialectName[] {
  const want = process.env.RUNLOG_TEST_DB ?? 'all';
  if (want === 'sqlite') return ['sqlite'];
  if (want === 'postgres') return ['postgres'];
  return ['sqlite', 'postgres'];
}

/**
 * Runs a suite once per dialect. Without a reachable PostgreSQL (and unless it is
 * required), the PostgreSQL copy is reported as skipped, never silently passed.
 * @example describeEachDb('runs API', (dialect) => { it('...', async () => { ... }) })
 */
export function describeEachDb(name: string, body: (dialect: DialectName) => void): void {
  for (const dialect of dialects()) {
    const available = dialect === 'sqlite' || inject('pgAvailable');
    (available ? describe : describe.skip)(`${name} [${dialect}]`, () => body(dialect));
  }
}

/** `it` for a test that needs PostgreSQL itself: skipped, and said so, without one. */
export const pgIt: typeof it = (
  dialects().includes('postgres') && inject('pgAvailable') ? it : it.skip
) as typeof it;

/**
 * Runs `body` against a test app on a PostgreSQL database of its own, not a schema (for
 * tests that drop it, kill its connections or create it with a locale: `createOptions`
 * goes after `CREATE DATABASE name`), and drops the database after. `admin` is connected
 * to the server's maintenance database.
 */
export async function withOwnPgDatabase(
  prefix: string,
  body: (t: TestApp, admin: pg.Client, name: string) => Promise<void>,
  createOptions = '',
): Promise<void> {
  const name = `${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_BASE_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}" ${createOptions}`);
    const url = new URL(PG_BASE_URL);
    url.pathname = `/${name}`;
    const t = await createTestApp('postgres', { db: url.toString() });
    try {
      await body(t, admin, name);
    } finally {
      await t.close().catch(() => {});
    }
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await admin.end();
  }
}

/** A fresh database for one test file: a temp SQLite file or a new PostgreSQL schema. */
export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

export function freshDatabase(dialect: DialectName): TestDatabase {
  if (dialect === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'runlog-test-'));
    return {
      url: join(dir, 'runlog.db'),
      drop: async () => rmSync(dir, { recursive: true, force: true }),
    };
  }
  const schema = `rt_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  const sep = PG_BASE_URL.includes('?') ? '&' : '?';
  return {
    url: `${PG_BASE_URL}${sep}schema=${schema}`,
    drop: async () => {
      const client = new pg.Client({ connectionString: PG_BASE_URL });
      await client.connect();
      try {
        await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await client.end();
      }
    },
  };
}

/** A 40+ character admin key every test server starts with. */
export const TEST_ADMIN_KEY = 'rl_test_admin_key_0123456789abcdefghijklmnop';

export interface TestApp {
  app: FastifyInstance;
  ctx: AppContext;
  adminKey: string;
  /** `app.inject` with the admin key (or `key`) and JSON in and out. */
  request(
    method: string,
    url: string,
    body?: unknown,
    key?: string | null,
  ): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

/** An in-process app (no socket) on a fresh database of `dialect`, or on `database`. */
export async function createTestApp(
  dialect: DialectName,
  config: Partial<ServerConfigInput> = {},
  /** A database made beforehand (an older version's, to upgrade); dropped by `close`. */
  database: TestDatabase = freshDatabase(dialect),
): Promise<TestApp> {
  const { ctx } = await createContext({
    db: database.url,
    port: 0,
    host: '127.0.0.1',
    retentionDays: 30,
    adminKey: TEST_ADMIN_KEY,
    logLevel: 'silent',
    background: false,
    ...config,
  });
  const app = await buildApp(ctx);
  await app.ready();
  return {
    app,
    ctx,
    adminKey: TEST_ADMIN_KEY,
    request: (method, url, body, key = TEST_ADMIN_KEY) =>
      app.inject({
        method: method as 'GET',
        url,
        headers: {
          ...(key ? { authorization: `Bearer ${key}` } : {}),
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined
          ? { payload: typeof body === 'string' ? body : JSON.stringify(body) }
          : {}),
      }),
    close: async () => {
      await closeContext(ctx, app);
      await database.drop();
    },
  };
}

/** A real listening server (for WebSocket, SDK, CLI and browser tests) on a fresh database. */
export async function startTestServer(
  dialect: DialectName,
  config: Partial<ServerConfigInput> = {},
): Promise<RunningServer & { adminKey: string; dbUrl: string; drop(): Promise<void> }> {
  const database = freshDatabase(dialect);
  const server = await startServer({
    db: database.url,
    port: 0,
    host: '127.0.0.1',
    retentionDays: 30,
    adminKey: TEST_ADMIN_KEY,
    logLevel: 'silent',
    ...config,
  });
  return {
    ...server,
    adminKey: TEST_ADMIN_KEY,
    dbUrl: database.url,
    drop: () => database.drop(),
    close: async () => {
      // as `runlog serve` does on SIGTERM: a connection still open after a grace (a client
      // that never finished its request) is cut rather than holding the close for good
      const cut = setTimeout(() => server.app.server.closeAllConnections(), 10_000);
      try {
        await server.close();
      } finally {
        clearTimeout(cut);
      }
      await database.drop();
    },
  };
}

/** Parses a JSON response body. */
export function json<T = Record<string, unknown>>(res: LightMyRequestResponse): T {
  return res.json() as T;
}

/** Records `events` through `POST /ingest`, failing the test unless all are taken (200). */
export async function ingestOk(t: TestApp, events: IngestEvent[], key?: string): Promise<void> {
  const res = await t.request('POST', '/api/v1/ingest', { events }, key);
  expect(res.statusCode, res.body).toBe(200);
}

/** `GET url`'s JSON body, failing the test on any other answer than 200. */
export async function getOk<T>(t: TestApp, url: string, key?: string): Promise<T> {
  const res = await t.request('GET', url, undefined, key);
  expect(res.statusCode, res.body).toBe(200);
  return json<T>(res);
}

/**
 * Polls `check` every 10 ms until it returns a truthy value, and returns that value; fails
 * naming `what` (and the last error `check` threw) after `timeoutMs`.
 * @example const run = await waitFor(async () => (await get(id)).ended_at && run, 'the end');
 */
export async function waitFor<T>(
  check: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  what: string,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Every query `read` sends to the database, through to the real one: the reader threads' on a
 * SQLite file, else the main connection's. For plan tests (`queryPlan`).
 */
export async function readsDuring(
  db: Db,
  read: () => Promise<unknown>,
): Promise<{ sql: string; parameters: readonly unknown[] }[]> {
  const calls: { sql: string; parameters: readonly unknown[] }[] = [];
  const readers = db.readers;
  if (readers) {
    const real = readers.all.bind(readers);
    vi.spyOn(readers, 'all').mockImplementation(((sql: string, parameters: readonly unknown[]) => {
      calls.push({ sql, parameters });
      return real(sql, parameters);
    }) as typeof readers.all);
  } else {
    const real = db.kysely.executeQuery.bind(db.kysely);
    vi.spyOn(db.kysely, 'executeQuery').mockImplementation(((q: {
      sql: string;
      parameters: readonly unknown[];
    }) => {
      calls.push({ sql: q.sql, parameters: q.parameters });
      return real(q as never);
    }) as typeof db.kysely.executeQuery);
  }
  try {
    await read();
  } finally {
    vi.restoreAllMocks();
  }
  return calls;
}

/**
 * SQLite's plan for a statement, a line per step (`EXPLAIN QUERY PLAN`); its `?` slots take
 * `parameters`, or 'x' each when none are given (the plan does not depend on them).
 */
export function queryPlan(
  sqlite: NonNullable<Db['sqlite']>,
  text: string,
  parameters?: readonly unknown[],
): string[] {
  const values = parameters ?? Array.from({ length: text.split('?').length - 1 }, () => 'x');
  const plan = sqlite.prepare(`EXPLAIN QUERY PLAN ${text}`).all(...values) as { detail: string }[];
  return plan.map((p) => p.detail);
}

/**
 * A TCP relay to PostgreSQL that can go silent: its connections stay open but nothing more
 * crosses them, as when a route drops or a proxy stalls (no RST, no FIN).
 */
export async function silenceableRelay(): Promise<{ url: string; silence(): void; close(): void }> {
  const target = new URL(PG_BASE_URL);
  const sockets = new Set<Socket>();
  let silent = false;
  const server: Server = createServer((client) => {
    const upstream = connect(Number(target.port || 5432), target.hostname);
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      sockets.add(from);
      from.on('data', (chunk: Buffer) => {
        if (!silent) to.write(chunk);
      });
      from.on('error', () => to.destroy());
      from.on('close', () => to.destroy());
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const url = new URL(PG_BASE_URL);
  url.hostname = '127.0.0.1';
  url.port = String(typeof address === 'object' && address ? address.port : 0);
  return {
    url: url.toString(),
    silence: () => {
      silent = true;
    },
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}
