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

/** Ingests finished runs of agent `writer`, each with an LLM step and a tool step. */
async function ingestRuns(t: TestApp, runs: { id: string; endedAt: number }[]): Promise<void> {
  const events = runs.flatMap(({ id, endedAt }) => [
    { type: 'run.start', run: { id, agent_id: 'writer', started_at: endedAt - 5000 } },
    {
      type: 'step.end',
      step: {
        id: `${id}-llm`,
        run_id: id,
        type: 'llm',
        input_tokens: 100,
        started_at: endedAt - 4000,
        ended_at: endedAt - 3000,
      },
    },
    {
      type: 'step.end',
      step: {
        id: `${id}-tool`,
        run_id: id,
        type: 'tool',
        cost_usd: 0.002,
        started_at: endedAt - 2000,
        ended_at: endedAt - 1000,
      },
    },
    { type: 'run.end', run: { id, status: 'succeeded', ended_at: endedAt } },
  ]);
  const res = await t.request('POST', '/api/v1/ingest', { events });
  expect(res.statusCode).toBe(200);
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
      expect(kept.models).toEqual(rebuilt.models);
      expect(kept.models.length).toBeGreaterThan(0);
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
        'model_rollups',
        'model_rollups_daily',
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
    // subscribers hear of each run retention deletes, as of a DELETE
    const announced: string[] = [];
    const unsubscribe = t.ctx.hub.subscribe((event) => {
      if (event.kind === 'run_deleted') announced.push(event.runId);
    });
    expect(await retention.runOnce(now)).toMatchObject({ runs: 10, steps: 20 });
    unsubscribe();
    expect(announced).toHaveLength(10);
    const metrics = await t.request('GET', '/metrics');
    expect(metrics.body).toMatch(/^runlog_retention_deleted_runs_total 10$/m);
    expect(metrics.body).toMatch(/^runlog_retention_deleted_steps_total 20$/m);

    // the ids of runs deleted over a day ago take events again
    await t.ctx.db.kysely
      .insertInto('deleted_runs')
      .values([
        { project_id: 'default', run_id: 'deleted-long-ago', deleted_at: now - DAY_MS - 1 },
        { project_id: 'default', run_id: 'deleted-lately', deleted_at: now - DAY_MS + 60_000 },
      ])
      .execute();
    await retention.runOnce(now);
    const remembered = await t.ctx.db.kysely.selectFrom('deleted_runs').select('run_id').execute();
    expect(remembered.map((r) => r.run_id)).toEqual(['deleted-lately']);
  });

  it('deletes every expired run and loses no recent one while ingestion goes on', async () => {
    const cutoff = Date.now() - DAY_MS;
    // expired: the 10 seeded finished runs and 20 more, the last ending 1 ms before the cutoff
    const old = Array.from({ length: 20 }, (_, i) => ({ id: `old-${i}`, endedAt: cutoff - 1 - i }));
    await ingestRuns(t, old);
    // kept: ended at the cutoff or after it (some started before it), all ingested mid-purge
    const chunks = Array.from({ length: 8 }, (_, c) =>
      Array.from({ length: 3 }, (_, i) => {
        const n = c * 3 + i;
        return { id: `recent-${n}`, endedAt: cutoff + n * 1000 };
      }),
    );
    const recent = chunks.flat();
    const ingests: Promise<void>[] = [];
    const purged = await purgeEndedBefore(t.ctx.db, {
      before: cutoff,
      batchSize: 2,
      // each ingest overlaps the purge's next batch (15 batches of 2: every chunk gets one)
      pause: async () => {
        const chunk = chunks[ingests.length];
        if (chunk) ingests.push(ingestRuns(t, chunk));
        await new Promise((resolve) => setImmediate(resolve));
      },
    });
    await Promise.all(ingests);
    expect(ingests).toHaveLength(chunks.length);

    expect(purged).toMatchObject({ runs: 10 + old.length, steps: 20 + 2 * old.length });
    const expired = await t.ctx.db.kysely
      .selectFrom('runs')
      .select('id')
      .where('ended_at', '<', cutoff)
      .execute();
    expect(expired).toEqual([]);
    const kept = await t.ctx.db.kysely
      .selectFrom('runs')
      .select(['id', 'status', 'ended_at', 'step_count', 'input_tokens', 'cost_nanos'])
      .where('id', 'like', 'recent-%')
      .orderBy('ended_at')
      .execute();
    expect(kept).toEqual(
      recent.map((r) => ({
        id: r.id,
        status: 'succeeded',
        ended_at: r.endedAt,
        step_count: 2,
        input_tokens: 100,
        cost_nanos: 2_000_000,
      })),
    );
    const steps = await t.ctx.db.kysely
      .selectFrom('steps')
      .select('run_id')
      .where('run_id', 'like', 'recent-%')
      .execute();
    expect(steps).toHaveLength(2 * recent.length);
    // the stats rollups are those of the runs that remain, built from scratch
    const { db, database } = await emptyDb(dialect);
    try {
      await importRuns(db, Readable.from([await exportText(t.ctx.db)]));
      const rebuilt = await tableRows(db);
      const now = await tableRows(t.ctx.db);
      expect(now.rollups).toEqual(rebuilt.rollups);
      expect(now.histogram).toEqual(rebuilt.histogram);
    } finally {
      await db.close();
      await database.drop();
    }
  });
});
