import { afterAll, beforeAll, expect, it } from 'vitest';
import { sql } from 'kysely';
import { createTestApp, describeEachDb, type TestApp } from '../../test/harness.js';
import { cancelRun, deleteRun, enqueueRun, retryRun } from '../control/control.service.js';
import { DAY_MS, HOUR_MS, RollupDeltas, binValue, durationBin } from './rollup.js';
import { newRunRow } from '../ingest/apply.js';
import * as m0009 from '../db/migrations/0009_model_usage.js';

const T0 = Date.parse('2026-04-10T22:30:00.000Z');

describeEachDb('rollup tables', (dialect) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(dialect);
  });
  afterAll(async () => {
    await t.close();
  });

  it('equal a scan of runs at every grain after records, stops, retries, replays and deletes', async () => {
    const events: unknown[] = [];
    for (let i = 0; i < 40; i++) {
      const id = `g-${i}`;
      const start = T0 + i * 17 * 60_000; // spans several hours and a day boundary
      events.push({
        type: 'run.start',
        run: {
          id,
          agent_id: `agent-${i % 3}`,
          trigger: i % 2 ? 'api' : 'manual',
          started_at: start,
        },
      });
      events.push({
        type: 'step.end',
        step: {
          id: 's',
          run_id: id,
          type: 'llm',
          model: 'gpt-4o',
          input_tokens: 100 + i,
          output_tokens: 10,
          started_at: start,
          ended_at: start + 5,
        },
      });
      if (i % 5 !== 0)
        events.push({
          type: 'run.end',
          run: { id, status: i % 4 ? 'succeeded' : 'failed', ended_at: start + 1000 * (i + 1) },
        });
    }
    expect((await t.request('POST', '/api/v1/ingest', { events })).statusCode).toBe(200);
    // replays and moves between statuses and hours
    expect(
      (await t.request('POST', '/api/v1/ingest', { events: events.slice(0, 30) })).statusCode,
    ).toBe(200);
    await t.request('POST', '/api/v1/ingest', {
      events: [{ type: 'run.start', run: { id: 'g-0', started_at: T0 - 3 * HOUR_MS } }],
    });
    const queued = await enqueueRun(t.ctx, 'default', 'agent-9', { trigger: 'manual' });
    await cancelRun(t.ctx, 'default', queued.run.id);
    await retryRun(t.ctx, 'default', 'g-4');
    await deleteRun(t.ctx, 'default', 'g-7');
    // a run changed and then deleted in one unit of work leaves the rollups of the stored row
    await t.ctx.writer.transact(async (uow, env) => {
      await uow.loadRuns('default', ['g-8']);
      const run = uow.getRun('default', 'g-8')!;
      uow.putRun({
        ...run,
        status: 'cancelled',
        trigger: 'retry',
        input_tokens: 99_999,
        updated_at: env.now,
      });
      uow.deleteRun('default', 'g-8');
    });

    const k = t.ctx.db.kysely;
    const scan = await sql<{
      agent_id: string;
      status: string;
      trigger: string;
      sort_at: number;
      duration_ms: number | null;
      input_tokens: number;
      output_tokens: number;
      cost_nanos: number;
    }>`SELECT agent_id, status, trigger, sort_at, duration_ms, input_tokens, output_tokens, cost_nanos FROM runs WHERE project_id = 'default'`.execute(
      k,
    );
    const expected = new Map<string, number[]>();
    const add = (key: string, v: number[]) => {
      const cur = expected.get(key) ?? [0, 0, 0, 0, 0, 0];
      expected.set(
        key,
        cur.map((x, i) => x + v[i]!),
      );
    };
    for (const r of scan.rows) {
      const finished =
        ['succeeded', 'failed', 'cancelled', 'timed_out'].includes(r.status) &&
        r.duration_ms !== null;
      const v = [
        1,
        finished ? 1 : 0,
        finished ? Number(r.duration_ms) : 0,
        Number(r.input_tokens),
        Number(r.output_tokens),
        Number(r.cost_nanos),
      ];
      const hour = Math.floor(Number(r.sort_at) / HOUR_MS) * HOUR_MS;
      const day = Math.floor(Number(r.sort_at) / DAY_MS) * DAY_MS;
      add(`run_rollups|${r.agent_id}|${hour}|${r.status}|${r.trigger}`, v);
      add(`run_rollups_daily|${r.agent_id}|${day}|${r.status}|${r.trigger}`, v);
      add(`project_rollups||${hour}|${r.status}|${r.trigger}`, v);
      add(`project_rollups_daily||${day}|${r.status}|${r.trigger}`, v);
    }
    const actual = new Map<string, number[]>();
    for (const [table, time, agent] of [
      ['run_rollups', 'hour', true],
      ['run_rollups_daily', 'day', true],
      ['project_rollups', 'hour', false],
      ['project_rollups_daily', 'day', false],
    ] as const) {
      const rows = await sql<
        Record<string, string | number>
      >`SELECT * FROM ${sql.table(table)} WHERE project_id = 'default'`.execute(k);
      for (const r of rows.rows) {
        const v = [
          'runs',
          'duration_count',
          'duration_sum',
          'input_tokens',
          'output_tokens',
          'cost_nanos',
        ].map((m) => Number(r[m]));
        if (v.every((x) => x === 0)) continue;
        actual.set(
          `${table}|${agent ? String(r.agent_id) : ''}|${Number(r[time])}|${String(r.status)}|${String(r.trigger)}`,
          v,
        );
      }
    }
    expect(Object.fromEntries([...actual].sort())).toEqual(
      Object.fromEntries([...expected].sort()),
    );

    // histograms: one finished run per duration bin, at every grain
    const bins = await sql<{
      runs: number | string;
    }>`SELECT SUM(runs) AS runs FROM project_duration_histogram_daily WHERE project_id = 'default'`.execute(
      k,
    );
    const finished = scan.rows.filter(
      (r) => r.duration_ms !== null && r.status !== 'running' && r.status !== 'queued',
    ).length;
    expect(Number(bins.rows[0]?.runs)).toBe(finished);
  });

  it('by model: equal a scan of the steps at both grains, sum to the totals, and are what the migration rebuilds', async () => {
    const events: unknown[] = [];
    const step = (runId: string, id: string, at: number, fields: object) => ({
      type: 'step.end',
      step: { id, run_id: runId, started_at: at, ended_at: at + 5, ...fields },
    });
    for (let i = 0; i < 12; i++) {
      const id = `m-${i}`;
      const start = T0 + i * 50 * 60_000; // several hours and a day boundary
      events.push({
        type: 'run.start',
        run: { id, agent_id: `m-agent-${i % 2}`, started_at: start },
      });
      events.push(
        step(id, 'a', start, {
          type: 'llm',
          model: 'gpt-4o',
          input_tokens: 100 + i,
          output_tokens: 10,
        }),
      );
      events.push(step(id, 'c', start + 1, { type: 'tool', name: 'search' }));
      if (i % 3 === 0)
        events.push(
          step(id, 'b', start + 2, {
            type: 'llm',
            model: 'claude-sonnet-4',
            input_tokens: 50,
            output_tokens: 5,
          }),
        );
      if (i % 4 === 0)
        events.push(
          step(id, 'd', start + 3, {
            type: 'evaluator',
            model: 'gpt-4o-mini',
            input_tokens: 7,
            output_tokens: 3,
          }),
        );
      if (i % 5 === 0)
        events.push(step(id, 'e', start + 4, { type: 'llm', input_tokens: 11, output_tokens: 1 }));
      if (i % 6 === 1) events.push(step(id, 'f', start + 5, { type: 'tool', cost_usd: 0.25 }));
      // usage given as zero counts nowhere, on the write path as in the backfill
      if (i % 4 === 1) {
        events.push(step(id, 'z1', start + 6, { type: 'tool', cost_usd: 0 }));
        events.push(step(id, 'z2', start + 7, { type: 'tool', input_tokens: 0, output_tokens: 0 }));
      }
      if (i !== 11)
        events.push({ type: 'run.end', run: { id, status: 'succeeded', ended_at: start + 9_000 } });
    }
    expect((await t.request('POST', '/api/v1/ingest', { events })).statusCode).toBe(200);
    // a replay changes nothing; a step that changes model, tokens added to one without,
    // a run moved hours earlier by a late start, a deleted run, a step recorded in two parts
    expect(
      (await t.request('POST', '/api/v1/ingest', { events: events.slice(0, 25) })).statusCode,
    ).toBe(200);
    const moved = await t.request('POST', '/api/v1/ingest', {
      events: [
        {
          type: 'step.start',
          step: { id: 'h', run_id: 'm-1', type: 'llm', started_at: T0 + 50 * 60_000 + 8 },
        },
        step('m-2', 'c', T0 + 100 * 60_000 + 1, { type: 'tool', name: 'search', input_tokens: 4 }),
        { type: 'run.start', run: { id: 'm-3', started_at: T0 - 5 * HOUR_MS } },
        {
          type: 'step.start',
          step: {
            id: 'g',
            run_id: 'm-11',
            type: 'llm',
            model: 'o3',
            started_at: T0 + 11 * 50 * 60_000 + 7,
          },
        },
      ],
    });
    expect(moved.statusCode).toBe(200);
    await t.request('POST', '/api/v1/ingest', {
      events: [
        step('m-1', 'h', T0 + 50 * 60_000 + 8, {
          type: 'llm',
          model: 'gpt-4.1',
          input_tokens: 300,
          output_tokens: 30,
        }),
        step('m-11', 'g', T0 + 11 * 50 * 60_000 + 7, {
          type: 'llm',
          model: 'o3',
          input_tokens: 1000,
          output_tokens: 2000,
        }),
      ],
    });
    await deleteRun(t.ctx, 'default', 'm-4');

    const k = t.ctx.db.kysely;
    const rows = await k
      .selectFrom('steps as s')
      .innerJoin('runs as r', (j) =>
        j.onRef('r.project_id', '=', 's.project_id').onRef('r.id', '=', 's.run_id'),
      )
      .select([
        'r.id as run_id',
        'r.agent_id',
        'r.sort_at',
        's.type',
        's.model',
        's.input_tokens',
        's.output_tokens',
        's.cost_nanos',
      ])
      .where('r.agent_id', 'like', 'm-agent-%')
      .execute();
    // the rule, written out again: a step counts when it is an LLM call (type llm or a model
    // named) or has tokens or a cost above 0; its model is '' when it names none
    const expected = new Map<string, number[]>();
    const perRun = new Map<string, Map<string, number[]>>();
    const runsOf = new Map<string, Set<string>>();
    for (const r of rows) {
      const call = r.type === 'llm' || r.model !== null;
      if (!call && !Number(r.input_tokens) && !Number(r.output_tokens) && !Number(r.cost_nanos))
        continue;
      const model = r.model ?? '';
      const v = [
        call ? 1 : 0,
        Number(r.input_tokens ?? 0),
        Number(r.output_tokens ?? 0),
        Number(r.cost_nanos ?? 0),
      ];
      const hour = Math.floor(Number(r.sort_at) / HOUR_MS) * HOUR_MS;
      const day = Math.floor(Number(r.sort_at) / DAY_MS) * DAY_MS;
      for (const key of [
        `hour|${r.agent_id}|${hour}|${model}`,
        `day|${r.agent_id}|${day}|${model}`,
      ]) {
        const cur = expected.get(key) ?? [0, 0, 0, 0, 0];
        const seen = runsOf.get(key) ?? new Set();
        runsOf.set(key, seen);
        if (!seen.has(r.run_id)) cur[0]! += 1;
        seen.add(r.run_id);
        expected.set(key, [cur[0]!, ...cur.slice(1).map((x, i) => x + v[i]!)]);
      }
      const run = perRun.get(r.run_id) ?? new Map<string, number[]>();
      run.set(
        model,
        (run.get(model) ?? [0, 0, 0, 0]).map((x, i) => x + v[i]!),
      );
      perRun.set(r.run_id, run);
    }
    const actual = new Map<string, number[]>();
    for (const [table, time] of [
      ['model_rollups', 'hour'],
      ['model_rollups_daily', 'day'],
    ] as const) {
      const stored = await sql<Record<string, string | number>>`SELECT * FROM ${sql.table(table)}
        WHERE project_id = 'default' AND agent_id LIKE 'm-agent-%'`.execute(k);
      for (const r of stored.rows) {
        const v = ['runs', 'calls', 'input_tokens', 'output_tokens', 'cost_nanos'].map((m) =>
          Number(r[m]),
        );
        if (v.every((x) => x === 0)) continue;
        actual.set(`${time}|${String(r.agent_id)}|${Number(r[time])}|${String(r.model)}`, v);
      }
    }
    expect(Object.fromEntries([...actual].sort())).toEqual(
      Object.fromEntries([...expected].sort()),
    );
    expect(
      actual.get(
        `hour|m-agent-1|${Math.floor((T0 + 50 * 60_000) / HOUR_MS) * HOUR_MS}|gpt-4.1`,
      )?.[1],
    ).toBe(1);
    // each run's own usage is its steps'
    const stored = await k
      .selectFrom('runs')
      .select(['id', 'models'])
      .where('agent_id', 'like', 'm-agent-%')
      .execute();
    expect(stored).toHaveLength(11);
    for (const r of stored) {
      const want = Object.fromEntries(
        [...(perRun.get(r.id) ?? new Map<string, number[]>())].sort(),
      );
      expect(JSON.parse(r.models), r.id).toEqual(want);
    }

    // the stats by model: most cost first, summing to the totals
    const res = await t.request(
      'GET',
      `/api/v1/runs/stats?agent_id=m-agent-0,m-agent-1&from=${new Date(T0 - DAY_MS).toISOString()}&to=${new Date(T0 + 2 * DAY_MS).toISOString()}`,
    );
    expect(res.statusCode).toBe(200);
    const stats = res.json() as {
      totals: { runs: number; total_tokens: number; cost_usd: number };
      by_model: {
        model: string | null;
        runs: number;
        calls: number;
        total_tokens: number;
        cost_usd: number;
      }[];
    };
    const sum = (f: (m: (typeof stats.by_model)[number]) => number) =>
      stats.by_model.reduce((n, m) => n + f(m), 0);
    expect(sum((m) => m.total_tokens)).toBe(stats.totals.total_tokens);
    expect(sum((m) => m.cost_usd)).toBeCloseTo(stats.totals.cost_usd, 9);
    const costs = stats.by_model.map((m) => m.cost_usd);
    expect(costs).toEqual([...costs].sort((a, b) => b - a));
    const gpt4o = stats.by_model.find((m) => m.model === 'gpt-4o');
    expect(gpt4o).toMatchObject({ runs: 11, calls: 11 });
    expect(stats.by_model.find((m) => m.model === null)).toMatchObject({ runs: 6 });
    // one agent's
    const one = (
      await t.request(
        'GET',
        `/api/v1/runs/stats?agent_id=m-agent-0&from=${new Date(T0 - DAY_MS).toISOString()}`,
      )
    ).json() as typeof stats;
    expect(one.by_model.find((m) => m.model === 'gpt-4o')?.runs).toBe(5);

    // the migration's backfill gives back what the write path keeps
    const snapshot = async () => ({
      runs: await k.selectFrom('runs').select(['id', 'models']).orderBy('id').execute(),
      hourly: await k
        .selectFrom('model_rollups')
        .selectAll()
        .where('runs', '!=', 0)
        .orderBy('hour')
        .orderBy('agent_id')
        .orderBy('model')
        .execute(),
      daily: await k
        .selectFrom('model_rollups_daily')
        .selectAll()
        .where('runs', '!=', 0)
        .orderBy('day')
        .orderBy('agent_id')
        .orderBy('model')
        .execute(),
    });
    const normal = (s: Awaited<ReturnType<typeof snapshot>>) => ({
      ...s,
      runs: s.runs.map((r) => ({ id: r.id, models: JSON.parse(r.models) as unknown })),
    });
    const kept = normal(await snapshot());
    const byModel = async (model: string) =>
      (
        (
          await t.request('GET', `/api/v1/runs?model=${encodeURIComponent(model)}&limit=100`)
        ).json() as { runs: { id: string }[] }
      ).runs
        .map((r) => r.id)
        .sort();
    const o3Runs = await byModel('o3');
    expect(o3Runs).toEqual(['m-11']);
    expect(await byModel('gpt-4.1')).toEqual(['m-1']);
    expect(await byModel('claude-sonnet-4')).toEqual(['m-0', 'm-3', 'm-6', 'm-9']);
    await m0009.down(k);
    await m0009.up(k);
    expect(normal(await snapshot())).toEqual(kept);
    // the runs of a model are found in the backfill's text as in the write path's
    expect(await byModel('claude-sonnet-4')).toEqual(['m-0', 'm-3', 'm-6', 'm-9']);
    expect(await byModel('gpt-4')).toEqual([]);
  });

  it('by model: the migration backfills many runs in a time that grows with them, not with their square', async () => {
    const own = await createTestApp(dialect);
    try {
      const k = own.ctx.db.kysely;
      const n = 8000;
      for (let i = 0; i < n; i += 500) {
        const ids = Array.from({ length: Math.min(500, n - i) }, (_, j) => `big-${i + j}`);
        await k
          .insertInto('runs')
          .values(ids.map((id) => ({ ...newRunRow('default', id, T0), agent_id: 'a' })))
          .execute();
        await k
          .insertInto('steps')
          .values(
            ids.map((id) => ({
              project_id: 'default',
              run_id: id,
              id: 's1',
              seq: 0,
              type: 'llm',
              status: 'succeeded',
              model: 'gpt-4o',
              input_tokens: 10,
              metadata: '{}',
              created_at: T0,
              updated_at: T0,
            })),
          )
          .execute();
      }
      await m0009.down(k);
      const started = Date.now();
      await m0009.up(k);
      // before, SQLite read every run's usage for each run: 8,000 runs took about 16 s
      expect(Date.now() - started).toBeLessThan(5000);
      const models = await k
        .selectFrom('runs')
        .select('models')
        .where('id', '=', `big-${n - 1}`)
        .executeTakeFirstOrThrow();
      expect(JSON.parse(models.models)).toEqual({ 'gpt-4o': [1, 10, 0, 0] });
    } finally {
      await own.close();
    }
  });

  it('by model: takes models named like object members (constructor, __proto__) as any other', async () => {
    const names = ['constructor', '__proto__', 'toString'];
    const res = await t.request('POST', '/api/v1/ingest', {
      events: names.map((model, i) => ({
        type: 'step.end',
        step: {
          id: 's1',
          run_id: `proto-run-${i}`,
          type: 'llm',
          model,
          input_tokens: 10,
          output_tokens: 1,
        },
      })),
    });
    expect(res.statusCode).toBe(200);
    const stats = (await t.request('GET', `/api/v1/runs/stats?agent_id=unknown`)).json() as {
      by_model: { model: string | null; runs: number; total_tokens: number }[];
    };
    for (const model of names)
      expect(
        stats.by_model.find((m) => m.model === model),
        model,
      ).toMatchObject({
        runs: 1,
        total_tokens: 11,
      });
    const listed = (await t.request('GET', '/api/v1/runs?model=__proto__')).json() as {
      runs: { id: string }[];
    };
    expect(listed.runs.map((r) => r.id)).toEqual(['proto-run-1']);
  });

  it('gives the same per-agent totals whether the range is read by hours or by whole days and edge hours', async () => {
    const base = Date.parse('2026-02-03T05:00:00.000Z');
    const events = [0, 1, 20, 26, 47, 50, 70].map((h, i) => ({
      type: 'run.end',
      run: {
        id: `edge-${i}`,
        agent_id: `edge-${i % 2}`,
        status: i % 3 ? 'succeeded' : 'failed',
        started_at: base + h * HOUR_MS,
        ended_at: base + h * HOUR_MS + 1000 * (i + 1),
      },
    }));
    expect((await t.request('POST', '/api/v1/ingest', { events })).statusCode).toBe(200);
    const from = new Date(base).toISOString();
    const to = new Date(base + 71 * HOUR_MS).toISOString();
    const read = async (bucket: string) => {
      const res = await t.request(
        'GET',
        `/api/v1/runs/stats?agent_id=edge-0,edge-1&from=${from}&to=${to}&bucket=${bucket}`,
      );
      expect(res.statusCode).toBe(200);
      return res.json() as {
        totals: { runs: number; by_status: Record<string, number> };
        by_agent: { agent_id: string; runs: number; avg_duration_ms: number }[];
        series: { runs: number }[];
      };
    };
    const hourly = await read('hour');
    expect(hourly.totals.runs).toBe(7);
    expect(hourly.totals.by_status.failed).toBe(3);
    expect(hourly.series).toHaveLength(71);
    expect(hourly.series.reduce((n, p) => n + p.runs, 0)).toBe(7);
    expect(hourly.by_agent.map((a) => [a.agent_id, a.runs])).toEqual([
      ['edge-0', 4],
      ['edge-1', 3],
    ]);
    const edge1 = hourly.by_agent.find((a) => a.agent_id === 'edge-1');
    expect(edge1?.avg_duration_ms).toBe((2000 + 4000 + 6000) / 3);
    const daily = await read('day');
    expect(daily.by_agent).toEqual(hourly.by_agent);
  });

  it('bins durations on a log scale whose representative lies inside the bin', () => {
    for (const ms of [1, 9, 250, 1_000, 61_234, 3_600_000]) {
      const v = binValue(durationBin(ms));
      expect(Math.abs(v - ms) / ms).toBeLessThan(0.1);
    }
    expect(durationBin(0)).toBe(0);
  });

  it('adds deltas into stored rows, as the bench seeds them', async () => {
    const row = { ...newRunRow('default', 'flush-only', T0), agent_id: 'flush-agent' };
    row.status = 'succeeded';
    row.cost_nanos = 5;
    for (let i = 0; i < 2; i++) {
      const deltas = new RollupDeltas();
      deltas.change(undefined, row);
      await t.ctx.db.kysely.transaction().execute((trx) => deltas.flush(trx, t.ctx.db));
    }
    const stored = await t.ctx.db.kysely
      .selectFrom('run_rollups_daily')
      .select(['runs', 'cost_nanos'])
      .where('agent_id', '=', 'flush-agent')
      .executeTakeFirstOrThrow();
    expect({ runs: Number(stored.runs), cost: Number(stored.cost_nanos) }).toEqual({
      runs: 2,
      cost: 10,
    });
  });
});
