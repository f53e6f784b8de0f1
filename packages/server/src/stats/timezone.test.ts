import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StatsResponse } from '@runlog/core';
import { describeEachDb, createTestApp, json, type TestApp } from '../../test/harness.js';
import { durationBin } from './rollup.js';
import { computeStats, percentile, rangePieces } from './stats.service.js';
import { daySources, localDays } from './local-days.js';

const HOUR = 3_600_000;
const at = (iso: string) => Date.parse(iso);
const LA = 'America/Los_Angeles';

/** The calendar date a zone's clocks show at `ms` (computed apart from the server's code). */
function dateIn(zone: string, ms: number): string {
  return new Intl.DateTimeFormat('en-CA', {
    timeZone: zone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
  }).format(ms);
}

function run(id: string, agent: string, start: number, duration: number): unknown {
  return {
    type: 'run.end',
    run: {
      id,
      agent_id: agent,
      status: 'succeeded',
      started_at: start,
      ended_at: start + duration,
    },
  };
}

/** Runs on either side of Los Angeles' midnights, 6 to 9 March 2026 (clocks forward on the 8th). */
const EDGES: [iso: string, day: string, ms: number][] = [
  ['2026-03-07T07:59:00Z', '2026-03-06', 100], // 23:59 PST
  ['2026-03-07T08:00:00Z', '2026-03-07', 200], // 00:00 PST
  ['2026-03-08T07:30:00Z', '2026-03-07', 300], // 23:30 PST
  ['2026-03-08T08:10:00Z', '2026-03-08', 4000], // 00:10 PST, the day of 23 hours
  ['2026-03-09T06:30:00Z', '2026-03-08', 5000], // 23:30 PDT
  ['2026-03-09T06:59:00Z', '2026-03-08', 6000], // 23:59 PDT
  ['2026-03-09T07:05:00Z', '2026-03-09', 700], // 00:05 PDT
  ['2026-03-10T07:30:00Z', '2026-03-10', 800], // after the range
];

/** Deterministic pseudo-random numbers in [0, 1). */
function random(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1_103_515_245 + 12_345) % 2_147_483_648;
    return s / 2_147_483_648;
  };
}

/** 400 runs over 1–16 November 2026 (clocks back on the 1st in Los Angeles): time, duration. */
const SPREAD: [number, number][] = (() => {
  const next = random(7);
  const start = at('2026-11-01T00:00:00Z');
  return Array.from({ length: 400 }, () => [
    start + Math.floor(next() * 15 * 24 * 60) * 60_000,
    Math.round(10 + next() * next() * 60_000),
  ]);
})();

