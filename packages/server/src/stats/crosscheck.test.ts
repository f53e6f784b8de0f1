import { PassThrough, Readable } from 'node:stream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  FAILED_RUN_STATUSES,
  TERMINAL_RUN_STATUSES,
  computeCostNanos,
  findPrice,
  modelCall,
  usdToNanos,
  type AgentSummary,
  type IngestEvent,
  type Run,
  type Score,
  type StatsResponse,
  type StatsTotals,
  type Step,
  type ThreadSummary,
} from '@runlog/core';
import { createTestApp, describeEachDb, json, type TestApp } from '../../test/harness.js';
import { listAgentSummaries } from '../agents/agents.service.js';
import { exportRuns } from '../export/export.js';
import { importRuns } from '../export/import.js';
import { purgeEndedBefore } from '../retention/purge.js';
import { sweepOnce } from '../control/sweeper.js';
import { DAY_MS, HOUR_MS, durationBin, hourOf } from './rollup.js';
import { percentile } from './stats.service.js';

/**
 * A randomized cross-check of every figure the write path keeps in rollups (the stats, the
 * agents' 24 h counts, run totals, threads, scores) against a plain recomputation from the
 * runs and steps read back through the API. Seeded: the same events every time.
 */

/** Another seed: `CROSSCHECK_SEED=7 npx vitest run packages/server/src/stats/crosscheck.test.ts`. */
const SEED = Number(process.env.CROSSCHECK_SEED ?? 0x5eed_2026);
/** Around Europe's spring DST change (2026-03-29 01:00 UTC): a day boundary like any other in UTC. */
const T0 = Date.parse('2026-03-28T18:00:00.000Z');
const N_RUNS = 260;
const AGENTS = ['a1', 'a2', 'a3', 'a4'];
const MODELS = ['gpt-4o', 'gpt-4o-mini', 'claude-3-5-haiku', 'house-model', 'no-price-model'];
/** `house-model` is priced by the project's override (set before any event). */
const HOUSE_PRICE = { input: 7, output: 21 };

