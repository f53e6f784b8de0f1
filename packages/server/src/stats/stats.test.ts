import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StatsResponse } from '@runlog/core';
import { describeEachDb, createTestApp, json, type TestApp } from '../../test/harness.js';
import { binValue, durationBin } from './rollup.js';
import { computeStats, percentile } from './stats.service.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const H0 = Date.parse('2026-02-10T10:00:00.000Z');
const TRIGGERS = ['manual', 'schedule', 'api', 'retry'] as const;
const A_STATUSES = [
  'succeeded',
  'succeeded',
  'succeeded',
  'succeeded',
  'succeeded',
  'succeeded',
  'failed',
  'failed',
  'timed_out',
  'cancelled',
];

/** st-a: ten finished runs of 1..10 s, five in H0 and five in H0+2h, each with one priced LLM step. */
function events() {
  const out: unknown[] = [];
  A_STATUSES.forEach((status, i) => {
    const start = (i < 5 ? H0 : H0 + 2 * HOUR) + i * 60_000;
    const id = `st-a-${i}`;
    out.push(
      {
        type: 'run.start',
        run: { id, agent_id: 'st-a', trigger: TRIGGERS[i % 4], started_at: start },
      },
      {
        type: 'step.end',
        step: {
          id: `${id}-s`,
          run_id: id,
          type: 'llm',
          status: 'succeeded',
          input_tokens: 100,
          output_tokens: 50,
          cost_usd: 0.002,
          started_at: start,
          ended_at: start + 10,
        },
      },
      { type: 'run.end', run: { id, status, ended_at: start + (i + 1) * 1000 } },
    );
  });
  out.push(
    {
      type: 'run.end',
      run: {
        id: 'st-b-0',
        agent_id: 'st-b',
        trigger: 'api',
        status: 'succeeded',
        started_at: H0 + 30 * 60_000,
        ended_at: H0 + 30 * 60_000 + 500,
      },
    },
    {
      type: 'run.start',
      run: { id: 'st-b-1', agent_id: 'st-b', trigger: 'api', started_at: H0 + 2 * HOUR + 5 },
    },
    // outside every range below but the widest
    {
      type: 'run.end',
      run: {
        id: 'st-old',
        agent_id: 'st-a',
        trigger: 'api',
        status: 'failed',
        started_at: H0 - 3 * DAY,
        ended_at: H0 - 3 * DAY + 100,
      },
    },
  );
  return out;
}

describe('percentile', () => {
  it('answers the bin middle for a single run and null for no runs', () => {
    const bin = durationBin(5000);
    expect(percentile(new Map([[bin, 1]]), 0.5)).toBe(binValue(bin));
    expect(percentile(new Map(), 0.5)).toBeNull();
  });

  it('lands within the bin error of the exact quantile', () => {
    const bins = new Map<number, number>();
    for (let ms = 100; ms <= 10_000; ms += 100) {
      const b = durationBin(ms);
      bins.set(b, (bins.get(b) ?? 0) + 1);
    }
    expect(Math.abs(percentile(bins, 0.5)! - 5000) / 5000).toBeLessThan(0.1);
    expect(Math.abs(percentile(bins, 0.95)! - 9500) / 9500).toBeLessThan(0.1);
  });

  it('stays within 5% when every run took the same time, and answers 0 for runs under 1 ms', () => {
    const same = new Map([[durationBin(6500), 40]]);
    for (const q of [0.5, 0.95]) {
      expect(Math.abs(percentile(same, q)! - 6500) / 6500).toBeLessThanOrEqual(0.05);
    }
    expect(percentile(same, 0.95)).toBe(percentile(same, 0.5));
    const instant = new Map([[durationBin(0), 3]]);
    expect([percentile(instant, 0.5), percentile(instant, 0.95)]).toEqual([0, 0]);
  });

  it('stays within 5% of every whole-millisecond duration, short ones too', () => {
    const off: number[] = [];
    for (let ms = 1; ms <= 100_000; ms++) {
      const p = percentile(new Map([[durationBin(ms), 1]]), 0.5)!;
      if (Math.abs(p - ms) / ms > 0.05) off.push(ms);
    }
    expect(off).toEqual([]);
  });
});