describeEachDb('GET /runs/stats in a time zone', (dialect) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(dialect);
    const events = [
      ...EDGES.map(([iso, , ms], i) => run(`tz-edge-${i}`, 'tz-la', at(iso), ms)),
      // Kolkata (+5:30): 23:50 on 7 May, then 00:10 and 00:35 on 8 May
      run('tz-in-0', 'tz-in', at('2026-05-07T18:20:00Z'), 100),
      run('tz-in-1', 'tz-in', at('2026-05-07T18:40:00Z'), 100),
      run('tz-in-2', 'tz-in', at('2026-05-07T19:05:00Z'), 100),
      ...SPREAD.map(([start, ms], i) => run(`tz-spread-${i}`, `tz-spread-${i % 3}`, start, ms)),
    ];
    for (let i = 0; i < events.length; i += 500) {
      const res = await t.request('POST', '/api/v1/ingest', { events: events.slice(i, i + 500) });
      expect(res.statusCode, res.body).toBe(200);
    }
  });
  afterAll(async () => {
    await t.close();
  });

  const stats = async (qs: string) => {
    const res = await t.request('GET', `/api/v1/runs/stats?${qs}`);
    expect(res.statusCode, res.body).toBe(200);
    return json<StatsResponse>(res);
  };
  const laWeek = `from=${encodeURIComponent('2026-03-06T12:00:00-08:00')}&to=${encodeURIComponent('2026-03-09T12:00:00-07:00')}&bucket=day`;

  it('cuts days at local midnight, the day the clocks go forward 23 hours long', async () => {
    for (const scope of ['&agent_id=tz-la', '']) {
      const s = await stats(`${laWeek}&tz=${LA}${scope}`);
      expect(s.bucket).toBe('day');
      expect([s.from, s.to]).toEqual(['2026-03-06T08:00:00.000Z', '2026-03-10T07:00:00.000Z']);
      expect(s.series.map((p) => p.t)).toEqual([
        '2026-03-06T08:00:00.000Z',
        '2026-03-07T08:00:00.000Z',
        '2026-03-08T08:00:00.000Z',
        '2026-03-09T07:00:00.000Z',
      ]);
      const days = ['2026-03-06', '2026-03-07', '2026-03-08', '2026-03-09'];
      expect(s.series.map((p) => p.runs)).toEqual(
        days.map((d) => EDGES.filter(([, day]) => day === d).length),
      );
      expect(s.series.map((p) => p.runs)).toEqual([1, 2, 3, 1]);
      expect(s.totals.runs).toBe(7);
      expect(s.by_agent).toMatchObject([{ agent_id: 'tz-la', runs: 7 }]);
      // each day's percentiles are those of its own runs' durations
      expect(s.series.map((p) => [p.p50_duration_ms, p.p95_duration_ms])).toEqual(
        days.map((d) => {
          const bins = new Map<number, number>();
          for (const [, day, ms] of EDGES)
            if (day === d) bins.set(durationBin(ms), (bins.get(durationBin(ms)) ?? 0) + 1);
          return [percentile(bins, 0.5), percentile(bins, 0.95)];
        }),
      );
      expect(s.series[2]!.p50_duration_ms).toBeGreaterThan(4500);
    }
  });

  it('ends at a to on a local midnight, and takes a from inside a day to its midnight', async () => {
    const s = await stats(
      `from=${at('2026-03-07T20:00:00Z')}&to=${at('2026-03-09T07:00:00Z')}&bucket=day&tz=${LA}&agent_id=tz-la`,
    );
    expect([s.from, s.to]).toEqual(['2026-03-07T08:00:00.000Z', '2026-03-09T07:00:00.000Z']);
    expect(s.series.map((p) => [p.t, p.runs])).toEqual([
      ['2026-03-07T08:00:00.000Z', 2],
      ['2026-03-08T08:00:00.000Z', 3],
    ]);
  });

  it('still answers UTC days without a zone, and the same with tz=UTC', async () => {
    const utc = await stats(laWeek);
    expect(utc.series.map((p) => [p.t.slice(0, 10), p.runs])).toEqual([
      ['2026-03-06', 0],
      ['2026-03-07', 2],
      ['2026-03-08', 2],
      ['2026-03-09', 3],
    ]);
    expect(await stats(`${laWeek}&tz=UTC`)).toEqual(utc);
    // a zone that shows UTC over the whole range reads as UTC (London in winter)
    expect(await stats(`${laWeek}&tz=Europe/London`)).toEqual(utc);
  });

  it('leaves hour buckets as they are', async () => {
    const hours = `from=${at('2026-03-08T06:00:00Z')}&to=${at('2026-03-08T12:00:00Z')}&bucket=hour`;
    const plain = await stats(hours);
    expect(await stats(`${hours}&tz=${LA}`)).toEqual(plain);
    expect(await stats(`${hours}&tz=Asia/Kolkata`)).toEqual(plain);
    expect(plain.series.map((p) => p.runs)).toEqual([0, 1, 1, 0, 0, 0]);
  });

  it('puts each run of two weeks in its local day, over the day the clocks go back', async () => {
    const from = at('2026-11-01T12:00:00Z');
    const to = at('2026-11-15T12:00:00Z');
    for (const zone of [LA, 'Asia/Tokyo', 'Asia/Kathmandu', 'Australia/Lord_Howe']) {
      const s = await stats(`from=${from}&to=${to}&bucket=day&tz=${zone}`);
      // a day of 25 hours in Los Angeles on 1 November
      const lengths = s.series.map((p, i) =>
        i + 1 < s.series.length ? Date.parse(s.series[i + 1]!.t) - Date.parse(p.t) : null,
      );
      if (zone === LA) expect(lengths[0]).toBe(25 * HOUR);
      const expected = new Map<string, { runs: number; bins: Map<number, number> }>();
      for (const p of s.series) {
        expect(dateIn(zone, Date.parse(p.t))).not.toBe(dateIn(zone, Date.parse(p.t) - 1));
        expected.set(dateIn(zone, Date.parse(p.t)), { runs: 0, bins: new Map() });
      }
      for (const [start, ms] of SPREAD) {
        // Kathmandu's days hold the UTC hours starting within them (to whole hours)
        const counted = zone === 'Asia/Kathmandu' ? Math.floor(start / HOUR) * HOUR : start;
        if (counted < Date.parse(s.from) || counted >= Date.parse(s.to)) continue;
        const day = expected.get(dateIn(zone, counted))!;
        day.runs++;
        day.bins.set(durationBin(ms), (day.bins.get(durationBin(ms)) ?? 0) + 1);
      }
      expect(
        s.series.map((p) => [p.runs, p.p50_duration_ms, p.p95_duration_ms]),
        zone,
      ).toEqual(
        [...expected.values()].map((d) => [
          d.runs,
          percentile(d.bins, 0.5),
          percentile(d.bins, 0.95),
        ]),
      );
      expect(s.totals.runs).toBe(s.series.reduce((n, p) => n + p.runs, 0));
      expect(s.by_agent.reduce((n, a) => n + a.runs, 0)).toBe(s.totals.runs);
    }
  });

  it('counts a run in the local day its UTC hour starts in where the zone is off by half an hour', async () => {
    const s = await stats(
      `agent_id=tz-in&from=${at('2026-05-07T12:00:00Z')}&to=${at('2026-05-08T12:00:00Z')}&bucket=day&tz=Asia/Kolkata`,
    );
    // 00:10 on 8 May comes in the 7th: its UTC hour (18:00) began at 23:30 on the 7th
    expect(s.series.map((p) => [p.t, p.runs])).toEqual([
      ['2026-05-06T18:30:00.000Z', 2],
      ['2026-05-07T18:30:00.000Z', 1],
    ]);
  });

  it('reads 30 local days back from today without a from', async () => {
    const s = await stats(`tz=${LA}&agent_id=tz-la`);
    expect(s.bucket).toBe('day');
    expect(s.series).toHaveLength(31);
    const now = Date.now();
    expect(dateIn(LA, Date.parse(s.to) - 1)).toBe(dateIn(LA, now));
    expect(dateIn(LA, Date.parse(s.from))).toBe(dateIn(LA, Date.parse(s.series[0]!.t)));
    for (const p of s.series)
      expect(dateIn(LA, Date.parse(p.t))).not.toBe(dateIn(LA, Date.parse(p.t) - 1));
  });

  it('answers the same with its reads spread over readers as on the connection itself', async () => {
    const db = t.ctx.db;
    const query = { from: at('2026-11-01T12:00:00Z'), to: at('2026-11-15T12:00:00Z'), tz: LA };
    const now = at('2026-12-01T00:00:00Z');
    const spread = await computeStats(db, 'default', query, now);
    const single = await computeStats({ ...db, readers: undefined }, 'default', query, now);
    expect(spread).toEqual(single);
    expect(spread.series).toHaveLength(15);
  });

  it('rejects a zone it does not know with a 400 naming tz', async () => {
    for (const tz of ['Mars/Olympus', 'America/Los Angeles', 'x'.repeat(101)]) {
      const res = await t.request(
        'GET',
        `/api/v1/runs/stats?bucket=day&tz=${encodeURIComponent(tz)}`,
      );
      expect(res.statusCode, tz).toBe(400);
      const fields = json<{ error: { details: { field: string }[] } }>(res).error.details.map(
        (d) => d.field,
      );
      expect(fields, tz).toEqual(['query.tz']);
    }
  });
});