/** Of `counted`, the failed and timed-out runs that no run of `all` retries. */
function notRetried(counted: readonly Run[], all: readonly Run[]): number {
  const retried = new Set(all.flatMap((r) => (r.retry_of === null ? [] : [r.retry_of])));
  return counted.filter(
    (r) => (FAILED_RUN_STATUSES as readonly string[]).includes(r.status) && !retried.has(r.id),
  ).length;
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Generated {
  /** Recording events, each run's in its own order (shuffled across runs later). */
  events: IngestEvent[];
  /** Steps whose cost the server computes from the price table (no cost given). */
  priced: Set<string>;
}

function generate(rand: () => number): Generated {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const events: IngestEvent[] = [];
  const priced = new Set<string>();
  for (let i = 0; i < N_RUNS; i++) {
    const id = `x-${i}`;
    const agent = pick(AGENTS);
    const trigger = pick(['manual', 'schedule', 'api', 'retry'] as const);
    // spread over five days, to the millisecond: hours and days cut anywhere
    const start = T0 - 2 * DAY_MS + Math.floor(rand() * 5 * DAY_MS);
    const duration = Math.floor(Math.exp(rand() * Math.log(600_000)));
    const thread = rand() < 0.5 ? `t-${Math.floor(rand() * 25)}` : undefined;
    const queued = rand() < 0.15;
    const own: IngestEvent[] = [];
    own.push({
      type: 'run.start',
      run: {
        id,
        agent_id: agent,
        trigger,
        started_at: start,
        ...(queued ? { queued_at: start - Math.floor(rand() * 2 * HOUR_MS) } : {}),
        ...(thread ? { thread_id: thread, user_id: `u-${thread}` } : {}),
      },
    });
    // a start moved after it was counted (an agent correcting its clock), into another hour
    if (rand() < 0.15)
      own.push({
        type: 'run.update',
        run: { id, started_at: start - Math.floor(rand() * 5 * HOUR_MS) },
      });
    const nSteps = Math.floor(rand() * 5);
    for (let s = 0; s < nSteps; s++) {
      const sid = `${id}-s${s}`;
      const sStart = start + s * 10;
      const llm = rand() < 0.7;
      const model = llm ? pick(MODELS) : rand() < 0.1 ? pick(MODELS) : undefined;
      const input = Math.floor(rand() * 5000);
      const output = Math.floor(rand() * 2000);
      const givesCost = rand() < 0.2;
      if (model && !givesCost) priced.add(`${id}/${sid}`);
      const lateUsage = rand() < 0.3;
      own.push({
        type: 'step.start',
        step: {
          id: sid,
          run_id: id,
          type: llm ? 'llm' : 'tool',
          name: `n${s}`,
          started_at: sStart,
          ...(model ? { model } : {}),
        },
      });
      if (lateUsage) {
        // the end first, its usage (or the rest of it) in a later event (an SDK reporting
        // usage after the call)
        const split = rand() < 0.5;
        own.push({
          type: 'step.end',
          step: {
            id: sid,
            run_id: id,
            status: 'succeeded',
            ended_at: sStart + 5,
            ...(split ? { input_tokens: input } : {}),
          },
        });
        own.push({
          type: 'step.end',
          step: {
            id: sid,
            run_id: id,
            input_tokens: input,
            output_tokens: output,
            ...(givesCost ? { cost_usd: 0.001 * (s + 1) } : {}),
          },
        });
      } else {
        own.push({
          type: 'step.end',
          step: {
            id: sid,
            run_id: id,
            status: rand() < 0.1 ? 'failed' : 'succeeded',
            ended_at: sStart + 5,
            input_tokens: input,
            output_tokens: output,
            ...(givesCost ? { cost_usd: 0.001 * (s + 1) } : {}),
          },
        });
      }
    }
    const r = rand();
    if (r < 0.8) {
      const status = pick([
        'succeeded',
        'succeeded',
        'succeeded',
        'failed',
        'timed_out',
        'cancelled',
      ] as const);
      own.push({ type: 'run.end', run: { id, status, ended_at: start + duration } });
      // a late event for a terminal run: another outcome, another agent
      if (rand() < 0.1)
        own.push({
          type: 'run.end',
          run: { id, status: 'failed', agent_id: pick(AGENTS), ended_at: start + 2 * duration },
        });
    }
    events.push(...own);
  }
  return { events, priced };
}

/** Shuffles events across runs, keeping each run's own order only most of the time. */
function shuffle(rand: () => number, events: IngestEvent[]): IngestEvent[] {
  const keyed = events.map((e, i) => ({ e, k: rand() < 0.8 ? i + rand() * 400 : rand() * 1e6 }));
  keyed.sort((a, b) => a.k - b.k);
  return keyed.map((x) => x.e);
}

async function allRuns(t: TestApp): Promise<Run[]> {
  const runs: Run[] = [];
  let cursor: string | null = null;
  do {
    const res = await t.request(
      'GET',
      `/api/v1/runs?limit=97${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
    );
    expect(res.statusCode, res.body).toBe(200);
    const page = json<{ runs: Run[]; next_cursor: string | null }>(res);
    runs.push(...page.runs);
    cursor = page.next_cursor;
  } while (cursor);
  return runs;
}

async function stepsOf(t: TestApp, runId: string): Promise<Step[]> {
  const res = await t.request('GET', `/api/v1/runs/${runId}/steps?limit=500`);
  expect(res.statusCode, res.body).toBe(200);
  return json<{ steps: Step[] }>(res).steps;
}

const ms = (iso: string | null) => (iso === null ? null : Date.parse(iso));
/** The time a run is listed and counted at (`sort_at`): queued, else started, else created. */
const sortAt = (r: Run) => ms(r.queued_at) ?? ms(r.started_at) ?? ms(r.created_at)!;
const nanos = (usd: number) => usdToNanos(usd);

/** How a run's rollups disagree with the sums of its steps, or undefined when they agree. */
function rollupMismatch(r: Run, ss: Step[]): string | undefined {
  const sum = (f: (s: Step) => number) => ss.reduce((n, s) => n + f(s), 0);
  const want = {
    step_count: ss.length,
    error_count: sum((s) => (s.status === 'failed' ? 1 : 0)),
    llm_calls: sum((s) => (s.type === 'llm' ? 1 : 0)),
    tool_calls: sum((s) => (s.type === 'tool' ? 1 : 0)),
    input_tokens: sum((s) => s.input_tokens ?? 0),
    output_tokens: sum((s) => s.output_tokens ?? 0),
    cost_nanos: sum((s) => (s.cost_usd === null ? 0 : nanos(s.cost_usd))),
  };
  const have = {
    step_count: r.step_count,
    error_count: r.error_count,
    llm_calls: r.llm_calls,
    tool_calls: r.tool_calls,
    input_tokens: r.input_tokens,
    output_tokens: r.output_tokens,
    cost_nanos: nanos(r.cost_usd),
  };
  return JSON.stringify(want) === JSON.stringify(have)
    ? undefined
    : `${JSON.stringify(have)} != steps ${JSON.stringify(want)}`;
}

/** The stats figures of a set of runs, recomputed from the rows. */
function expectedTotals(runs: Run[]): Omit<StatsTotals, 'cost_usd'> & { cost_nanos: number } {
  const by_status = { queued: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0, timed_out: 0 };
  const by_trigger = { manual: 0, schedule: 0, api: 0, retry: 0 };
  const durations: number[] = [];
  let input = 0;
  let output = 0;
  let cost = 0;
  for (const r of runs) {
    by_status[r.status] += 1;
    by_trigger[r.trigger] += 1;
    if ((TERMINAL_RUN_STATUSES as readonly string[]).includes(r.status) && r.duration_ms !== null)
      durations.push(r.duration_ms);
    input += r.input_tokens;
    output += r.output_tokens;
    cost += nanos(r.cost_usd);
  }
  const failed = FAILED_RUN_STATUSES.reduce((n, s) => n + by_status[s], 0);
  const finished = TERMINAL_RUN_STATUSES.reduce((n, s) => n + by_status[s], 0);
  const bins = new Map<number, number>();
  for (const d of durations) bins.set(durationBin(d), (bins.get(durationBin(d)) ?? 0) + 1);
  return {
    runs: runs.length,
    by_status,
    by_trigger,
    fail_rate: finished > 0 ? failed / finished : null,
    avg_duration_ms:
      durations.length > 0 ? durations.reduce((a, b) => a + b, 0) / durations.length : null,
    p50_duration_ms: percentile(bins, 0.5),
    p95_duration_ms: percentile(bins, 0.95),
    input_tokens: input,
    output_tokens: output,
    total_tokens: input + output,
    cost_nanos: cost,
  };
}

/** The exact nearest-rank quantile the docs' ±5% is about. */
function exactQuantile(values: number[], q: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!;
}

/** A stats figure set as compared: money in nano-USD, means rounded past float noise. */
function comparable<T extends Pick<StatsTotals, 'cost_usd' | 'avg_duration_ms' | 'fail_rate'>>(
  t: T,
) {
  const { cost_usd, avg_duration_ms, fail_rate, ...rest } = t;
  return {
    ...rest,
    cost_nanos: nanos(cost_usd),
    avg_duration_ms: avg_duration_ms === null ? null : Math.round(avg_duration_ms * 1000),
    fail_rate: fail_rate === null ? null : Math.round(fail_rate * 1e9),
  };
}

function comparableExpected(e: ReturnType<typeof expectedTotals>) {
  return {
    ...e,
    avg_duration_ms: e.avg_duration_ms === null ? null : Math.round(e.avg_duration_ms * 1000),
    fail_rate: e.fail_rate === null ? null : Math.round(e.fail_rate * 1e9),
  };
}

describeEachDb('stats cross-check', (dialect) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(dialect);
  });
  afterAll(async () => {
    await t.close();
  });

  it('every rollup answers what a recount of the runs and steps read back gives', async () => {
    const rand = mulberry32(SEED);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const put = await t.request('PUT', '/api/v1/prices/house-model', {
      input_per_mtok: HOUSE_PRICE.input,
      output_per_mtok: HOUSE_PRICE.output,
    });
    expect(put.statusCode, put.body).toBe(200);

    // another project recording runs of the same ids, without the price override: nothing of
    // it may show in this one's figures
    const other = await t.request('POST', '/api/v1/projects', { id: 'other', name: 'Other' });
    expect(other.statusCode, other.body).toBe(201);
    const otherKey = json<{ admin_key: { key: string } }>(other).admin_key.key;

    const { events, priced } = generate(rand);
    const shuffled = shuffle(rand, events);
    const ids = Array.from({ length: N_RUNS }, (_, i) => `x-${i}`);
    let deleted = 0;
    let sent = 0;
    let round = 0;
    while (sent < shuffled.length) {
      const size = 1 + Math.floor(rand() * 60);
      const batch = shuffled.slice(sent, sent + size);
      // some batches twice, some of their events twice
      const dup = batch.filter(() => rand() < 0.1);
      if (round % 6 === 5) {
        // at once, so one group commit holds several batches and control changes between them
        const parts = [batch.slice(0, size / 3), batch.slice(size / 3, (2 * size) / 3)];
        const answers = await Promise.all([
          t.request('POST', '/api/v1/ingest', { events: parts[0] }),
          t.request('DELETE', `/api/v1/runs/${pick(ids)}`),
          t.request('POST', '/api/v1/ingest', { events: [...parts[1]!, ...dup] }),
          t.request('POST', `/api/v1/runs/${pick(ids)}/cancel`),
          t.request('POST', '/api/v1/ingest', { events: batch.slice((2 * size) / 3) }),
        ]);
        if (answers[1]!.statusCode === 204) deleted += 1;
      } else {
        const res = await t.request('POST', '/api/v1/ingest', { events: [...batch, ...dup] });
        expect([200, 207]).toContain(res.statusCode);
      }
      if (rand() < 0.1) await t.request('POST', '/api/v1/ingest', { events: batch });
      if (round % 2 === 0) await t.request('POST', '/api/v1/ingest', { events: batch }, otherKey);
      sent += size;
      round += 1;
      // control changes between batches: deletes (some of running runs), cancels, retries
      if (round % 3 === 0) {
        const id = pick(ids);
        const del = await t.request('DELETE', `/api/v1/runs/${id}`);
        if (del.statusCode === 204) deleted += 1;
      }
      if (round % 4 === 0) await t.request('POST', `/api/v1/runs/${pick(ids)}/cancel`);
      if (round % 5 === 0) await t.request('POST', `/api/v1/runs/${pick(ids)}/retry`, {});
      if (round % 7 === 0) {
        const agent = pick(AGENTS);
        await t.request('POST', `/api/v1/agents/${agent}/runs`, { trigger: 'manual' });
      }
      if (round % 9 === 0)
        await t.request('POST', '/api/v1/ingest', {
          events: [
            {
              type: 'score',
              score: { run_id: pick(ids), name: 'quality', value: Math.floor(rand() * 5) },
            },
            { type: 'score', score: { run_id: pick(ids), name: 'thumb', value: rand() < 0.5 } },
          ],
        });
      if (round === 30) {
        // limits: the sweeper stops a2's running runs over 2 steps
        await t.request('PUT', '/api/v1/agents/a2', { max_steps: 2 });
        await sweepOnce(t.ctx);
      }
      if (round === 40) {
        // leases lapse: every run still running ends timed out (their steps failed); the
        // events still to come reach ended runs
        await sweepOnce(t.ctx, Date.now() + 2 * HOUR_MS);
      }
      if (round === 45) {
        // an agent deleted with its runs while some of its events are still to come
        const res = await t.request('DELETE', '/api/v1/agents/a4');
        expect(res.statusCode, res.body).toBe(204);
      }
      if (round === 20) {
        // retention: the runs that ended over a day before T0
        await purgeEndedBefore(t.ctx.db, { projectId: 'default', before: T0 - DAY_MS });
      }
      if (round === 25) {
        // an export of one agent's runs, imported back with some of them moved 5 hours
        const out = new PassThrough();
        const chunks: Buffer[] = [];
        out.on('data', (c: Buffer) => chunks.push(c));
        await exportRuns(t.ctx.db, { projectId: 'default', format: 'jsonl', agentId: 'a3' }, out);
        out.end();
        const lines = Buffer.concat(chunks)
          .toString('utf8')
          .split('\n')
          .filter((l) => l.trim() !== '')
          .map((l) => JSON.parse(l) as Record<string, unknown>)
          .filter((l) => l.kind === undefined)
          .map((l) => {
            if (rand() >= 0.5) return l;
            const shift = (v: unknown) =>
              typeof v === 'string' ? new Date(Date.parse(v) + 5 * HOUR_MS).toISOString() : v;
            const { sort_at: _s, ...rest } = l;
            return {
              ...rest,
              queued_at: shift(l.queued_at),
              started_at: shift(l.started_at),
              ended_at: shift(l.ended_at),
            };
          });
        const text = lines.map((l) => JSON.stringify(l)).join('\n') + '\n';
        const result = await importRuns(t.ctx.db, Readable.from([text]));
        expect(result.rejected).toBe(0);
      }
    }
    // a worker takes a queued run, which ends failed
    const claim = await t.request('POST', '/api/v1/workers/claim', {
      agents: AGENTS,
      worker_id: 'w1',
    });
    if (claim.statusCode === 200) {
      const claimed = json<{ run?: Run; runs?: Run[] }>(claim);
      const run = claimed.run ?? claimed.runs?.[0];
      if (run)
        await t.request('POST', '/api/v1/ingest', {
          events: [{ type: 'run.end', run: { id: run.id, status: 'failed' } }],
        });
    }

    // ---- read back
    const runs = await allRuns(t);
    const steps = new Map<string, Step[]>();
    for (const r of runs) steps.set(r.id, await stepsOf(t, r.id));

    // each run's totals are its steps' sums, and computed costs are the price table's
    const overrides = new Map([['house-model', HOUSE_PRICE]]);
    const runProblems: string[] = [];
    for (const r of runs) {
      const ss = steps.get(r.id)!;
      const mismatch = rollupMismatch(r, ss);
      if (mismatch) runProblems.push(`${r.id}: ${mismatch}`);
      for (const s of ss) {
        if (!priced.has(`${r.id}/${s.id}`) || s.model === null) continue;
        // no usage arrived (its events went with a deleted run): no cost either
        if (s.input_tokens === null && s.output_tokens === null) continue;
        const price = findPrice(s.model, overrides);
        const expected = price
          ? computeCostNanos(price, {
              inputTokens: s.input_tokens,
              outputTokens: s.output_tokens,
              cachedInputTokens: s.cached_input_tokens,
              reasoningTokens: s.reasoning_tokens,
            })
          : null;
        const got = s.cost_usd === null ? null : nanos(s.cost_usd);
        if (got !== expected)
          runProblems.push(`${r.id}/${s.id} ${s.model}: cost ${got} != price table ${expected}`);
      }
    }
    expect(runProblems).toEqual([]);

    // ---- /runs/stats over ranges that cut hours, whole days, one agent, and everything
    const now = Date.now();
    const queries = [
      `from=${T0 - 2 * DAY_MS}&to=${T0 + 3 * DAY_MS}&bucket=hour`,
      `from=${T0 - 2 * DAY_MS + 1234}&to=${T0 + 3 * DAY_MS - 1}&bucket=day`,
      `from=${T0 + 5.5 * HOUR_MS}&to=${T0 + 7.2 * HOUR_MS}&bucket=hour`,
      `from=${T0 - 7 * HOUR_MS}&to=${T0 + 30 * HOUR_MS}&bucket=hour&agent_id=a1,a3`,
      `from=${T0 - 3 * DAY_MS}&to=${now + DAY_MS}&bucket=day`,
      `from=${T0 - 3 * DAY_MS}&to=${now + DAY_MS}&bucket=day&agent_id=a2`,
      // edges that the nearest UTC days overcount (hours taken away) and undercount
      `from=${T0 - 40 * HOUR_MS}&to=${T0 + 50 * HOUR_MS}&bucket=hour`,
      `from=${T0 - 29 * HOUR_MS}&to=${T0 + 62 * HOUR_MS}&bucket=hour&agent_id=a4`,
      // a zone's days: Berlin's clocks go forward in the range, Kolkata is off by half an hour
      `from=${T0 - 2 * DAY_MS}&to=${T0 + 3 * DAY_MS}&bucket=day&tz=America/Los_Angeles`,
      `from=${T0 - 2 * DAY_MS}&to=${T0 + 3 * DAY_MS}&bucket=day&tz=Europe/Berlin`,
      `from=${T0 - 3 * DAY_MS}&to=${now + DAY_MS}&bucket=day&tz=Asia/Tokyo&agent_id=a1,a2`,
      `from=${T0 - 2 * DAY_MS}&to=${T0 + 2 * DAY_MS}&bucket=day&tz=Asia/Kolkata`,
    ];
    /** A zone's day holds the UTC hours that start in it (Kolkata's, from 00:30). */
    const ceilHour = (ms: number) => Math.ceil(ms / HOUR_MS) * HOUR_MS;
    const within = (r: Run, lo: number, hi: number) =>
      hourOf(sortAt(r)) >= ceilHour(lo) && hourOf(sortAt(r)) < ceilHour(hi);
    for (const q of queries) {
      const res = await t.request('GET', `/api/v1/runs/stats?${q}`);
      expect(res.statusCode, res.body).toBe(200);
      const stats = json<StatsResponse>(res);
      const from = Date.parse(stats.from);
      const to = Date.parse(stats.to);
      const agentFilter = new URLSearchParams(q).get('agent_id')?.split(',');
      const inRange = runs.filter(
        (r) =>
          within(r, from, to) && (agentFilter === undefined || agentFilter.includes(r.agent_id)),
      );
      expect(inRange.length, q).toBeGreaterThan(0);
      expect(comparable(stats.totals), q).toEqual(comparableExpected(expectedTotals(inRange)));
      // the docs' ±5% against the exact quantiles
      const durations = inRange
        .filter(
          (r) =>
            (TERMINAL_RUN_STATUSES as readonly string[]).includes(r.status) &&
            r.duration_ms !== null,
        )
        .map((r) => r.duration_ms!);
      for (const [p, got] of [
        [0.5, stats.totals.p50_duration_ms],
        [0.95, stats.totals.p95_duration_ms],
      ] as const) {
        const exact = exactQuantile(durations, p);
        if (exact === null) expect(got).toBeNull();
        else
          expect(Math.abs(got! - exact), `${q} p${p * 100}`).toBeLessThanOrEqual(
            Math.max(0.05 * exact, 0.5),
          );
      }
      // by agent
      const agents = [...new Set(inRange.map((r) => r.agent_id))].sort();
      expect(stats.by_agent.map((a) => a.agent_id).sort(), q).toEqual(agents);
      for (const a of stats.by_agent)
        expect(comparable(a), `${q} ${a.agent_id}`).toEqual({
          agent_id: a.agent_id,
          ...comparableExpected(expectedTotals(inRange.filter((r) => r.agent_id === a.agent_id))),
        });
      // series
      const bucketMs = stats.bucket === 'day' ? DAY_MS : HOUR_MS;
      // (a zone's days may be 23 or 25 hours long)
      if (!q.includes('tz=')) expect(stats.series.length).toBe((to - from) / bucketMs);
      for (const [i, b] of stats.series.entries()) {
        const bt = Date.parse(b.t);
        const next = stats.series[i + 1];
        const end = next ? Date.parse(next.t) : to;
        expect(end, `${q} ${b.t}`).toBe(q.includes('tz=') ? end : bt + bucketMs);
        const e = expectedTotals(inRange.filter((r) => within(r, bt, end)));
        const { by_trigger: _t, ...want } = comparableExpected(e);
        expect(comparable(b), `${q} ${b.t}`).toEqual({ t: b.t, ...want });
      }
      // by model: each run's steps, by the rule of modelCall
      const models = new Map<
        string,
        { runs: number; calls: number; i: number; o: number; c: number }
      >();
      for (const r of inRange) {
        const seen = new Set<string>();
        for (const s of steps.get(r.id)!) {
          const call = modelCall(s, s.cost_usd);
          if (call === undefined) continue;
          const key = s.model ?? '';
          const m = models.get(key) ?? { runs: 0, calls: 0, i: 0, o: 0, c: 0 };
          if (!seen.has(key)) m.runs += 1;
          seen.add(key);
          m.calls += call;
          m.i += s.input_tokens ?? 0;
          m.o += s.output_tokens ?? 0;
          m.c += s.cost_usd === null ? 0 : nanos(s.cost_usd);
          models.set(key, m);
        }
      }
      const gotModels = Object.fromEntries(
        stats.by_model.map((m) => [
          m.model ?? '',
          {
            runs: m.runs,
            calls: m.calls,
            i: m.input_tokens,
            o: m.output_tokens,
            c: nanos(m.cost_usd),
          },
        ]),
      );
      expect(gotModels, `${q} by_model`).toEqual(
        Object.fromEntries(
          [...models].filter(([, m]) => m.runs > 0 && (m.calls || m.i || m.o || m.c)),
        ),
      );
      // a model's row links to its runs in the range: as many as it counts
      for (const m of stats.by_model) {
        if (m.model === null) continue;
        const agents = agentFilter ? `&agent_id=${agentFilter.join(',')}` : '';
        const res = await t.request(
          'GET',
          `/api/v1/runs?limit=1&model=${encodeURIComponent(m.model)}&from=${from}&to=${to - 1}${agents}`,
        );
        expect(json<{ total: number }>(res).total, `${q} runs of ${m.model}`).toBe(m.runs);
      }
    }

    // ---- GET /runs totals (counted from the rollups for these filters)
    for (const q of ['agent_id=a1', 'status=failed,timed_out', 'agent_id=a2&trigger=retry', '']) {
      const res = await t.request('GET', `/api/v1/runs?limit=1&${q}`);
      const params = new URLSearchParams(q);
      const want = runs.filter(
        (r) =>
          (!params.get('agent_id') || params.get('agent_id')!.split(',').includes(r.agent_id)) &&
          (!params.get('status') || params.get('status')!.split(',').includes(r.status)) &&
          (!params.get('trigger') || params.get('trigger') === r.trigger),
      ).length;
      expect(json<{ total: number }>(res).total, `GET /runs?${q}`).toBe(want);
    }

    // ---- agents: 24 h counts at a fixed now, latest run and last error
    for (const at of [T0 + 20 * HOUR_MS + 1, T0 + DAY_MS + 30 * 60_000]) {
      const summaries = await listAgentSummaries(t.ctx.db, 'default', at);
      for (const a of summaries) {
        const mine = runs.filter((r) => r.agent_id === a.id);
        const counted = mine.filter(
          (r) => sortAt(r) >= hourOf(at - DAY_MS) && sortAt(r) < hourOf(at) + HOUR_MS,
        );
        const e = expectedTotals(counted);
        const failed = e.by_status.failed + e.by_status.timed_out;
        const finished = TERMINAL_RUN_STATUSES.reduce((n, s) => n + e.by_status[s], 0);
        expect(a.counts_24h, `${a.id} at ${new Date(at).toISOString()}`).toEqual({
          runs: e.runs,
          succeeded: e.by_status.succeeded,
          failed,
          failed_not_retried: notRetried(counted, runs),
          running: e.by_status.running,
          fail_rate: finished > 0 ? failed / finished : null,
          total_tokens: e.total_tokens,
          cost_usd: e.cost_nanos / 1e9,
        });
      }
    }
    const agentList = json<{ agents: AgentSummary[] }>(
      await t.request('GET', '/api/v1/agents'),
    ).agents;
    for (const a of agentList) {
      const mine = runs.filter((r) => r.agent_id === a.id);
      const latest = [...mine].sort((x, y) => sortAt(y) - sortAt(x) || (y.id < x.id ? -1 : 1))[0];
      expect(a.latest_run?.id ?? null, `${a.id} latest`).toBe(latest?.id ?? null);
      const errors = mine
        .filter((r) => (FAILED_RUN_STATUSES as readonly string[]).includes(r.status) && r.ended_at)
        .sort((x, y) => ms(y.ended_at)! - ms(x.ended_at)! || (y.id < x.id ? -1 : 1));
      expect(a.last_error?.run_id ?? null, `${a.id} last error`).toBe(errors[0]?.id ?? null);
    }

    // ---- threads
    const threads: ThreadSummary[] = [];
    let cursor: string | null = null;
    do {
      const res = await t.request(
        'GET',
        `/api/v1/threads?limit=7${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      );
      const page = json<{ threads: ThreadSummary[]; next_cursor: string | null }>(res);
      threads.push(...page.threads);
      cursor = page.next_cursor;
    } while (cursor);
    const byThread = new Map<string, Run[]>();
    for (const r of runs)
      if (r.thread_id) byThread.set(r.thread_id, [...(byThread.get(r.thread_id) ?? []), r]);
    expect(threads.map((th) => th.thread_id).sort()).toEqual([...byThread.keys()].sort());
    for (const th of threads) {
      const rs = byThread.get(th.thread_id)!;
      const order = [...rs].sort((x, y) => sortAt(x) - sortAt(y) || (x.id < y.id ? -1 : 1));
      expect(
        {
          runs: th.runs,
          failed: th.failed,
          active: th.active,
          agent_ids: th.agent_ids,
          first_at: th.first_at,
          last_at: th.last_at,
          total_tokens: th.total_tokens,
          cost: nanos(th.cost_usd),
          first: th.first_run.id,
          last: th.last_run.id,
        },
        th.thread_id,
      ).toEqual({
        runs: rs.length,
        failed: rs.filter((r) => (FAILED_RUN_STATUSES as readonly string[]).includes(r.status))
          .length,
        active: rs.filter((r) => r.status === 'queued' || r.status === 'running').length,
        agent_ids: [...new Set(rs.map((r) => r.agent_id))].sort(),
        first_at: new Date(sortAt(order[0]!)).toISOString(),
        last_at: new Date(sortAt(order[order.length - 1]!)).toISOString(),
        total_tokens: rs.reduce((n, r) => n + r.total_tokens, 0),
        cost: rs.reduce((n, r) => n + nanos(r.cost_usd), 0),
        first: order[0]!.id,
        last: order[order.length - 1]!.id,
      });
    }

    // ---- scores: each run's summary, and by_score over everything
    const allScores: Score[] = [];
    for (const r of runs) {
      const list = json<{ scores: Score[] }>(
        await t.request('GET', `/api/v1/runs/${r.id}/scores`),
      ).scores;
      allScores.push(...list);
      const names = [...new Set(list.map((s) => s.name))].sort();
      expect(Object.keys(r.scores).sort(), r.id).toEqual(names);
      for (const name of names) {
        const mine = list.filter((s) => s.name === name);
        const values = mine.map((s) => (typeof s.value === 'boolean' ? +s.value : s.value));
        expect(r.scores[name]!.n).toBe(mine.length);
        const num = values.filter((v): v is number => typeof v === 'number');
        expect(r.scores[name]!.avg).toBe(
          num.length ? Number((num.reduce((a, b) => a + b, 0) / num.length).toPrecision(12)) : null,
        );
      }
    }
    const wide = json<StatsResponse>(
      await t.request(
        'GET',
        `/api/v1/runs/stats?from=${T0 - 3 * DAY_MS}&to=${now + DAY_MS}&bucket=day`,
      ),
    );
    const byScore = Object.fromEntries(
      wide.by_score.map((s) => [
        s.name,
        { n: s.n, runs: s.runs, avg: s.avg, min: s.min, max: s.max },
      ]),
    );
    const wantScores: Record<
      string,
      { n: number; runs: number; avg: number; min: number; max: number }
    > = {};
    for (const name of new Set(allScores.map((s) => s.name))) {
      const mine = allScores.filter((s) => s.name === name);
      const v = mine.map((s) => (typeof s.value === 'boolean' ? +s.value : (s.value as number)));
      wantScores[name] = {
        n: mine.length,
        runs: new Set(mine.map((s) => s.run_id)).size,
        avg: Number((v.reduce((a, b) => a + b, 0) / v.length).toPrecision(12)),
        min: Math.min(...v),
        max: Math.max(...v),
      };
    }
    expect(byScore).toEqual(wantScores);

    // sanity: the scenario did what it says
    expect(runs.length).toBeGreaterThan(150);
    expect(deleted).toBeGreaterThan(3);
    expect(runs.some((r) => r.trigger === 'retry' && r.retry_of !== null)).toBe(true);
  }, 60_000);
});

