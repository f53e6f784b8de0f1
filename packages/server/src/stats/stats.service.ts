import { sql, type Kysely, type RawBuilder } from 'kysely';
import {
  RUN_STATUSES,
  RUN_TRIGGERS,
  FAILED_RUN_STATUSES,
  TERMINAL_RUN_STATUSES,
  canonicalZone,
  localDayOf,
  localDayStart,
  nanosToUsd,
  toIso,
  type RunStatus,
  type RunTrigger,
  type StatsQuery,
  type StatsResponse,
  type StatsTotals,
} from '@runlog/core';
import type { Db } from '../db/database.js';
import { readOffLoop } from '../db/readers.js';
import { scoreStats } from '../scores/scores.js';
import { sumOf } from '../db/dialect.js';
import type { ModelRollupTable } from '../db/schema.js';
import { AppError } from '../http/errors.js';
import { DAY_MS, HOUR_MS, ROLLUP_METRICS, binValue, hourOf } from './rollup.js';
import { daySources, localDays, type LocalDays } from './local-days.js';

interface GrainRow {
  project_id: string;
  agent_id: string;
  hour: number;
  day: number;
  status: string;
  trigger: string;
  bin: number;
  runs: number;
  duration_count: number;
  duration_sum: number;
  input_tokens: number;
  output_tokens: number;
  cost_nanos: number;
}

/** A row of either grain of the model rollups, as the range's pieces read them. */
type ModelRollupRow = ModelRollupTable & { day: number };

/** Models by name, steps without one ('') last. */
function byModelName(a: string, b: string): number {
  if (a === b) return 0;
  if (a === '') return 1;
  if (b === '') return -1;
  return a < b ? -1 : 1;
}

/** How far back stats reach when `from` is not given. */
export const DEFAULT_STATS_RANGE_MS = 30 * DAY_MS;
/** Most buckets one answer's series holds. */
export const MAX_SERIES_BUCKETS = 10_000;

interface Acc {
  runs: number;
  by_status: Record<RunStatus, number>;
  by_trigger: Record<RunTrigger, number>;
  duration_count: number;
  duration_sum: number;
  input_tokens: number;
  output_tokens: number;
  cost_nanos: number;
  bins: Map<number, number>;
}

function emptyAcc(): Acc {
  return {
    runs: 0,
    by_status: Object.fromEntries(RUN_STATUSES.map((s) => [s, 0])) as Record<RunStatus, number>,
    by_trigger: Object.fromEntries(RUN_TRIGGERS.map((s) => [s, 0])) as Record<RunTrigger, number>,
    duration_count: 0,
    duration_sum: 0,
    input_tokens: 0,
    output_tokens: 0,
    cost_nanos: 0,
    bins: new Map(),
  };
}

interface RollupSums {
  status: string;
  trigger?: string;
  runs: number;
  duration_count: number;
  duration_sum: number;
  input_tokens: number;
  output_tokens: number;
  cost_nanos: number;
}

function addSums(acc: Acc, row: RollupSums): void {
  acc.runs += row.runs;
  if (row.status in acc.by_status) acc.by_status[row.status as RunStatus] += row.runs;
  if (row.trigger !== undefined && row.trigger in acc.by_trigger)
    acc.by_trigger[row.trigger as RunTrigger] += row.runs;
  acc.duration_count += row.duration_count;
  acc.duration_sum += row.duration_sum;
  acc.input_tokens += row.input_tokens;
  acc.output_tokens += row.output_tokens;
  acc.cost_nanos += row.cost_nanos;
}

/** Adds a bin's runs (taken away when negative: an hour a range's daily rows overcount). */
function addBin(acc: Acc, bin: number, runs: number): void {
  if (runs !== 0) acc.bins.set(bin, (acc.bins.get(bin) ?? 0) + runs);
}