describe('the rollup rows a range reads', () => {
  const DAY = 24 * HOUR;
  const hoursRead = (pieces: { grain: string; from: number; to: number }[]) =>
    pieces.filter((p) => p.grain === 'hour').reduce((n, p) => n + (p.to - p.from) / HOUR, 0);

  it('whole UTC days are one daily piece', () => {
    const d = at('2026-11-01T00:00:00Z');
    expect(rangePieces(d, d + 30 * DAY)).toEqual([
      { grain: 'day', from: d, to: d + 30 * DAY, sign: 1 },
    ]);
  });

  it('edges near a UTC midnight are its day with hours taken away or added', () => {
    // Los Angeles' 30 days (midnight at 08:00 UTC): 8 hours less at the start, 8 more at the end
    const la = at('2026-11-02T08:00:00Z');
    expect(rangePieces(la, la + 30 * DAY)).toEqual([
      { grain: 'day', from: la - 8 * HOUR, to: la + 30 * DAY - 8 * HOUR, sign: 1 },
      { grain: 'hour', from: la - 8 * HOUR, to: la, sign: -1 },
      { grain: 'hour', from: la + 30 * DAY - 8 * HOUR, to: la + 30 * DAY, sign: 1 },
    ]);
    // Berlin's (23:00 UTC): an hour more at the start, one less at the end
    const berlin = at('2026-11-01T23:00:00Z');
    expect(hoursRead(rangePieces(berlin, berlin + 30 * DAY))).toBe(2);
  });

  it('a range shorter than its hours would read by day is read by the hour', () => {
    const d = at('2026-11-01T06:00:00Z');
    expect(rangePieces(d, d + 12 * HOUR)).toEqual([
      { grain: 'hour', from: d, to: d + 12 * HOUR, sign: 1 },
    ]);
  });

  it("a zone's day is its nearest UTC day corrected by the hours between", () => {
    // 7 and 8 March 2026 in Los Angeles: the 8th is 23 hours long (clocks forward)
    const days = localDays(LA, Date.UTC(2026, 2, 7) / DAY, Date.UTC(2026, 2, 9) / DAY);
    const { daily, hourly } = daySources(days);
    const d7 = Date.UTC(2026, 2, 7);
    expect(daily).toEqual([
      { day: d7, t: 0 },
      { day: d7 + DAY, t: 1 },
    ]);
    expect(hourly).toEqual([
      { lo: d7, hi: d7 + 8 * HOUR, t: 0, sign: -1 },
      { lo: d7 + DAY, hi: d7 + DAY + 8 * HOUR, t: 0, sign: 1 },
      { lo: d7 + DAY, hi: d7 + DAY + 8 * HOUR, t: 1, sign: -1 },
      { lo: d7 + 2 * DAY, hi: d7 + 2 * DAY + 7 * HOUR, t: 1, sign: 1 },
    ]);
  });
});