// ---------------------------------------------------------------------------
// The same recount after random sequences of the REST sugar and /ingest, one run at a time:
// runs started by POST /runs or an event, steps by POST /runs/:id/steps or events, their
// usage in parts, updates that change a step's usage, status, model, type or cost, PATCHes
// and run.updates that move a run's start, queue time, thread, user, trigger or agent, ends
// before starts, late steps and ends, cancels, retries, deletes, some of them at once, and
// a price override changed half way.

/** Another seed: `SEQ_SEED=7 npx vitest run packages/server/src/stats/crosscheck.test.ts`. */
const SEQ_SEED = Number(process.env.SEQ_SEED ?? 1);
const SEQ_N_RUNS = 60;
/** Late evening: the runs' hours cross midnight. */
const SEQ_T0 = Date.parse('2026-03-28T22:30:00.000Z');
const SEQ_AGENTS = ['b1', 'b2', 'b3'];
const SEQ_MODELS = ['gpt-4o', 'gpt-4o-mini', 'house', 'no-price'];
/** The house model's price overrides: the first, then the second from half way. */
const HOUSE_PRICES = [
  { input_per_mtok: 3, output_per_mtok: 9 },
  { input_per_mtok: 5, output_per_mtok: 11 },
] as const;

/** A run's figures as the stats answer them, recounted from the runs. */
const recount = (runs: Run[]) => comparableExpected(expectedTotals(runs));