/**
 * The duration at quantile `q` of a log-scale histogram: the geometric middle of the bin the
 * quantile falls in (`binValue`), so within 5% of the true value whatever the spread, and 0
 * for runs under a millisecond; null for an empty histogram. (Interpolating inside the bin
 * read as if a bin's runs spread over it, and put the p95 of runs that all took 6.5 s at
 * 7.0 s, slower than any of them.)
 * @example percentile(new Map([[73, 1]]), 0.5) === binValue(73)
 */
export function percentile(bins: ReadonlyMap<number, number>, q: number): number | null {
  const sorted = [...bins.entries()].filter(([, n]) => n > 0).sort((a, b) => a[0] - b[0]);
  const total = sorted.reduce((sum, [, n]) => sum + n, 0);
  if (total === 0) return null;
  const rank = q * total;
  let cum = 0;
  for (const [bin, n] of sorted) {
    cum += n;
    if (cum >= rank) return binValue(bin);
  }
  return binValue(sorted[sorted.length - 1]![0]);
}

function finish(acc: Acc): StatsTotals {
  const failed = FAILED_RUN_STATUSES.reduce((sum, s) => sum + acc.by_status[s], 0);
  const finished = TERMINAL_RUN_STATUSES.reduce((sum, s) => sum + acc.by_status[s], 0);
  return {
    runs: acc.runs,
    by_status: acc.by_status,
    by_trigger: acc.by_trigger,
    fail_rate: finished > 0 ? failed / finished : null,
    avg_duration_ms: acc.duration_count > 0 ? acc.duration_sum / acc.duration_count : null,
    p50_duration_ms: percentile(acc.bins, 0.5),
    p95_duration_ms: percentile(acc.bins, 0.95),
    input_tokens: acc.input_tokens,
    output_tokens: acc.output_tokens,
    total_tokens: acc.input_tokens + acc.output_tokens,
    cost_usd: nanosToUsd(acc.cost_nanos),
  };
}

/** The bucket-aligned range and bucket a stats query covers. */
export interface StatsRange {
  from: number;
  to: number;
  bucket: 'hour' | 'day';
  bucketMs: number;
  /** Day buckets of a zone other than UTC: the zone's days, read from the hourly rollups. */
  local?: LocalDays;
}

/** The bucket-aligned range and bucket a stats query covers. */
export function statsRange(query: StatsQuery, now: number): StatsRange {
  const rawTo = query.to ?? now;
  const rawFrom = query.from ?? rawTo - DEFAULT_STATS_RANGE_MS;
  if (rawFrom > rawTo) {
    // without a `to`, the caller's `from` is what is wrong: it is past now, `to`'s default
    if (query.to === undefined)
      throw AppError.invalid('query.from', 'must not be after now (to defaults to now)');
    throw AppError.invalid('query.to', 'must not be before from');
  }
  const hourFrom = hourOf(rawFrom);
  const hourTo = Math.max(
    hourOf(rawTo) === rawTo ? rawTo : hourOf(rawTo) + HOUR_MS,
    hourFrom + HOUR_MS,
  );
  const bucket = query.bucket ?? (hourTo - hourFrom > 2 * DAY_MS ? 'day' : 'hour');
  const zone = query.tz === undefined ? 'UTC' : canonicalZone(query.tz);
  if (bucket === 'day' && zone !== 'UTC') {
    const local = zoneDays(zone, query, rawFrom, rawTo);
    if (local)
      return { from: local.starts[0]!, to: local.starts.at(-1)!, bucket, bucketMs: DAY_MS, local };
  }
  const bucketMs = bucket === 'day' ? DAY_MS : HOUR_MS;
  // whole buckets: the rollups hold no finer grain
  const from = Math.floor(rawFrom / bucketMs) * bucketMs;
  const to = Math.max(Math.ceil(rawTo / bucketMs) * bucketMs, from + bucketMs);
  tooManyBuckets((to - from) / bucketMs, bucket);
  return { from, to, bucket, bucketMs };
}

function tooManyBuckets(buckets: number, bucket: 'hour' | 'day'): void {
  if (buckets > MAX_SERIES_BUCKETS)
    throw AppError.invalid(
      'query.bucket',
      `the range holds over ${MAX_SERIES_BUCKETS} ${bucket} buckets`,
    );
}

