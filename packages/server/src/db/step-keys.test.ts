import { afterAll, beforeAll, expect, it } from 'vitest';
import { sql } from 'kysely';
import type { IngestEvent } from '@runlog/core';
import { createTestApp, describeEachDb, ingestOk, type TestApp } from '../../test/harness.js';
import { stepKeysIn } from './dialect.js';

// the write path and the PostgreSQL bridge read steps by (run_id, id) in batches of up to 500
describeEachDb('steps read by their keys', (dialect) => {
  if (dialect !== 'postgres') {
    it.skip("PostgreSQL's (SQLite reads steps one at a time, off a prepared statement)", () => {});
    return;
  }
  let t: TestApp;
  const steps = (run: string, from: number, n: number): IngestEvent[] =>
    Array.from({ length: n }, (_, i) => ({
      type: 'step.end',
      step: { id: `s${from + i}`, run_id: run, type: 'tool', name: 'x' },
    }));

  beforeAll(async () => {
    t = await createTestApp(dialect);
    await ingestOk(t, [{ type: 'run.start', run: { id: 'long', agent_id: 'a' } }]);
    for (let b = 0; b < 3; b++) await ingestOk(t, steps('long', b * 1000, 1000));
    await ingestOk(t, [{ type: 'run.start', run: { id: 'short', agent_id: 'a' } }]);
    await ingestOk(t, steps('short', 0, 3));
  });
  afterAll(() => t.close());

  const read = (keys: { run_id: string; id: string }[]) =>
    t.ctx.db.kysely
      .selectFrom('steps')
      .select(['run_id', 'id'])
      .where('project_id', '=', 'default')
      .where(stepKeysIn(keys))
      .orderBy('run_id')
      .orderBy('id');

  it('reads exactly the steps named, across runs', async () => {
    const keys = [
      { run_id: 'long', id: 's10' },
      { run_id: 'short', id: 's2' },
      { run_id: 'long', id: 's2999' },
      { run_id: 'short', id: 'missing' },
    ];
    expect(await read(keys).execute()).toEqual([
      { run_id: 'long', id: 's10' },
      { run_id: 'long', id: 's2999' },
      { run_id: 'short', id: 's2' },
    ]);
    expect(await read([]).execute()).toEqual([]);
  });

  if (dialect === 'postgres')
    it('reads them off the primary key, not through every step of a long run', async () => {
      await sql`ANALYZE steps`.execute(t.ctx.db.kysely);
      const keys = Array.from({ length: 20 }, (_, i) => ({ run_id: 'long', id: `s${i * 150}` }));
      const { sql: text, parameters } = read(keys).compile();
      // a table this small is read whole whatever the query: what counts is whether the
      // index can answer it, so scans of the table itself are ruled out for this look
      const client = await t.ctx.db.pgPool!.connect();
      let lines: string;
      try {
        await client.query('SET enable_seqscan = off');
        await client.query('SET enable_bitmapscan = off');
        const plan = await client.query<{ 'QUERY PLAN': string }>(
          `EXPLAIN ${text}`,
          parameters as unknown[],
        );
        lines = plan.rows.map((r) => r['QUERY PLAN']).join('\n');
      } finally {
        await client.query('RESET enable_seqscan');
        await client.query('RESET enable_bitmapscan');
        client.release();
      }
      // as (run_id, id) pairs, PostgreSQL walked the run's 3,000 steps for each batch
      expect(lines).toMatch(/Index Cond: .*id = ANY/);
      expect(lines).not.toMatch(/Filter:/);
    });
});
