import { Readable } from 'node:stream';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { createTestApp, describeEachDb, type TestApp } from '../../test/harness.js';
import { T0, emptyDb, exportText, seed, tableRows } from '../../test/cli-fixtures.js';
import { importRuns } from '../export/import.js';
import { DAY_MS } from '../stats/rollup.js';
import { purgeEndedBefore } from './purge.js';
import { Retention } from './retention.js';

async function runIds(t: TestApp): Promise<string[]> {
  const rows = await t.ctx.db.kysely.selectFrom('runs').select('id').orderBy('id').execute();
  return rows.map((r) => r.id);
}

describeEachDb('retention', (dialect) => {
  let t: TestApp;
  beforeEach(async () => {
    t = await createTestApp(dialect);
    await seed(t, 'p');
  });
  afterEach(async () => {
    await t.close();
  });

  it('deletes only finished runs that ended before the cutoff, with their steps', async () => {
    // runs 0..9 ended at T0 + i h + ~1 s; 10 and 11 are still running, one is queued
    const before = T0 + 5 * 3_600_000;
    const result = await purgeEndedBefore(t.ctx.db, { before, batchSize: 2 });
    expect(result).toEqual({ runs: 5, steps: 10, batches: 3 });
    const ids = await runIds(t);
    expect(ids).not.toContain('p-run-4');
    expect(ids).toContain('p-run-5');
    expect(ids).toContain('p-run-11');
    expect(ids).toContain('p-queued');
    const orphanSteps = await t.ctx.db.kysely
      .selectFrom('steps')
      .select('id')
      .where('run_id', '=', 'p-run-0')
      .execute();
    expect(orphanSteps).toEqual([]);
  });

  it('keeps the rollup tables equal to those of the runs that remain', async () => {
    await purgeEndedBefore(t.ctx.db, { before: T0 + 6 * 3_600_000, batchSize: 3 });
    const { db, database } = await emptyDb(dialect);
    try {
      await importRuns(db, Readable.from([await exportText(t.ctx.db)]));
      const rebuilt = await tableRows(db);
      const kept = await tableRows(t.ctx.db);
      expect(kept.rollups).toEqual(rebuilt.rollups);
      expect(kept.histogram).toEqual(rebuilt.histogram);
      // rows whose runs were all purged are gone, not left behind at zero
      for (const table of [
        'run_rollups',
        'run_rollups_daily',
        'project_rollups',
        'project_rollups_daily',
        'duration_histogram',
        'duration_histogram_daily',
        'project_duration_histogram',
        'project_duration_histogram_daily',
      ] as const) {
        const zero = await t.ctx.db.kysely
          .selectFrom(table)
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('runs', '=', 0)
          .executeTakeFirstOrThrow();
        expect(Number(zero.n), table).toBe(0);
      }
    } finally {
      await db.close();
      await database.drop();
    }
  });

  it('counts without deleting on a dry run, and stays inside the given project', async () => {
    const everything = Date.now() + DAY_MS;
    const dry = await purgeEndedBefore(t.ctx.db, { before: everything, dryRun: true });
    expect(dry).toEqual({ runs: 10, steps: 20, batches: 0 });
    expect(await runIds(t)).toHaveLength(13);
    const other = await purgeEndedBefore(t.ctx.db, { before: everything, projectId: 'elsewhere' });
    expect(other.runs).toBe(0);
    expect(await runIds(t)).toHaveLength(13);
  });

  it('applies each project its retention_days and reports the deletions in /metrics', async () => {
    const retention = new Retention(t.ctx, 4);
    // 10 days after the sample runs: a 30-day project keeps them, a 5-day one does not
    const now = T0 + 10 * DAY_MS;
    expect((await retention.runOnce(now)).runs).toBe(0);
    await t.ctx.db.kysely
      .updateTable('projects')
      .set({ retention_days: 5 })
      .where('id', '=', 'default')
      .execute();
    expect(await retention.runOnce(now)).toMatchObject({ runs: 10, steps: 20 });
    const metrics = await t.request('GET', '/metrics');
    expect(metrics.body).toMatch(/^runlog_retention_deleted_runs_total 10$/m);
    expect(metrics.body).toMatch(/^runlog_retention_deleted_steps_total 20$/m);
  });

  it('loses no recent run when it deletes while ingestion goes on', async () => {
    const recent = Array.from({ length: 40 }, (_, i) => `live-${i}`);
    const ingest = (async () => {
      for (const id of recent) {
        const res = await t.request('POST', '/api/v1/ingest', {
          events: [
            { type: 'run.start', run: { id, agent_id: 'writer' } },
            { type: 'step.end', step: { id: `${id}-s`, run_id: id, type: 'tool' } },
            { type: 'run.end', run: { id, status: 'succeeded' } },
          ],
        });
        expect(res.statusCode).toBe(200);
      }
    })();
    const purge = purgeEndedBefore(t.ctx.db, { before: Date.now() - DAY_MS, batchSize: 1 });
    const [, purged] = await Promise.all([ingest, purge]);
    expect(purged.runs).toBe(10);
    const ids = await runIds(t);
    for (const id of recent) expect(ids).toContain(id);
    const steps = await t.ctx.db.kysely
      .selectFrom('steps')
      .select('id')
      .where('run_id', 'like', 'live-%')
      .execute();
    expect(steps).toHaveLength(40);
  });
});
