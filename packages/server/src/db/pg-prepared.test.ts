import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { freshDatabase, PG_BASE_URL, pgIt, type TestDatabase } from '../../test/harness.js';
import { openDatabase, type Db } from './database.js';
import { migrateToLatest } from './migrate.js';
import { PLAN_ONCE } from './pg-prepared.js';
import { countRunsFromRollups, listRuns } from '../runs/runs.repository.js';

interface Prepared {
  name: string;
  statement: string;
  generic_plans: number;
  custom_plans: number;
}

describe('statements on PostgreSQL', () => {
  let fresh: TestDatabase;
  let db: Db;
  /** The prepared statements of the pool's one connection. */
  const prepared = async () =>
    (
      await sql<Prepared>`select name, statement, generic_plans, custom_plans from pg_prepared_statements`.execute(
        db.kysely,
      )
    ).rows;

  beforeAll(async () => {
    fresh = freshDatabase('postgres');
    // one connection: every statement below meets the same server session
    db = await openDatabase(fresh.url, { poolSize: 1 });
    await migrateToLatest(db);
    await db.kysely
      .insertInto('projects')
      .values({ id: 'p', name: 'P', retention_days: 30, created_at: 0 })
      .execute();
  });
  afterAll(async () => {
    await db?.close();
    await fresh?.drop();
  });

  pgIt(
    'names a repeated query and, with its limit written out, keeps one plan for it',
    async () => {
      for (let i = 0; i < 8; i++) await listRuns(db, 'p', { agentIds: [`a${i}`] }, { limit: 20 });
      const page = (await prepared()).find((p) => p.statement.includes('from "runs"'));
      expect(page?.name).toMatch(/^rl_/);
      expect(page?.statement).toMatch(/limit 21 \/\* runlog: plan once \*\/$/);
      // the first call of a text goes unnamed; PostgreSQL plans the next five with their
      // values and then keeps the generic plan, which a parameter limit priced 100x too high
      expect(page?.custom_plans).toBe(5);
      expect(page?.generic_plans).toBe(2);
    },
  );

  pgIt('names only what asks to be, used twice, outside a transaction', async () => {
    const before = (await prepared()).length;
    const once = sql.raw(PLAN_ONCE);
    await sql`select 1 as once where ${1} = 1 ${once}`.execute(db.kysely);
    // a range is planned with its values: a generic plan guessed its rows and read 6x more
    for (let i = 0; i < 3; i++)
      await sql`select 2 as unmarked where ${i} >= 0 and ${i} < 10`.execute(db.kysely);
    await db.kysely.transaction().execute(async (trx) => {
      for (let i = 0; i < 3; i++)
        await sql`select 3 as inside where ${i} >= 0 ${once}`.execute(trx);
    });
    for (let i = 0; i < 3; i++) await listRuns(db, 'p', { agentIds: ['a'], from: i }, { limit: 5 });
    for (let i = 0; i < 3; i++)
      await listRuns(
        db,
        'p',
        { agentIds: ['a'] },
        { limit: 5, cursor: { sortAt: 9, id: `r${i}` } },
      );
    expect(await prepared()).toHaveLength(before);
    await countRunsFromRollups(db, 'p', { agentIds: ['a'] });
    await countRunsFromRollups(db, 'p', { agentIds: ['a'] });
    expect(await prepared()).toHaveLength(before + 1);
    // an unmarked query keeps its limit a parameter: the transform is for planOnce's alone
    expect(db.kysely.selectFrom('runs').select('id').limit(5).compile().sql).toMatch(/limit \$1$/);
    // a text of several statements still goes by the simple protocol
    await sql`select 1; select 2`.execute(db.kysely);
  });

  pgIt(
    'answers a named query whose table changed shape under it, from another session',
    async () => {
      await sql`create table shaped (id integer primary key, a text)`.execute(db.kysely);
      await sql`insert into shaped values (1, 'x')`.execute(db.kysely);
      const read = () =>
        sql<
          Record<string, unknown>
        >`select * from shaped where id = ${1} ${sql.raw(PLAN_ONCE)}`.execute(db.kysely);
      await read();
      await read();
      expect((await prepared()).some((p) => p.statement.includes('shaped'))).toBe(true);
      // another instance's migration
      const other = new pg.Client({ connectionString: PG_BASE_URL });
      await other.connect();
      try {
        const schema = new URL(fresh.url).searchParams.get('schema')!;
        await other.query(`alter table "${schema}".shaped add column b text default 'y'`);
      } finally {
        await other.end();
      }
      expect((await read()).rows).toEqual([{ id: 1, a: 'x', b: 'y' }]);
      expect((await read()).rows).toEqual([{ id: 1, a: 'x', b: 'y' }]);
    },
  );

  pgIt(
    'stops naming, and answers, when the names are gone from the server (a pooler)',
    async () => {
      const read = () =>
        sql<{ n: number }>`select ${5}::int as n ${sql.raw(PLAN_ONCE)}`.execute(db.kysely);
      await read();
      await read();
      expect((await prepared()).some((p) => p.statement.includes('as n'))).toBe(true);
      // the driver still believes them there, as behind PgBouncer in transaction mode
      await sql`deallocate all`.execute(db.kysely);
      expect((await read()).rows).toEqual([{ n: 5 }]);
      await read();
      await listRuns(db, 'p', { agentIds: ['b'] }, { limit: 20 });
      await listRuns(db, 'p', { agentIds: ['b'] }, { limit: 20 });
      expect(await prepared()).toEqual([]);
    },
  );
  pgIt('names a text apart per schema, for server sessions a pooler shares', async () => {
    // this suite's own database stopped naming in the test above: two of their own
    const fresh2 = [freshDatabase('postgres'), freshDatabase('postgres')];
    const dbs = await Promise.all(fresh2.map((f) => openDatabase(f.url, { poolSize: 1 })));
    try {
      const named = [];
      for (const on of dbs) {
        await migrateToLatest(on);
        for (let i = 0; i < 2; i++) await countRunsFromRollups(on, 'p', { agentIds: ['x'] });
        const rows =
          await sql<Prepared>`select name, statement from pg_prepared_statements`.execute(
            on.kysely,
          );
        named.push(rows.rows.find((p) => p.statement.includes('run_rollups_daily')));
      }
      expect(named[0]?.statement).toBeDefined();
      expect(named[1]?.statement).toBe(named[0]?.statement);
      expect(named[1]?.name).not.toBe(named[0]?.name);
    } finally {
      await Promise.all(dbs.map((d) => d.close()));
      await Promise.all(fresh2.map((f) => f.drop()));
    }
  });
});
