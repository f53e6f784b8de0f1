import { isTerminalStatus, type RunStatus } from '@runlog/core';
import type { Kysely } from 'kysely';
import type { Db } from '../db/database.js';
import { addRows } from '../db/bulk.js';
import type { Database, ModelRollupTable, RunRow } from '../db/schema.js';
import { NO_MODELS, decodeModels } from './models.js';

export const HOUR_MS = 3_600_000;
export const DAY_MS = 24 * HOUR_MS;

/** Log-scale duration bins: each bin spans 10% more than the one before (±5% error). */
/** Duration histogram bins grow by this ratio; stats read the bins back with it. */
export const BIN_RATIO = 1.1;
const LOG_RATIO = Math.log(BIN_RATIO);

export function durationBin(ms: number): number {
  return ms < 1 ? 0 : 1 + Math.floor(Math.log(ms) / LOG_RATIO);
}

/**
 * A representative duration for a bin: the geometric middle of its span, to 0.1 ms, so within
 * 5% of every duration in the bin. (To the whole ms it was not: 12 and 13 ms share a bin, and
 * runs of 13 ms had a p50 of 12.)
 */
export function binValue(bin: number): number {
  if (bin <= 0) return 0;
  return Math.round(Math.pow(BIN_RATIO, bin - 0.5) * 10) / 10;
}

export function hourOf(ms: number): number {
  return Math.floor(ms / HOUR_MS) * HOUR_MS;
}

type RollupRow = Pick<
  RunRow,
  | 'project_id'
  | 'agent_id'
  | 'status'
  | 'trigger'
  | 'sort_at'
  | 'duration_ms'
  | 'input_tokens'
  | 'output_tokens'
  | 'cost_nanos'
  | 'models'
>;

interface RollupDelta {
  project_id: string;
  agent_id: string;
  hour: number;
  status: string;
  trigger: string;
  runs: number;
  duration_count: number;
  duration_sum: number;
  input_tokens: number;
  output_tokens: number;
  cost_nanos: number;
}

/** How a set of run writes moves one `model_rollups` row. */
type ModelDelta = ModelRollupTable;

interface HistogramDelta {
  project_id: string;
  agent_id: string;
  hour: number;
  bin: number;
  runs: number;
}

/**
 * Accumulates how a set of run writes changes the rollup tables: each run's old row is
 * taken out and its new row put in, so the tables stay equal to a scan of `runs`.
 */
export class RollupDeltas {
  private readonly rollups = new Map<string, RollupDelta>();
  private readonly histogram = new Map<string, HistogramDelta>();
  private readonly models = new Map<string, ModelDelta>();

  /** Records a run's change from `before` (absent for a new run) to `after` (absent when deleted). */
  change(before: RollupRow | undefined, after: RollupRow | undefined): void {
    if (before && after && sameContribution(before, after)) return;
    if (before) this.add(before, -1);
    if (after) this.add(after, 1);
  }

  /** Takes over another set's deltas (a savepoint's, once it is released). */
  merge(other: RollupDeltas): void {
    for (const [key, d] of other.rollups) {
      const mine = this.rollups.get(key);
      if (!mine) this.rollups.set(key, { ...d });
      else for (const m of ROLLUP_METRICS) mine[m] += d[m];
    }
    for (const [key, h] of other.histogram) {
      const mine = this.histogram.get(key);
      if (!mine) this.histogram.set(key, { ...h });
      else mine.runs += h.runs;
    }
    for (const [key, d] of other.models) {
      const mine = this.models.get(key);
      if (!mine) this.models.set(key, { ...d });
      else for (const m of MODEL_METRICS) mine[m] += d[m];
    }
    other.rollups.clear();
    other.histogram.clear();
    other.models.clear();
  }

  get empty(): boolean {
    return this.rollups.size === 0 && this.histogram.size === 0 && this.models.size === 0;
  }

  private add(row: RollupRow, sign: 1 | -1): void {
    const hour = hourOf(row.sort_at);
    const finished = isTerminalStatus(row.status as RunStatus) && row.duration_ms !== null;
    const key = `${row.project_id}\u0000${row.agent_id}\u0000${hour}\u0000${row.status}\u0000${row.trigger}`;
    let d = this.rollups.get(key);
    if (!d) {
      d = {
        project_id: row.project_id,
        agent_id: row.agent_id,
        hour,
        status: row.status,
        trigger: row.trigger,
        runs: 0,
        duration_count: 0,
        duration_sum: 0,
        input_tokens: 0,
        output_tokens: 0,
        cost_nanos: 0,
      };
      this.rollups.set(key, d);
    }
    d.runs += sign;
    d.input_tokens += sign * row.input_tokens;
    d.output_tokens += sign * row.output_tokens;
    d.cost_nanos += sign * row.cost_nanos;
    if (finished) {
      d.duration_count += sign;
      d.duration_sum += sign * (row.duration_ms ?? 0);
      const bin = durationBin(row.duration_ms ?? 0);
      const hkey = `${row.project_id}\u0000${row.agent_id}\u0000${hour}\u0000${bin}`;
      let h = this.histogram.get(hkey);
      if (!h) {
        h = { project_id: row.project_id, agent_id: row.agent_id, hour, bin, runs: 0 };
        this.histogram.set(hkey, h);
      }
      h.runs += sign;
    }
    if (row.models !== NO_MODELS) {
      for (const [model, [calls, input, output, cost]] of decodeModels(row.models)) {
        const mkey = `${row.project_id}\u0000${row.agent_id}\u0000${hour}\u0000${model}`;
        let m = this.models.get(mkey);
        if (!m) {
          m = {
            project_id: row.project_id,
            agent_id: row.agent_id,
            hour,
            model,
            runs: 0,
            calls: 0,
            input_tokens: 0,
            output_tokens: 0,
            cost_nanos: 0,
          };
          this.models.set(mkey, m);
        }
        m.runs += sign;
        m.calls += sign * calls;
        m.input_tokens += sign * input;
        m.output_tokens += sign * output;
        m.cost_nanos += sign * cost;
      }
    }
  }