describeEachDb('GET /runs/stats', (dialect) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(dialect);
    const res = await t.request('POST', '/api/v1/ingest', { events: events() });
    expect(res.statusCode, res.body).toBe(200);
  });
  afterAll(async () => {
    await t.close();
  });

  const stats = async (qs: string) => {
    const res = await t.request('GET', `/api/v1/runs/stats?${qs}`);
    expect(res.statusCode, res.body).toBe(200);
    return json<StatsResponse>(res);
  };
  const range = `from=${new Date(H0).toISOString()}&to=${H0 + 3 * HOUR}`;

  it('totals runs by status and trigger with fail rate, durations, tokens and cost', async () => {
    const s = await stats(range);
    expect(s.bucket).toBe('hour');
    expect(s.totals).toMatchObject({
      runs: 12,
      by_status: { queued: 0, running: 1, succeeded: 7, failed: 2, cancelled: 1, timed_out: 1 },
      by_trigger: { manual: 3, schedule: 3, api: 4, retry: 2 },
      input_tokens: 1000,
      output_tokens: 500,
      total_tokens: 1500,
    });
    expect(s.totals.fail_rate).toBeCloseTo(3 / 11, 10);
    expect(s.totals.avg_duration_ms).toBeCloseTo(55_500 / 11, 6);
    expect(s.totals.cost_usd).toBeCloseTo(0.02, 9);
    // 11 finished durations: 500, 1000, ..., 10000 → median 5000, p95 near 10000 (±10% bins)
    expect(Math.abs(s.totals.p50_duration_ms! - 5000) / 5000).toBeLessThan(0.1);
    expect(Math.abs(s.totals.p95_duration_ms! - 10_000) / 10_000).toBeLessThan(0.1);
  });

  it('answers p50 and p95 within 5% for runs of a few milliseconds', async () => {
    const at = H0 + 20 * DAY;
    const res = await t.request('POST', '/api/v1/ingest', {
      events: [13, 13, 13].map((ms, i) => ({
        type: 'run.end',
        run: {
          id: `st-ms-${i}`,
          agent_id: 'st-ms',
          status: 'succeeded',
          started_at: at,
          ended_at: at + ms,
        },
      })),
    });
    expect(res.statusCode, res.body).toBe(200);
    const s = await stats(`agent_id=st-ms&from=${at}&to=${at + HOUR}`);
    for (const p of [
      s.totals.p50_duration_ms,
      s.totals.p95_duration_ms,
      s.series[0]!.p50_duration_ms,
    ])
      expect(Math.abs(p! - 13) / 13).toBeLessThanOrEqual(0.05);
  });

  it('breaks the totals down by agent, most runs first', async () => {
    const s = await stats(range);
    expect(s.by_agent.map((a) => [a.agent_id, a.runs])).toEqual([
      ['st-a', 10],
      ['st-b', 2],
    ]);
    const a = s.by_agent[0]!;
    expect(a.fail_rate).toBeCloseTo(3 / 10, 10);
    expect(a.avg_duration_ms).toBe(5500);
    expect(a.cost_usd).toBeCloseTo(0.02, 9);
    const b = s.by_agent[1]!;
    expect(b).toMatchObject({ total_tokens: 0, avg_duration_ms: 500, fail_rate: 0 });
    expect(b.by_status).toMatchObject({ running: 1, succeeded: 1 });
  });

  it('answers the same with its reads spread over readers as on the connection itself', async () => {
    const db = t.ctx.db;
    const query = { from: H0 - DAY, to: H0 + 3 * DAY };
    const now = H0 + 3 * DAY;
    const spread = await computeStats(db, 'default', query, now);
    const single = await computeStats({ ...db, readers: undefined }, 'default', query, now);
    expect(spread).toEqual(single);
    // both agents' percentiles, read by different readers on SQLite (each half of the agents)
    expect(spread.by_agent.map((a) => a.agent_id)).toEqual(['st-a', 'st-b']);
    expect(Math.abs(spread.by_agent[0]!.p50_duration_ms! - 5500) / 5500).toBeLessThan(0.1);
    expect(Math.abs(spread.by_agent[1]!.p50_duration_ms! - 500) / 500).toBeLessThan(0.1);
  });

  it('gives a zero-filled hourly series that adds up to the totals', async () => {
    const s = await stats(range);
    expect(s.series.map((p) => [p.t, p.runs])).toEqual([
      ['2026-02-10T10:00:00.000Z', 6],
      ['2026-02-10T11:00:00.000Z', 0],
      ['2026-02-10T12:00:00.000Z', 6],
    ]);
    const [first, empty, last] = s.series;
    expect(first?.by_status).toMatchObject({ succeeded: 6, failed: 0 });
    expect(first?.fail_rate).toBe(0);
    expect(first?.total_tokens).toBe(750);
    expect(empty).toMatchObject({
      fail_rate: null,
      avg_duration_ms: null,
      p50_duration_ms: null,
      total_tokens: 0,
      cost_usd: 0,
    });
    expect(last?.by_status).toMatchObject({
      running: 1,
      succeeded: 1,
      failed: 2,
      timed_out: 1,
      cancelled: 1,
    });
    expect(last?.fail_rate).toBeCloseTo(3 / 5, 10);
    expect(last?.p50_duration_ms).toBeGreaterThan(7000 * 0.9);
  });

  it('filters by agent', async () => {
    const s = await stats(`${range}&agent_id=st-b`);
    expect(s.totals.runs).toBe(2);
    expect(s.by_agent.map((a) => a.agent_id)).toEqual(['st-b']);
    const both = await stats(`${range}&agent_id=st-a,st-b`);
    expect(both.totals.runs).toBe(12);
  });

  it('floors from and ceils to the hour, and buckets by UTC day over longer ranges', async () => {
    const hourly = await stats(`from=${H0 + 15 * 60_000}&to=${H0 + 2 * HOUR + 1}`);
    expect([hourly.from, hourly.to]).toEqual([
      '2026-02-10T10:00:00.000Z',
      '2026-02-10T13:00:00.000Z',
    ]);
    const daily = await stats(`from=${H0 - 4 * DAY}&to=${H0 + 3 * HOUR}`);
    expect(daily.bucket).toBe('day');
    expect(daily.series.map((p) => p.t)).toEqual([
      '2026-02-06T00:00:00.000Z',
      '2026-02-07T00:00:00.000Z',
      '2026-02-08T00:00:00.000Z',
      '2026-02-09T00:00:00.000Z',
      '2026-02-10T00:00:00.000Z',
    ]);
    expect(daily.series.map((p) => p.runs)).toEqual([0, 1, 0, 0, 12]);
    expect(daily.totals.runs).toBe(13);
    const forcedHours = await stats(`from=${H0 - 4 * DAY}&to=${H0}&bucket=hour`);
    expect(forcedHours.series).toHaveLength(96);
  });

  it('defaults to the last 30 days by day', async () => {
    const s = await stats('');
    expect(s.bucket).toBe('day');
    const span = Date.parse(s.to) - Date.parse(s.from);
    expect(span).toBeGreaterThanOrEqual(30 * DAY);
    // day buckets cover whole UTC days
    expect(span).toBeLessThanOrEqual(31 * DAY);
    expect(Date.parse(s.from) % DAY).toBe(0);
    expect(Date.parse(s.to) % DAY).toBe(0);
    expect(s.series.length).toBeGreaterThanOrEqual(30);
  });

  it("gives each bucket of a long series the percentiles of its own runs' durations", async () => {
    // 60 hours far from the other runs, each with its own spread of durations: the series is
    // read in two halves by the readers on SQLite, and its percentiles found in SQL
    const start = H0 + 40 * DAY;
    const hours = 60;
    const expected: [p50: number | null, p95: number | null][] = [];
    const events: unknown[] = [];
    for (let h = 0; h < hours; h++) {
      const bins = new Map<number, number>();
      const n = h % 9; // some hours have no runs at all
      for (let j = 0; j < n; j++) {
        const duration = (j * j + 1) * 37 * (h + 1);
        const at = start + h * HOUR + j * 1000;
        bins.set(durationBin(duration), (bins.get(durationBin(duration)) ?? 0) + 1);
        events.push({
          type: 'run.end',
          run: {
            id: `st-series-${h}-${j}`,
            agent_id: `st-series-${j % 2}`,
            status: 'succeeded',
            started_at: at,
            ended_at: at + duration,
          },
        });
      }
      expected.push([percentile(bins, 0.5), percentile(bins, 0.95)]);
    }
    const res = await t.request('POST', '/api/v1/ingest', { events });
    expect(res.statusCode, res.body).toBe(200);
    const window = `from=${start}&to=${start + hours * HOUR}&bucket=hour`;
    for (const scope of ['', '&agent_id=st-series-0,st-series-1']) {
      const s = await stats(`${window}${scope}`);
      expect(s.series).toHaveLength(hours);
      expect(s.series.map((p) => [p.p50_duration_ms, p.p95_duration_ms])).toEqual(expected);
    }
  });

  it('rejects bad input with a 400 naming the field', async () => {
    const cases: [string, string][] = [
      ['bucket=week', 'query.bucket'],
      ['from=last-tuesday', 'query.from'],
      [`from=${H0}&to=${H0 - HOUR}`, 'query.to'],
      // no `to`: the `from` past now is the field at fault, not the `to` never given
      [`from=${Date.now() + DAY}`, 'query.from'],
      [`from=0&to=${H0}&bucket=hour`, 'query.bucket'],
      ['agent_id=bad id', 'query.agent_id'],
    ];
    for (const [qs, field] of cases) {
      const res = await t.request('GET', `/api/v1/runs/stats?${qs}`);
      expect(res.statusCode, qs).toBe(400);
      const fields = json<{ error: { details: { field: string }[] } }>(res).error.details.map((d) =>
        d.field.replace(/\.\d+$/, ''),
      );
      expect(fields, qs).toContain(field);
    }
  });

  it('holds made-up costs within the columns instead of failing the writes', async () => {
    // 10,000 steps of $1,000,000 in each of two runs, a day apart: past a 64-bit column
    const day0 = Date.parse('2026-05-01T00:00:00.000Z');
    for (const [d, id] of [
      [0, 'st-huge-0'],
      [1, 'st-huge-1'],
    ] as const) {
      const at = day0 + d * DAY + HOUR;
      for (let b = 0; b < 10; b++) {
        const events = Array.from({ length: 1000 }, (_, i) => ({
          type: 'step.end',
          step: { id: `s${b}-${i}`, run_id: id, type: 'llm', cost_usd: 1_000_000 },
        }));
        if (b === 0)
          events.unshift({
            type: 'run.start',
            run: { id, agent_id: 'st-huge', started_at: at },
          } as never);
        const res = await t.request('POST', '/api/v1/ingest', { events: events.slice(0, 1000) });
        expect(res.statusCode, res.body).toBe(200);
        if (b === 0) {
          const rest = await t.request('POST', '/api/v1/ingest', { events: events.slice(1000) });
          expect(rest.statusCode, rest.body).toBe(200);
        }
      }
    }
    const run = json<{ cost_usd: number }>(await t.request('GET', '/api/v1/runs/st-huge-0'));
    expect(run.cost_usd).toBe(9.2e9);
    const s = await stats(`agent_id=st-huge&from=${day0}&to=${day0 + 2 * DAY}&bucket=day`);
    expect(s.totals.cost_usd).toBe(18.4e9);
    expect(s.series.map((p) => p.cost_usd)).toEqual([9.2e9, 9.2e9]);
  });
});