/**
 * The zone's whole days a range covers: from the day `from` is in (without a `from`, 30
 * calendar days before the day `to` is in, as the UTC default reads 30 days back) to the day
 * `to` is in, unless `to` is a day's start. Undefined for a zone that showed UTC over all of
 * it (Etc/UTC, Africa/Abidjan): its days are UTC days, read from the daily rollups.
 */
function zoneDays(
  zone: string,
  query: StatsQuery,
  rawFrom: number,
  rawTo: number,
): LocalDays | undefined {
  const firstDay =
    query.from === undefined
      ? localDayOf(zone, rawTo) - DEFAULT_STATS_RANGE_MS / DAY_MS
      : localDayOf(zone, rawFrom);
  let endDay = localDayOf(zone, rawTo);
  if (localDayStart(zone, endDay) !== rawTo) endDay += 1;
  endDay = Math.max(endDay, firstDay + 1);
  tooManyBuckets(endDay - firstDay, 'day');
  const days = localDays(zone, firstDay, endDay);
  // every day a UTC day: the zone showed UTC over all of them
  const utc = days.starts.every((start) => start % DAY_MS === 0);
  return utc ? undefined : days;
}

/** Part of a range read from one grain of the rollups, its rows added (1) or taken away (-1). */
export interface RangePiece {
  grain: 'hour' | 'day';
  from: number;
  to: number;
  sign: 1 | -1;
}

/**
 * The pieces a range's totals are read from: the daily rows of the UTC days nearest its
 * edges, with the hours between each edge and its day's start added or taken away (sums
 * telescope: every daily row is the sum of its hours'); a range in which that reads more rows
 * than its own hours do is read by the hour. A range from 08:00 to 08:00 (Los Angeles'
 * midnight) 30 days later then reads 30 days and 16 hours, not 29 days and 24 hours, and one
 * from 23:00 (Berlin's) 30 days and 2 hours.
 * @example rangePieces(0, 2 * DAY_MS) // [{ grain: 'day', from: 0, to: 2 * DAY_MS, sign: 1 }]
 */
export function rangePieces(from: number, to: number): RangePiece[] {
  const first = Math.round(from / DAY_MS) * DAY_MS;
  const last = Math.round(to / DAY_MS) * DAY_MS;
  const hours = (Math.abs(from - first) + Math.abs(to - last)) / HOUR_MS;
  // a daily row costs about what an hourly one does: days and hours against the range's hours
  if (last <= first || (last - first) / DAY_MS + hours >= (to - from) / HOUR_MS)
    return [{ grain: 'hour', from, to, sign: 1 }];
  const pieces: RangePiece[] = [{ grain: 'day', from: first, to: last, sign: 1 }];
  if (from !== first)
    pieces.push({
      grain: 'hour',
      from: Math.min(from, first),
      to: Math.max(from, first),
      sign: from > first ? -1 : 1,
    });
  if (to !== last)
    pieces.push({
      grain: 'hour',
      from: Math.min(to, last),
      to: Math.max(to, last),
      sign: to > last ? 1 : -1,
    });
  return pieces;
}

/** A piece's rows with its sign. */
async function signed<R>(
  piece: { sign: 1 | -1 },
  rows: Promise<R[]>,
): Promise<{ sign: 1 | -1; rows: R[] }> {
  return { sign: piece.sign, rows: await rows };
}

/** The rollup tables of one grain: per agent, and for the whole project. */
const TABLES = {
  hour: {
    time: 'hour',
    agent: { rollups: 'run_rollups', histogram: 'duration_histogram' },
    project: { rollups: 'project_rollups', histogram: 'project_duration_histogram' },
  },
  day: {
    time: 'day',
    agent: { rollups: 'run_rollups_daily', histogram: 'duration_histogram_daily' },
    project: { rollups: 'project_rollups_daily', histogram: 'project_duration_histogram_daily' },
  },
} as const;