  /**
   * Writes the accumulated deltas inside the caller's transaction, to every grain: per
   * agent and hour, per agent and day, per project and hour, per project and day (on SQLite
   * through reused prepared statements).
   */
  async flush(trx: Kysely<Database>, db: Db): Promise<void> {
    const rollups = [...this.rollups.values()];
    const histogram = [...this.histogram.values()];
    const models = [...this.models.values()];
    this.rollups.clear();
    this.histogram.clear();
    this.models.clear();
    for (const grain of GRAINS) {
      const rows = aggregate(rollups, grain, ROLLUP_METRICS).filter((r) =>
        ROLLUP_METRICS.some((m) => r[m] !== 0),
      );
      await addRows(
        db,
        trx,
        grain.rollups,
        rows,
        [...grain.keys, 'status', 'trigger'],
        ROLLUP_METRICS,
      );
      const bins = aggregate(histogram, grain, ['runs']).filter((r) => r.runs !== 0);
      await addRows(db, trx, grain.histogram, bins, [...grain.keys, 'bin'], ['runs']);
    }
    for (const grain of MODEL_GRAINS) {
      const rows = aggregate(models, grain, MODEL_METRICS).filter((r) =>
        MODEL_METRICS.some((m) => r[m] !== 0),
      );
      await addRows(db, trx, grain.rollups, rows, [...grain.keys, 'model'], MODEL_METRICS);
    }
  }
}

const MODEL_METRICS = ['runs', 'calls', 'input_tokens', 'output_tokens', 'cost_nanos'] as const;

/** The model rollups' grains: per agent, by hour and by day (all agents sum them). */
const MODEL_GRAINS: Pick<Grain, 'rollups' | 'keys' | 'day' | 'agent'>[] = [
  { rollups: 'model_rollups', keys: ['project_id', 'hour', 'agent_id'], day: false, agent: true },
  {
    rollups: 'model_rollups_daily',
    keys: ['project_id', 'day', 'agent_id'],
    day: true,
    agent: true,
  },
];

/** The summed columns of every run rollup table. */
export const ROLLUP_METRICS = [
  'runs',
  'duration_count',
  'duration_sum',
  'input_tokens',
  'output_tokens',
  'cost_nanos',
] as const;

interface Grain {
  rollups: keyof Database;
  histogram: keyof Database;
  /** Key columns before status/trigger (rollups) or bin (histogram). */
  keys: string[];
  day: boolean;
  agent: boolean;
}

const GRAINS: Grain[] = [
  {
    rollups: 'run_rollups',
    histogram: 'duration_histogram',
    keys: ['project_id', 'agent_id', 'hour'],
    day: false,
    agent: true,
  },
  {
    rollups: 'run_rollups_daily',
    histogram: 'duration_histogram_daily',
    keys: ['project_id', 'day', 'agent_id'],
    day: true,
    agent: true,
  },
  {
    rollups: 'project_rollups',
    histogram: 'project_duration_histogram',
    keys: ['project_id', 'hour'],
    day: false,
    agent: false,
  },
  {
    rollups: 'project_rollups_daily',
    histogram: 'project_duration_histogram_daily',
    keys: ['project_id', 'day'],
    day: true,
    agent: false,
  },
];

type Delta = Record<string, string | number>;

/** Sums hourly per-agent deltas into one grain's rows, in a stable key order. */
function aggregate(
  deltas: readonly object[],
  grain: Pick<Grain, 'day' | 'agent'>,
  metrics: readonly string[],
): Delta[] {
  const out = new Map<string, Delta>();
  for (const raw of deltas) {
    const d = raw as Delta;
    const row: Delta = { project_id: d.project_id! };
    if (grain.agent) row.agent_id = d.agent_id!;
    if (grain.day) row.day = Math.floor(Number(d.hour) / DAY_MS) * DAY_MS;
    else row.hour = d.hour!;
    for (const extra of ['status', 'trigger', 'bin', 'model'])
      if (extra in d) row[extra] = d[extra]!;
    const key = Object.values(row).join('\u0000');
    const acc = out.get(key);
    if (acc) for (const m of metrics) acc[m] = Number(acc[m]) + Number(d[m]);
    else {
      for (const m of metrics) row[m] = Number(d[m]);
      out.set(key, row);
    }
  }
  // a stable order keeps concurrent writers on PostgreSQL from deadlocking on these rows
  return [...out.entries()].sort((a, b) => cmp(a[0], b[0])).map(([, r]) => r);
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function sameContribution(a: RollupRow, b: RollupRow): boolean {
  return (
    a.agent_id === b.agent_id &&
    a.status === b.status &&
    a.trigger === b.trigger &&
    hourOf(a.sort_at) === hourOf(b.sort_at) &&
    a.duration_ms === b.duration_ms &&
    a.input_tokens === b.input_tokens &&
    a.output_tokens === b.output_tokens &&
    a.cost_nanos === b.cost_nanos &&
    a.models === b.models
  );
}