type SeqAction = { method: string; url: string; body?: unknown; note: string; late?: boolean };

/** Steps given a cost (`run/step`): their cost is theirs, not the price table's. */
const givenCost = new Set<string>();

function generateSequences(rand: () => number): SeqAction[][] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const perRun: SeqAction[][] = [];
  for (let i = 0; i < SEQ_N_RUNS; i++) {
    const id = `q-${i}`;
    const own: SeqAction[] = [];
    const agent = pick(SEQ_AGENTS);
    const trigger = pick(['manual', 'schedule', 'api', 'retry'] as const);
    const start = SEQ_T0 + Math.floor((rand() - 0.5) * 6 * HOUR_MS);
    const thread = rand() < 0.5 ? `th-${Math.floor(rand() * 8)}` : undefined;
    const user = rand() < 0.7 ? `u-${Math.floor(rand() * 3)}` : undefined;
    const how = rand();
    if (how < 0.4)
      own.push({
        method: 'POST',
        url: '/api/v1/ingest',
        body: {
          events: [
            {
              type: 'run.start',
              run: {
                id,
                agent_id: agent,
                trigger,
                started_at: start,
                thread_id: thread,
                user_id: user,
              },
            },
          ],
        },
        note: 'ingest start',
      });
    else if (how < 0.8)
      own.push({
        method: 'POST',
        url: '/api/v1/runs',
        body: { id, agent_id: agent, trigger, started_at: start, thread_id: thread, user_id: user },
        note: 'POST /runs',
      });
    else if (how < 0.9)
      own.push({
        method: 'POST',
        url: '/api/v1/ingest',
        body: {
          events: [
            {
              type: 'run.start',
              run: {
                id,
                agent_id: agent,
                trigger,
                queued_at: start - 1000,
                status: 'queued',
                thread_id: thread,
              },
            },
          ],
        },
        note: 'ingest queued',
      });
    const nSteps = Math.floor(rand() * 4);
    for (let s = 0; s < nSteps; s++) {
      const sid = `${id}-s${s}`;
      const model = rand() < 0.8 ? pick(SEQ_MODELS) : undefined;
      const type = rand() < 0.7 ? 'llm' : pick(['tool', 'agent', 'retrieval'] as const);
      const sStart = start + s * 1000;
      const tokens = () => ({
        input_tokens: Math.floor(rand() * 3000),
        output_tokens: Math.floor(rand() * 1000),
      });
      const viaRest = rand() < 0.5;
      const status = rand() < 0.2 ? 'failed' : 'succeeded';
      const cost = rand() < 0.2 ? { cost_usd: Math.round(rand() * 1e6) / 1e8 } : {};
      if ('cost_usd' in cost) givenCost.add(`${id}/${sid}`);
      const parent = s > 0 && rand() < 0.3 ? { parent_step_id: `${id}-s0` } : {};
      if (viaRest) {
        if (rand() < 0.5) {
          own.push({
            method: 'POST',
            url: `/api/v1/runs/${id}/steps`,
            body: { id: sid, type, model, started_at: sStart, ...parent },
            note: 'REST step start',
          });
        }
        own.push({
          method: 'POST',
          url: `/api/v1/runs/${id}/steps`,
          body: {
            id: sid,
            type,
            model,
            status,
            started_at: sStart,
            ended_at: sStart + 500,
            ...tokens(),
            ...cost,
            ...parent,
          },
          note: 'REST step end',
        });
      } else if (rand() < 0.3) {
        // started only: the run's end ends it (failed), its own end may come later still
        own.push({
          method: 'POST',
          url: '/api/v1/ingest',
          body: {
            events: [
              {
                type: 'step.start',
                step: { id: sid, run_id: id, type, model, started_at: sStart, ...parent },
              },
            ],
          },
          note: 'ingest step start only',
        });
        if (rand() < 0.5)
          own.push({
            method: 'POST',
            url: '/api/v1/ingest',
            body: {
              events: [
                {
                  type: 'step.end',
                  step: {
                    id: sid,
                    run_id: id,
                    model: pick(SEQ_MODELS),
                    status,
                    ...tokens(),
                    ...cost,
                  },
                },
              ],
            },
            note: 'ingest step end (maybe late)',
            late: true,
          });
      } else {
        const all = tokens();
        const split = rand() < 0.4;
        const usage = split ? { input_tokens: all.input_tokens } : all;
        const late = split ? { output_tokens: all.output_tokens } : undefined;
        own.push({
          method: 'POST',
          url: '/api/v1/ingest',
          body: {
            events: [
              {
                type: 'step.start',
                step: { id: sid, run_id: id, type, model, started_at: sStart, ...parent },
              },
              {
                type: 'step.end',
                step: { id: sid, run_id: id, status, ended_at: sStart + 500, ...usage, ...cost },
              },
            ],
          },
          note: 'ingest step',
        });
        // the output tokens in a later event (an SDK reporting usage after the call)
        if (late)
          own.push({
            method: 'POST',
            url: '/api/v1/ingest',
            body: { events: [{ type: 'step.end', step: { id: sid, run_id: id, ...late } }] },
            note: 'usage later',
          });
      }
      // an update that changes usage, status, model or type
      if (rand() < 0.4) {
        const change: Record<string, unknown> = { id: sid, run_id: id };
        const r = rand();
        if (r < 0.3) Object.assign(change, tokens());
        else if (r < 0.5) change.status = status === 'failed' ? 'succeeded' : 'failed';
        else if (r < 0.65) change.model = pick(SEQ_MODELS);
        else if (r < 0.8) change.type = pick(['llm', 'tool'] as const);
        else if (r < 0.9) {
          change.cost_usd = Math.round(rand() * 1e6) / 1e8;
          givenCost.add(`${id}/${sid}`);
        } else change.cost_usd = null;
        own.push({
          method: 'POST',
          url: '/api/v1/ingest',
          body: { events: [{ type: rand() < 0.5 ? 'step.end' : 'step.start', step: change }] },
          note: `step update ${JSON.stringify(change)}`,
        });
      }
    }
    // run updates
    if (rand() < 0.3) {
      const change: Record<string, unknown> = {};
      const r = rand();
      if (r < 0.25) change.started_at = start + Math.floor((rand() - 0.5) * 4 * HOUR_MS);
      else if (r < 0.4) change.thread_id = rand() < 0.5 ? null : `th-${Math.floor(rand() * 8)}`;
      else if (r < 0.5) change.user_id = rand() < 0.5 ? null : `u-${Math.floor(rand() * 3)}`;
      else if (r < 0.7) change.trigger = pick(['manual', 'schedule', 'api', 'retry'] as const);
      else if (r < 0.8) change.model = pick(SEQ_MODELS);
      else if (r < 0.85) change.agent_id = pick(SEQ_AGENTS);
      else if (r < 0.9) change.status = pick(['running', 'queued'] as const);
      else if (r < 0.95) change.queued_at = start - Math.floor(rand() * 3 * HOUR_MS);
      else change.metadata = { k: 1 };
      own.push(
        rand() < 0.5
          ? { method: 'PATCH', url: `/api/v1/runs/${id}`, body: change, note: 'PATCH' }
          : {
              method: 'POST',
              url: '/api/v1/ingest',
              body: { events: [{ type: 'run.update', run: { id, ...change } }] },
              note: 'run.update',
            },
      );
    }
    if (rand() < 0.8) {
      const status = pick(['succeeded', 'succeeded', 'failed', 'timed_out', 'cancelled'] as const);
      const end =
        rand() < 0.05 ? start - 1000 : start + Math.floor(Math.exp(rand() * Math.log(3 * HOUR_MS)));
      const error = status === 'failed' ? { error: { message: 'boom' } } : {};
      own.push(
        rand() < 0.5
          ? {
              method: 'PATCH',
              url: `/api/v1/runs/${id}`,
              body: { status, ended_at: end, ...error },
              note: 'PATCH end',
            }
          : {
              method: 'POST',
              url: '/api/v1/ingest',
              body: { events: [{ type: 'run.end', run: { id, status, ended_at: end, ...error } }] },
              note: 'run.end',
            },
      );
      // late: a step after the end, another end
      if (rand() < 0.2)
        own.push({
          method: 'POST',
          url: '/api/v1/ingest',
          body: {
            events: [
              {
                type: 'step.end',
                step: {
                  id: `${id}-late`,
                  run_id: id,
                  type: 'llm',
                  model: pick(SEQ_MODELS),
                  input_tokens: 10,
                  output_tokens: 5,
                },
              },
            ],
          },
          note: 'late step',
        });
      if (rand() < 0.15)
        own.push({
          method: 'POST',
          url: '/api/v1/ingest',
          body: {
            events: [
              {
                type: 'run.end',
                run: { id, status: pick(['failed', 'succeeded'] as const), ended_at: end + 5000 },
              },
            ],
          },
          note: 'second end',
        });
    }
    if (rand() < 0.1)
      own.push({
        method: 'PATCH',
        url: `/api/v1/runs/${id}`,
        body: { started_at: start + Math.floor((rand() - 0.5) * 4 * HOUR_MS) },
        note: 'PATCH start late',
      });
    if (rand() < 0.1)
      own.push({ method: 'POST', url: `/api/v1/runs/${id}/cancel`, note: 'cancel' });
    if (rand() < 0.1)
      own.push({ method: 'POST', url: `/api/v1/runs/${id}/retry`, body: {}, note: 'retry' });
    if (rand() < 0.06) own.push({ method: 'DELETE', url: `/api/v1/runs/${id}`, note: 'delete' });
    perRun.push([...own.filter((a) => !a.late), ...own.filter((a) => a.late)]);
  }
  return perRun;
}

