import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { openDatabase, optimizeSqlite, type Db } from './database.js';
import { migrateToLatest } from './migrate.js';
import { readOffLoop } from './readers.js';
import { listRuns, type RunFilter } from '../runs/runs.repository.js';

const projects = (db: Db) => db.kysely.selectFrom('projects').select(['id', 'name']).orderBy('id');

describe('readers of a SQLite file', () => {
  let dir: string;
  let db: Db;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'runlog-readers-'));
    db = await openDatabase(join(dir, 'runlog.db'));
    await migrateToLatest(db);
    await db.kysely
      .insertInto('projects')
      .values({ id: 'p1', name: 'One', retention_days: 30, created_at: 0 })
      .execute();
  });
  afterAll(async () => {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("keeps the query planner's statistics of a table that grew, as a server does", async () => {
    const stats = () =>
      db.sqlite!.prepare("SELECT stat FROM sqlite_stat1 WHERE tbl = 'agents'").all() as {
        stat: string;
      }[];
    await db.kysely
      .insertInto('agents')
      .values(
        Array.from({ length: 2_000 }, (_, i) => ({
          project_id: 'p1',
          id: `agent-${i}`,
          name: `agent-${i}`,
          metadata: '{}',
          created_at: 0,
          updated_at: 0,
        })),
      )
      .execute();
    await db.kysely.selectFrom('agents').selectAll().where('project_id', '=', 'p1').execute();
    await optimizeSqlite(db, true);
    // without them SQLite guessed plans that walked every run of a project
    expect(stats().map((r) => Number(r.stat.split(' ')[0]))).toContain(2_000);
    await db.kysely.deleteFrom('agents').execute();
  });

  it('answers the same rows as the connection itself, as objects', async () => {
    expect(db.readers).toBeDefined();
    expect(await readOffLoop(db, projects(db))).toEqual(await projects(db).execute());
    expect(await readOffLoop(db, projects(db))).toEqual([{ id: 'p1', name: 'One' }]);
  });

  it('sees what the writer committed after the reader started', async () => {
    await readOffLoop(db, projects(db));
    await db.kysely
      .insertInto('projects')
      .values({ id: 'p2', name: 'Two', retention_days: 30, created_at: 0 })
      .execute();
    expect((await readOffLoop(db, projects(db))).map((p) => p.id)).toEqual(['p1', 'p2']);
  });

  it('runs queries at once on more than one reader and answers each its own rows', async () => {
    const many = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        readOffLoop(
          db,
          db.kysely
            .selectFrom('projects')
            .select('id')
            .where('id', '=', i % 2 ? 'p1' : 'p2'),
        ),
      ),
    );
    expect(many.map((rows) => rows[0]?.id)).toEqual(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? 'p1' : 'p2')),
    );
  });

  it("rejects with SQLite's own error, and the reader goes on", async () => {
    await expect(db.readers!.all('SELECT * FROM no_such_table', [])).rejects.toMatchObject({
      message: expect.stringContaining('no such table') as string,
      code: 'SQLITE_ERROR',
    });
    // read-only: a write is refused, not applied
    await expect(
      db.readers!.all("UPDATE projects SET name = 'x' WHERE id = 'p1' RETURNING id", []),
    ).rejects.toMatchObject({ code: 'SQLITE_READONLY' });
    expect(await readOffLoop(db, projects(db))).toContainEqual({ id: 'p1', name: 'One' });
  });

  it('take the pages of runs that may read many runs, and leave the indexed ones', async () => {
    const reads = vi.spyOn(db.readers!, 'all');
    const offLoop = async (filter: RunFilter, offset?: number) => {
      reads.mockClear();
      await listRuns(db, 'p1', filter, { limit: 5, ...(offset ? { offset } : {}) });
      return reads.mock.calls.length > 0;
    };
    try {
      // an agent's or a thread's latest runs: an index walk of a few rows, on the connection
      expect(await offLoop({ agentIds: ['a'] })).toBe(false);
      expect(await offLoop({ threadId: 't' }, 20)).toBe(false);
      // a filter no index narrows, or a deep offset, may read the whole table: beside the
      // event loop (before, source and trigger held it for 170-850 ms at 300k runs)
      expect(await offLoop({ q: 'needle' })).toBe(true);
      expect(await offLoop({ source: 'n8n' })).toBe(true);
      expect(await offLoop({ agentIds: ['a'], triggers: ['api'] })).toBe(true);
      expect(await offLoop({ agentIds: ['a'] }, 5000)).toBe(true);
    } finally {
      reads.mockRestore();
    }
  });
});

describe('without readers', () => {
  it('reads through the connection itself for an in-memory database', async () => {
    const db = await openDatabase(':memory:');
    try {
      await migrateToLatest(db);
      expect(db.readers).toBeUndefined();
      expect(await readOffLoop(db, projects(db))).toEqual([]);
    } finally {
      await db.close();
    }
  });

  it('refuses reads once closed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'runlog-readers-'));
    const db = await openDatabase(join(dir, 'runlog.db'));
    await migrateToLatest(db);
    await readOffLoop(db, projects(db));
    // a read still running when the database closes is refused, not left waiting for ever
    const slow = db.readers!.all(
      'WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000000) SELECT count(*) FROM n',
      [],
    );
    const refused = expect(slow).rejects.toThrow('the database is closed');
    await db.close();
    await refused;
    await expect(db.readers!.all('SELECT 1', [])).rejects.toThrow('the database is closed');
    rmSync(dir, { recursive: true, force: true });
  });
});