/**
 * Run analytics read only from the rollup tables (never `runs`): totals and the per-agent
 * table from the daily grain for whole days (hourly for edge hours), the series at the
 * bucket's grain, per project when no agent is asked for; so the cost follows buckets ×
 * status/trigger combinations, not the number of runs. Day buckets of a zone other than UTC
 * are summed from the hourly rows (what an hourly series of the range reads), each hour in
 * the local day it starts in.
 * Bucket-granular: `from` is floored and `to` ceiled to whole buckets (UTC hours, the
 * zone's days).
 */
export async function computeStats(
  db: Db,
  projectId: string,
  query: StatsQuery,
  now: number,
): Promise<StatsResponse> {
  const { from, to, bucket, bucketMs, local } = statsRange(query, now);
  const agentIds = query.agent_id;
  // Kysely cannot type a table chosen at run time; every table here has these columns
  const k = db.kysely as unknown as Kysely<Record<string, GrainRow>>;

  const pieces = rangePieces(from, to);
  /**
   * SQLite: the per-agent daily histogram is read through its index that leads with the agent
   * (`+day`, on which no index seeks, leaves it the one that helps): all of an agent's days,
   * in (agent, bin) order, so nothing is sorted. The statistics PRAGMA optimize samples make
   * SQLite seek the days on the primary key and sort the rows instead: for 30 days of 50
   * agents, 15 ms against 5 ms a half, and 5 ms against 0.2 for one agent. Worth it for some
   * agents, and for all of them while the range holds a third of the history or more.
   */
  const byAgentIndex =
    db.dialect === 'sqlite' &&
    (agentIds?.length || (to - from) * 3 >= now - (await firstDay(db, projectId, now)));
  const rollups = (scope: 'agent' | 'project', grain: 'hour' | 'day', lo: number, hi: number) => {
    const time = sql.ref<number>(TABLES[grain].time);
    let q = k
      .selectFrom(TABLES[grain][scope].rollups)
      .where('project_id', '=', projectId)
      .where(time, '>=', lo)
      .where(time, '<', hi);
    if (scope === 'agent' && agentIds?.length) q = q.where('agent_id', 'in', agentIds);
    return q.select(ROLLUP_METRICS.map((c) => sumOf(db, c)));
  };
  const histogram = (
    scope: 'agent' | 'project',
    grain: 'hour' | 'day',
    lo: number,
    hi: number,
    agents?: { below?: string; from?: string },
  ) => {
    const column = sql.ref<number>(TABLES[grain].time);
    const time =
      scope === 'agent' && grain === 'day' && byAgentIndex ? sql<number>`+${column}` : column;
    let q = k
      .selectFrom(TABLES[grain][scope].histogram)
      .where('project_id', '=', projectId)
      .where(time, '>=', lo)
      .where(time, '<', hi);
    if (scope === 'agent' && agentIds?.length) q = q.where('agent_id', 'in', agentIds);
    if (agents?.below !== undefined) q = q.where('agent_id', '<', agents.below);
    if (agents?.from !== undefined) q = q.where('agent_id', '>=', agents.from);
    return q.select((eb) => eb.fn.sum<number | string>('runs').as('runs'));
  };
  const models = (grain: 'hour' | 'day', lo: number, hi: number) => {
    const time = sql.ref<number>(TABLES[grain].time);
    let q = (db.kysely as unknown as Kysely<Record<string, ModelRollupRow>>)
      .selectFrom(grain === 'hour' ? 'model_rollups' : 'model_rollups_daily')
      .where('project_id', '=', projectId)
      .where(time, '>=', lo)
      .where(time, '<', hi);
    if (agentIds?.length) q = q.where('agent_id', 'in', agentIds);
    return q
      .select([
        'model',
        sumOf(db, 'runs'),
        sumOf(db, 'calls'),
        sumOf(db, 'input_tokens'),
        sumOf(db, 'output_tokens'),
        sumOf(db, 'cost_nanos'),
      ])
      .groupBy('model');
  };
  // the series of one or some agents comes from the per-agent tables, of all from the project's
  const seriesScope = agentIds?.length ? 'agent' : 'project';
  const bucketTime = sql.ref<number>(TABLES[bucket].time);
  // a zone's days are not UTC days: a day's rows are its nearest UTC day's, corrected by hours
  // (`daySources`), and `t` is the day's index (then its start)
  const bucketStart = local ? (index: number) => local.starts[index]! : (t: number) => t;
  /**
   * The rows of a zone's days `first` to `end` in one of the series' rollup tables, as a
   * derived table: `t`, the `keys` and the `sums` columns, each hourly correction's sums
   * with its sign.
   */
  const localRows = (
    kind: 'rollups' | 'histogram',
    keys: string[],
    sums: string[],
    first: number,
    end: number,
  ) => {
    const { daily, hourly } = daySources(local!, first, end);
    const inAgents =
      seriesScope === 'agent' ? sql` and x.agent_id in (${sql.join(agentIds!)})` : sql``;
    const keyCols = sql.join(keys.map((c) => sql.ref(`x.${c}`)));
    const rows = (sign: RawBuilder<number> | undefined) =>
      sql.join(
        sums.map((c) =>
          sign ? sql`x.${sql.ref(c)} * ${sign} as ${sql.ref(c)}` : sql`x.${sql.ref(c)}`,
        ),
      );
    const lit = (n: number) => sql.lit(n);
    const fromDays = sql`select w.column2 as t, ${keyCols}, ${rows(undefined)}
      from (values ${sql.join(daily.map((d) => sql`(${lit(d.day)}, ${lit(d.t)})`))}) as w
      join ${sql.table(TABLES.day[seriesScope][kind])} as x on x.day = w.column1
      where x.project_id = ${projectId}${inAgents}`;
    type Row = GrainRow & { t: number };
    if (hourly.length === 0) return sql<Row>`(${fromDays})`.as('src');
    const windows = hourly.map(
      (h) => sql`(${lit(h.lo)}, ${lit(h.hi)}, ${lit(h.t)}, ${lit(h.sign)})`,
    );
    return sql<Row>`(${fromDays} union all select w.column3 as t, ${keyCols}, ${rows(sql.ref('w.column4'))}
      from (values ${sql.join(windows)}) as w
      join ${sql.table(TABLES.hour[seriesScope][kind])} as x
        on x.hour >= w.column1 and x.hour < w.column2
      where x.project_id = ${projectId}${inAgents})`.as('src');
  };

  // the queries are independent: with readers (a SQLite file) they run in parallel, off the
  // event loop, and the largest, every agent's histogram, in two halves of the agents (its
  // index leads with the agent, so each half reads half of it)
  const pivot = db.readers && !agentIds?.length ? await middleAgent(db, projectId) : undefined;
  const binParts: ((typeof pieces)[number] & { agents?: { below?: string; from?: string } })[] =
    pieces.flatMap((p) =>
      pivot === undefined
        ? [p]
        : [
            { ...p, agents: { below: pivot } },
            { ...p, agents: { from: pivot } },
          ],
    );
  // issued largest first: each goes to the least busy reader as it is issued
  const binPieces = Promise.all(
    binParts.map((p) =>
      signed(
        p,
        readOffLoop(
          db,
          histogram('agent', p.grain, p.from, p.to, p.agents)
            .select(['agent_id', 'bin'])
            .groupBy(['agent_id', 'bin']),
        ),
      ),
    ),
  );
  const agentPieces = Promise.all(
    pieces.map((p) =>
      signed(
        p,
        readOffLoop(
          db,
          rollups('agent', p.grain, p.from, p.to)
            .select(['agent_id', 'status', 'trigger'])
            .groupBy(['agent_id', 'status', 'trigger']),
        ),
      ),
    ),
  );
  // each bucket's p50 and p95 bins, found where the bins are (as `percentile` finds them):
  // an hourly series over 30 days reads ~40,000 bins, and sends back 720 rows. With readers,
  // the earlier and the later half of the buckets are read in parallel.
  const seriesPercentiles = (lo: number, hi: number) => {
    const bins = local
      ? k
          .selectFrom(localRows('histogram', ['bin'], ['runs'], lo, hi))
          .select([
            sql.ref<number>('t').as('t'),
            'bin',
            (eb) => eb.fn.sum<number | string>('runs').as('runs'),
          ])
          .groupBy([sql.ref('t'), 'bin'])
          .having(sql`sum(runs)`, '>', 0)
      : histogram(seriesScope, bucket, lo, hi)
          .select([bucketTime.as('t'), 'bin'])
          .groupBy([bucketTime, 'bin'])
          .having(sql`sum(runs)`, '>', 0);
    const cumulative = k
      .selectFrom(bins.as('b'))
      .select([
        sql.ref<number>('t').as('t'),
        sql.ref<number>('bin').as('bin'),
        sql<number>`cast(sum(runs) over (partition by t order by bin) as double precision)`.as(
          'cum',
        ),
        sql<number>`cast(sum(runs) over (partition by t) as double precision)`.as('tot'),
      ]);
    const at = (q: number) =>
      sql<number | null>`min(case when cum >= ${sql.lit(q)} * tot then bin end)`;
    return k
      .selectFrom(cumulative.as('c'))
      .select([sql.ref<number>('t').as('t'), at(0.5).as('p50'), at(0.95).as('p95')])
      .groupBy(sql.ref('t'));
  };
  const buckets = local ? local.starts.length - 1 : (to - from) / bucketMs;
  // a series' buckets as `seriesPercentiles` and `localRows` take them: a zone's days by index
  const [first, end] = local ? [0, buckets] : [from, to];
  const middle = local ? Math.floor(buckets / 2) : from + Math.floor(buckets / 2) * bucketMs;
  // (a zone's day reads a day's row and hours: split as an hourly series of 48 hours is)
  const halves =
    db.readers && buckets * (local ? 24 : 1) >= 48
      ? [
          [first, middle],
          [middle, end],
        ]
      : [[first, end]];
  const bucketPercentiles = Promise.all(
    halves.map(([lo, hi]) => readOffLoop(db, seriesPercentiles(lo!, hi!))),
  );
  const byBucketRows = readOffLoop(
    db,
    local
      ? k
          .selectFrom(localRows('rollups', ['status'], [...ROLLUP_METRICS], 0, buckets))
          .select([
            sql.ref<number>('t').as('t'),
            'status',
            ...ROLLUP_METRICS.map((c) => sumOf(db, c)),
          ])
          .groupBy([sql.ref('t'), 'status'])
      : rollups(seriesScope, bucket, from, to)
          .select([bucketTime.as('t'), 'status'])
          .groupBy([bucketTime, 'status']),
  );
  const modelPieces = Promise.all(
    pieces.map((p) => signed(p, readOffLoop(db, models(p.grain, p.from, p.to)))),
  );
  const [binRows, agentRows, percentileRows, bucketRows, modelRows, byScore] = await Promise.all([
    binPieces,
    agentPieces,
    bucketPercentiles,
    byBucketRows,
    modelPieces,
    scoreStats(db, projectId, agentIds, from, to),
  ]);
  const sums = (
    r: {
      runs: number | string;
      duration_count: number | string;
      duration_sum: number | string;
      input_tokens: number | string;
      output_tokens: number | string;
      cost_nanos: number | string;
    },
    sign = 1,
  ) => ({
    runs: sign * Number(r.runs),
    duration_count: sign * Number(r.duration_count),
    duration_sum: sign * Number(r.duration_sum),
    input_tokens: sign * Number(r.input_tokens),
    output_tokens: sign * Number(r.output_tokens),
    cost_nanos: sign * Number(r.cost_nanos),
  });

  const totals = emptyAcc();
  const perAgent = new Map<string, Acc>();
  for (const { sign, rows } of agentRows)
    for (const row of rows) {
      const s = { status: row.status, trigger: row.trigger, ...sums(row, sign) };
      addSums(totals, s);
      let acc = perAgent.get(row.agent_id);
      if (!acc) perAgent.set(row.agent_id, (acc = emptyAcc()));
      addSums(acc, s);
    }
  for (const { sign, rows } of binRows)
    for (const row of rows) {
      const runs = sign * Number(row.runs);
      addBin(totals, row.bin, runs);
      const acc = perAgent.get(row.agent_id);
      if (acc) addBin(acc, row.bin, runs);
    }

  const perBucket = new Map<number, Acc>();
  if (local) for (const t of local.starts.slice(0, -1)) perBucket.set(t, emptyAcc());
  else for (let t = from; t < to; t += bucketMs) perBucket.set(t, emptyAcc());
  for (const row of bucketRows) {
    const acc = perBucket.get(bucketStart(Number(row.t)));
    if (acc) addSums(acc, { status: row.status, ...sums(row) });
  }
  const percentiles = new Map<number, { p50: number | null; p95: number | null }>();
  for (const row of percentileRows.flat()) {
    const bin = (b: number | string | null) => (b === null ? null : binValue(Number(b)));
    percentiles.set(bucketStart(Number(row.t)), { p50: bin(row.p50), p95: bin(row.p95) });
  }

  const perModel = new Map<string, [number, number, number, number, number]>();
  for (const { sign, rows } of modelRows)
    for (const row of rows) {
      const acc = perModel.get(row.model) ?? [0, 0, 0, 0, 0];
      acc[0] += sign * Number(row.runs);
      acc[1] += sign * Number(row.calls);
      acc[2] += sign * Number(row.input_tokens);
      acc[3] += sign * Number(row.output_tokens);
      acc[4] += sign * Number(row.cost_nanos);
      perModel.set(row.model, acc);
    }
  const byModel = [...perModel.entries()]
    .filter(([, [runs]]) => runs > 0)
    .sort(
      ([a, x], [b, y]) =>
        y[4] - x[4] || y[2] + y[3] - x[2] - x[3] || y[1] - x[1] || byModelName(a, b),
    )
    .map(([model, [runs, calls, input_tokens, output_tokens, cost_nanos]]) => ({
      model: model === '' ? null : model,
      runs,
      calls,
      input_tokens,
      output_tokens,
      total_tokens: input_tokens + output_tokens,
      cost_usd: nanosToUsd(cost_nanos),
    }));

  return {
    from: toIso(from),
    to: toIso(to),
    bucket,
    totals: finish(totals),
    by_agent: [...perAgent.entries()]
      .filter(([, acc]) => acc.runs > 0)
      .map(([agent_id, acc]) => ({ agent_id, ...finish(acc) }))
      .sort((a, b) => b.runs - a.runs || (a.agent_id < b.agent_id ? -1 : 1)),
    by_model: byModel,
    by_score: byScore,
    series: [...perBucket.entries()].map(([t, acc]) => {
      const { by_trigger: _omit, ...rest } = finish(acc);
      const p = percentiles.get(t);
      return {
        t: toIso(t),
        ...rest,
        p50_duration_ms: p?.p50 ?? null,
        p95_duration_ms: p?.p95 ?? null,
      };
    }),
  };
}

/** The first day of the project's per-agent daily histogram (`now` without one). */
async function firstDay(db: Db, projectId: string, now: number): Promise<number> {
  const row = await db.kysely
    .selectFrom('duration_histogram_daily')
    .where('project_id', '=', projectId)
    .select((eb) => eb.fn.min<number | string | null>('day').as('day'))
    .executeTakeFirst();
  return row?.day == null ? now : Number(row.day);
}

/** The id in the middle of the project's agents in id order (one query); undefined without any. */
async function middleAgent(db: Db, projectId: string): Promise<string | undefined> {
  const half = db.kysely
    .selectFrom('agents')
    .where('project_id', '=', projectId)
    .select(sql<number>`count(*) / 2`.as('half'));
  const row = await db.kysely
    .selectFrom('agents')
    .where('project_id', '=', projectId)
    .select('id')
    .orderBy('id')
    .limit(1)
    .offset(half)
    .executeTakeFirst();
  return row?.id;
}