/** Interleaves the runs' actions, each run's in its order (mostly). */
function interleave(rand: () => number, perRun: SeqAction[][]): SeqAction[] {
  const keyed: { a: SeqAction; k: number }[] = [];
  perRun.forEach((own, r) =>
    own.forEach((a, i) =>
      keyed.push({ a, k: rand() < 0.9 ? r * 3 + i * 7 + rand() * 20 : rand() * 1000 }),
    ),
  );
  keyed.sort((x, y) => x.k - y.k);
  return keyed.map((x) => x.a);
}

describeEachDb('stats sequences cross-check', (dialect) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(dialect);
  });
  afterAll(async () => {
    await t.close();
  });

  it('rollups agree with a recount after random REST and ingest sequences', async () => {
    const rand = mulberry32(SEQ_SEED);
    const actions = interleave(rand, generateSequences(rand));
    await t.request('PUT', '/api/v1/prices/house', HOUSE_PRICES[0]);
    let repriced = false;
    for (let i = 0; i < actions.length;) {
      if (i >= Math.floor(actions.length / 2) && !repriced) {
        repriced = true;
        await t.request('PUT', '/api/v1/prices/house', HOUSE_PRICES[1]);
      }
      // some at once: one group commit holds them
      const n = rand() < 0.2 ? 1 + Math.floor(rand() * 4) : 1;
      const group = actions.slice(i, i + n);
      i += n;
      const answers = await Promise.all(
        group.map((a) => t.request(a.method as 'POST', a.url, a.body as object)),
      );
      group.forEach((a, k) => {
        const res = answers[k]!;
        if (res.statusCode >= 500) throw new Error(`${a.note}: ${a.method} ${a.url}: ${res.body}`);
      });
    }

    const runs = await allRuns(t);
    const steps = new Map<string, Step[]>();
    for (const r of runs) steps.set(r.id, await stepsOf(t, r.id));

    const problems: string[] = [];
    // run rollups
    for (const r of runs) {
      const ss = steps.get(r.id)!;
      const mismatch = rollupMismatch(r, ss);
      if (mismatch) problems.push(`run ${r.id}: ${mismatch}`);
      const detail = json<Run>(await t.request('GET', `/api/v1/runs/${r.id}`));
      if (JSON.stringify(detail) !== JSON.stringify(r))
        problems.push(`run ${r.id}: detail differs from list`);
      if (r.ended_at && r.started_at && r.duration_ms !== ms(r.ended_at)! - ms(r.started_at)!)
        problems.push(`run ${r.id}: duration ${r.duration_ms} vs ${r.started_at}..${r.ended_at}`);
      if ((TERMINAL_RUN_STATUSES as readonly string[]).includes(r.status) && r.ended_at === null)
        problems.push(`run ${r.id}: ${r.status} without ended_at`);
      const tl = json<{ summary: Record<string, unknown> }>(
        await t.request('GET', `/api/v1/runs/${r.id}/timeline`),
      ).summary;
      const tlWant = {
        step_count: r.step_count,
        error_count: r.error_count,
        total_tokens: r.total_tokens,
        cost_usd: r.cost_usd,
        status: r.status,
        started_at: r.started_at,
        ended_at: r.ended_at,
        ...(r.ended_at ? { duration_ms: r.duration_ms } : {}),
      };
      const tlGot = Object.fromEntries(Object.keys(tlWant).map((k) => [k, tl[k]]));
      if (JSON.stringify(tlGot) !== JSON.stringify(tlWant))
        problems.push(
          `run ${r.id}: timeline ${JSON.stringify(tlGot)} != ${JSON.stringify(tlWant)}`,
        );
      for (const s of ss) {
        if (s.model === null || s.model === 'no-price') continue;
        if (s.input_tokens === null && s.output_tokens === null) continue;
        if (givenCost.has(`${r.id}/${s.id}`)) continue;
        // the house model's price changed half way: its steps are priced at either price
        const prices =
          s.model === 'house'
            ? [HOUSE_PRICES[0], HOUSE_PRICES[1]].map((p) => ({
                input: p.input_per_mtok,
                output: p.output_per_mtok,
              }))
            : [findPrice(s.model, new Map())!];
        const usage = {
          inputTokens: s.input_tokens,
          outputTokens: s.output_tokens,
          cachedInputTokens: s.cached_input_tokens,
          reasoningTokens: s.reasoning_tokens,
        };
        const want = prices.map((p) => computeCostNanos(p, usage));
        const have = s.cost_usd === null ? null : nanos(s.cost_usd);
        if (!want.includes(have!))
          problems.push(
            `step ${r.id}/${s.id} ${s.model}: cost ${have} (priced ${want.join(' or ')})`,
          );
      }
    }
    expect(problems).toEqual([]);

    // stats
    const queries = [
      `from=${SEQ_T0 - 6 * HOUR_MS}&to=${SEQ_T0 + 6 * HOUR_MS}&bucket=hour`,
      `from=${SEQ_T0 - 2 * DAY_MS}&to=${SEQ_T0 + 2 * DAY_MS}&bucket=day`,
      `from=${SEQ_T0 - 90 * 60_000}&to=${SEQ_T0 + 3 * HOUR_MS + 1}`,
      `from=${SEQ_T0 - 6 * HOUR_MS}&to=${SEQ_T0 + 6 * HOUR_MS}&bucket=hour&agent_id=b1`,
      `from=${SEQ_T0 - 2 * DAY_MS}&to=${Date.now() + DAY_MS}&bucket=day&agent_id=b2,b3`,
      `from=${SEQ_T0 - 2 * DAY_MS}&to=${Date.now() + DAY_MS}&bucket=day`,
    ];
    for (const q of queries) {
      const stats = json<StatsResponse>(await t.request('GET', `/api/v1/runs/stats?${q}`));
      const from = Date.parse(stats.from);
      const to = Date.parse(stats.to);
      const agentFilter = new URLSearchParams(q).get('agent_id')?.split(',');
      const inRange = runs.filter(
        (r) =>
          sortAt(r) >= from &&
          sortAt(r) < to &&
          (agentFilter === undefined || agentFilter.includes(r.agent_id)),
      );
      expect(comparable(stats.totals), q).toEqual(recount(inRange));
      for (const a of stats.by_agent) {
        const { agent_id: _a, ...rest } = a;
        expect(comparable(rest), `${q} ${a.agent_id}`).toEqual(
          recount(inRange.filter((r) => r.agent_id === a.agent_id)),
        );
      }
      expect(stats.by_agent.map((a) => a.agent_id).sort()).toEqual(
        [...new Set(inRange.map((r) => r.agent_id))].sort(),
      );
      const bucketMs = stats.bucket === 'day' ? DAY_MS : HOUR_MS;
      for (const b of stats.series) {
        const bt = Date.parse(b.t);
        const { by_trigger: _t, ...want } = recount(
          inRange.filter((r) => sortAt(r) >= bt && sortAt(r) < bt + bucketMs),
        );
        expect(comparable(b), `${q} ${b.t}`).toEqual({ t: b.t, ...want });
      }
      const models = new Map<
        string,
        { runs: number; calls: number; i: number; o: number; c: number }
      >();
      for (const r of inRange) {
        const seen = new Set<string>();
        for (const s of steps.get(r.id)!) {
          const call = modelCall(s, s.cost_usd);
          if (call === undefined) continue;
          const key = s.model ?? '';
          const m = models.get(key) ?? { runs: 0, calls: 0, i: 0, o: 0, c: 0 };
          if (!seen.has(key)) m.runs += 1;
          seen.add(key);
          m.calls += call;
          m.i += s.input_tokens ?? 0;
          m.o += s.output_tokens ?? 0;
          m.c += s.cost_usd === null ? 0 : nanos(s.cost_usd);
          models.set(key, m);
        }
      }
      expect(
        Object.fromEntries(
          stats.by_model.map((m) => [
            m.model ?? '',
            {
              runs: m.runs,
              calls: m.calls,
              i: m.input_tokens,
              o: m.output_tokens,
              c: nanos(m.cost_usd),
            },
          ]),
        ),
        `${q} by_model`,
      ).toEqual(
        Object.fromEntries(
          [...models].filter(([, m]) => m.runs > 0 && (m.calls || m.i || m.o || m.c)),
        ),
      );
    }

    // sorted lists: every run once, in the documented order (ties by id, no duration last)
    for (const sort of ['cost', 'duration', 'tokens', 'newest'] as const) {
      for (const filter of ['', '&agent_id=b2', '&status=succeeded']) {
        const listed: Run[] = [];
        let next: string | null = null;
        do {
          const res = await t.request(
            'GET',
            `/api/v1/runs?limit=13&sort=${sort}${filter}${next ? `&cursor=${encodeURIComponent(next)}` : ''}`,
          );
          expect(res.statusCode, res.body).toBe(200);
          const page = json<{ runs: Run[]; next_cursor: string | null }>(res);
          listed.push(...page.runs);
          next = page.next_cursor;
        } while (next);
        const p = new URLSearchParams(filter);
        const key = (r: Run): number | null =>
          sort === 'cost'
            ? nanos(r.cost_usd)
            : sort === 'tokens'
              ? r.total_tokens
              : sort === 'duration'
                ? r.ended_at === null
                  ? null
                  : r.duration_ms
                : sortAt(r);
        const want = runs
          .filter(
            (r) =>
              (!p.get('agent_id') || r.agent_id === p.get('agent_id')) &&
              (!p.get('status') || r.status === p.get('status')),
          )
          .sort((x, y) => {
            const a = key(x);
            const b = key(y);
            if (a === null || b === null) {
              if (a !== b) return a === null ? 1 : -1;
            } else if (a !== b) return b - a;
            return x.id < y.id ? 1 : x.id > y.id ? -1 : 0;
          });
        expect(
          listed.map((r) => `${r.id}:${key(r)}`),
          `sort=${sort}${filter}`,
        ).toEqual(want.map((r) => `${r.id}:${key(r)}`));
      }
    }

    // a time window, and the runs of one model: counted from the runs, not the rollups
    for (const [lo, hi] of [
      [SEQ_T0 - 2 * HOUR_MS + 1, SEQ_T0 + HOUR_MS],
      [SEQ_T0, SEQ_T0 + 5 * HOUR_MS - 1],
    ] as const) {
      for (const extra of ['', '&agent_id=b3', '&model=house', '&user_id=u-1']) {
        const q = `from=${lo}&to=${hi}${extra}`;
        const p = new URLSearchParams(extra);
        const want = runs.filter(
          (r) =>
            sortAt(r) >= lo &&
            sortAt(r) <= hi &&
            (!p.get('agent_id') || r.agent_id === p.get('agent_id')) &&
            (!p.get('user_id') || r.user_id === p.get('user_id')) &&
            (!p.get('model') || steps.get(r.id)!.some((s) => s.model === p.get('model'))),
        );
        const res = json<{ total: number; runs: Run[] }>(
          await t.request('GET', `/api/v1/runs?limit=200&${q}`),
        );
        expect(res.total, q).toBe(want.length);
        expect(res.runs.map((r) => r.id).sort(), q).toEqual(want.map((r) => r.id).sort());
      }
    }
    for (const agent of SEQ_AGENTS) {
      const res = await t.request('GET', `/api/v1/agents/${agent}?include=runs`);
      if (res.statusCode === 404) continue;
      const d = json<{ runs: Run[] }>(res);
      const want = runs
        .filter((r) => r.agent_id === agent)
        .sort((x, y) => sortAt(y) - sortAt(x) || (y.id < x.id ? -1 : 1))
        .slice(0, 20);
      expect(
        d.runs.map((r) => r.id),
        `agent ${agent} runs`,
      ).toEqual(want.map((r) => r.id));
      const listed = json<{ runs: Run[] }>(
        await t.request('GET', `/api/v1/agents/${agent}/runs?limit=20`),
      );
      expect(
        listed.runs.map((r) => r.id),
        `agent ${agent} /runs`,
      ).toEqual(want.map((r) => r.id));
    }

    // run list totals
    for (const q of [
      '',
      'agent_id=b1',
      'status=failed,timed_out',
      'trigger=retry',
      'thread_id=th-1',
    ]) {
      const p = new URLSearchParams(q);
      const want = runs.filter(
        (r) =>
          (!p.get('agent_id') || r.agent_id === p.get('agent_id')) &&
          (!p.get('status') || p.get('status')!.split(',').includes(r.status)) &&
          (!p.get('trigger') || r.trigger === p.get('trigger')) &&
          (!p.get('thread_id') || r.thread_id === p.get('thread_id')),
      ).length;
      expect(
        json<{ total: number }>(await t.request('GET', `/api/v1/runs?limit=1&${q}`)).total,
        q,
      ).toBe(want);
    }

    // agents
    for (const at of [SEQ_T0 + 2 * HOUR_MS + 17, SEQ_T0 + 20 * HOUR_MS]) {
      for (const a of await listAgentSummaries(t.ctx.db, 'default', at)) {
        const counted = runs.filter(
          (r) =>
            r.agent_id === a.id &&
            sortAt(r) >= hourOf(at - DAY_MS) &&
            sortAt(r) < hourOf(at) + HOUR_MS,
        );
        const e = recount(counted);
        const failed = e.by_status.failed + e.by_status.timed_out;
        const finished = TERMINAL_RUN_STATUSES.reduce((n, s) => n + e.by_status[s], 0);
        expect(a.counts_24h, `${a.id} at ${at}`).toEqual({
          runs: e.runs,
          succeeded: e.by_status.succeeded,
          failed,
          failed_not_retried: notRetried(counted, runs),
          running: e.by_status.running,
          fail_rate: finished > 0 ? failed / finished : null,
          total_tokens: e.total_tokens,
          cost_usd: e.cost_nanos / 1e9,
        });
      }
    }
    const agentList = json<{ agents: AgentSummary[] }>(
      await t.request('GET', '/api/v1/agents'),
    ).agents;
    for (const a of agentList) {
      const mine = runs.filter((r) => r.agent_id === a.id);
      const latest = [...mine].sort((x, y) => sortAt(y) - sortAt(x) || (y.id < x.id ? -1 : 1))[0];
      expect(a.latest_run?.id ?? null, `${a.id} latest`).toBe(latest?.id ?? null);
      if (latest) expect(a.latest_run, `${a.id} latest run`).toEqual(latest);
      const errors = mine
        .filter((r) => (FAILED_RUN_STATUSES as readonly string[]).includes(r.status) && r.ended_at)
        .sort((x, y) => ms(y.ended_at)! - ms(x.ended_at)! || (y.id < x.id ? -1 : 1));
      expect(a.last_error?.run_id ?? null, `${a.id} last error`).toBe(errors[0]?.id ?? null);
    }

    // threads
    const threads = json<{ threads: ThreadSummary[] }>(
      await t.request('GET', '/api/v1/threads?limit=100'),
    ).threads;
    const byThread = new Map<string, Run[]>();
    for (const r of runs)
      if (r.thread_id) byThread.set(r.thread_id, [...(byThread.get(r.thread_id) ?? []), r]);
    expect(threads.map((th) => th.thread_id).sort()).toEqual([...byThread.keys()].sort());
    for (const th of threads) {
      const rs = byThread.get(th.thread_id)!;
      const order = [...rs].sort((x, y) => sortAt(x) - sortAt(y) || (x.id < y.id ? -1 : 1));
      expect(
        {
          runs: th.runs,
          failed: th.failed,
          active: th.active,
          agent_ids: th.agent_ids,
          first_at: th.first_at,
          last_at: th.last_at,
          total_tokens: th.total_tokens,
          cost: nanos(th.cost_usd),
          first: th.first_run.id,
          last: th.last_run.id,
          last_status: th.last_run.status,
          last_agent: th.last_run.agent_id,
          user_id: th.user_id,
        },
        th.thread_id,
      ).toEqual({
        runs: rs.length,
        failed: rs.filter((r) => (FAILED_RUN_STATUSES as readonly string[]).includes(r.status))
          .length,
        active: rs.filter((r) => r.status === 'queued' || r.status === 'running').length,
        agent_ids: [...new Set(rs.map((r) => r.agent_id))].sort(),
        first_at: new Date(sortAt(order[0]!)).toISOString(),
        last_at: new Date(sortAt(order[order.length - 1]!)).toISOString(),
        total_tokens: rs.reduce((n, r) => n + r.total_tokens, 0),
        cost: rs.reduce((n, r) => n + nanos(r.cost_usd), 0),
        first: order[0]!.id,
        last: order[order.length - 1]!.id,
        last_status: order[order.length - 1]!.status,
        last_agent: order[order.length - 1]!.agent_id,
        user_id: order[order.length - 1]!.user_id,
      });
    }
    // filtered thread lists: each thread summed over the runs the filters keep
    for (const f of [
      'agent_id=b1',
      'user_id=u-1',
      `from=${SEQ_T0 - HOUR_MS}&to=${SEQ_T0 + 2 * HOUR_MS}`,
      `agent_id=b2,b3&from=${SEQ_T0}`,
    ]) {
      const p = new URLSearchParams(f);
      const kept = runs.filter(
        (r) =>
          r.thread_id &&
          (!p.get('agent_id') || p.get('agent_id')!.split(',').includes(r.agent_id)) &&
          (!p.get('user_id') || r.user_id === p.get('user_id')) &&
          (!p.get('from') || sortAt(r) >= Number(p.get('from'))) &&
          (!p.get('to') || sortAt(r) <= Number(p.get('to'))),
      );
      const groups = new Map<string, Run[]>();
      for (const r of kept) groups.set(r.thread_id!, [...(groups.get(r.thread_id!) ?? []), r]);
      const listed = json<{ threads: ThreadSummary[] }>(
        await t.request('GET', `/api/v1/threads?limit=200&${f}`),
      ).threads;
      const view = (th: ThreadSummary) => ({
        id: th.thread_id,
        runs: th.runs,
        failed: th.failed,
        active: th.active,
        agent_ids: th.agent_ids,
        user_id: th.user_id,
        first_at: th.first_at,
        last_at: th.last_at,
        total_tokens: th.total_tokens,
        cost: nanos(th.cost_usd),
        first: th.first_run.id,
        last: th.last_run.id,
      });
      const want = [...groups].map(([id, rs]) => {
        const order = [...rs].sort((x, y) => sortAt(x) - sortAt(y) || (x.id < y.id ? -1 : 1));
        const last = order[order.length - 1]!;
        return {
          id,
          runs: rs.length,
          failed: rs.filter((r) => (FAILED_RUN_STATUSES as readonly string[]).includes(r.status))
            .length,
          active: rs.filter((r) => r.status === 'queued' || r.status === 'running').length,
          agent_ids: [...new Set(rs.map((r) => r.agent_id))].sort(),
          user_id: last.user_id,
          first_at: new Date(sortAt(order[0]!)).toISOString(),
          last_at: new Date(sortAt(last)).toISOString(),
          total_tokens: rs.reduce((n, r) => n + r.total_tokens, 0),
          cost: rs.reduce((n, r) => n + nanos(r.cost_usd), 0),
          first: order[0]!.id,
          last: last.id,
        };
      });
      const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : 1);
      expect(listed.map(view).sort(byId), `threads?${f}`).toEqual(want.sort(byId));
    }
    for (const th of threads) {
      const d = json<Record<string, unknown>>(
        await t.request('GET', `/api/v1/threads/${encodeURIComponent(th.thread_id)}`),
      );
      const dsum = (d.summary ?? d.thread ?? d) as Record<string, unknown>;
      for (const k of [
        'runs',
        'failed',
        'active',
        'total_tokens',
        'cost_usd',
        'first_at',
        'last_at',
      ])
        if (k in dsum)
          expect(dsum[k], `thread ${th.thread_id} detail ${k}`).toEqual(
            (th as Record<string, unknown>)[k],
          );
    }
    for (const a of agentList) {
      const d = json<AgentSummary>(await t.request('GET', `/api/v1/agents/${a.id}`));
      expect(d.counts_24h, `agent ${a.id} detail`).toEqual(a.counts_24h);
      expect(d.latest_run?.id, `agent ${a.id} detail latest`).toEqual(a.latest_run?.id);
      expect(d.last_error, `agent ${a.id} detail last_error`).toEqual(a.last_error);
    }
  }, 120_000);
});
