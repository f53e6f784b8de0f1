import { isTerminalStatus, type RunStatus } from '@runlog/core';
import type { Kysely } from 'kysely';
import type { Database, RunRow } from '../db/schema.js';

export const HOUR_MS = 3_600_000;
export const DAY_MS = 24 * HOUR_MS;

/** Log-scale duration bins: each bin spans 10% more than the one before (±5% error). */
const BIN_RATIO = 1.1;
const LOG_RATIO = Math.log(BIN_RATIO);

export function durationBin(ms: number): number {
  return ms < 1 ? 0 : 1 + Math.floor(Math.log(ms) / LOG_RATIO);
}

/** A representative duration for a bin: the geometric middle of its span. */
export function binValue(bin: number): number {
  if (bin <= 0) return 0;
  return Math.round(Math.pow(BIN_RATIO, bin - 0.5));
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

  /** Records a run's change from `before` (absent for a new run) to `after` (absent when deleted). */
  change(before: RollupRow | undefined, after: RollupRow | undefined): void {
    if (before && after && sameContribution(before, after)) return;
    if (before) this.add(before, -1);
    if (after) this.add(after, 1);
  }

  get empty(): boolean {
    return this.rollups.size === 0 && this.histogram.size === 0;
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
  }

  /** Writes the accumulated deltas inside the caller's transaction. */
  async flush(trx: Kysely<Database>): Promise<void> {
    const rollups = [...this.rollups.values()].filter(
      (d) =>
        d.runs !== 0 ||
        d.duration_count !== 0 ||
        d.duration_sum !== 0 ||
        d.input_tokens !== 0 ||
        d.output_tokens !== 0 ||
        d.cost_nanos !== 0,
    );
    const histogram = [...this.histogram.values()].filter((h) => h.runs !== 0);
    this.rollups.clear();
    this.histogram.clear();
    // a stable order keeps concurrent writers on PostgreSQL from deadlocking on these rows
    rollups.sort(
      (a, b) =>
        cmp(a.agent_id, b.agent_id) ||
        a.hour - b.hour ||
        cmp(a.status, b.status) ||
        cmp(a.trigger, b.trigger),
    );
    histogram.sort((a, b) => cmp(a.agent_id, b.agent_id) || a.hour - b.hour || a.bin - b.bin);
    for (let i = 0; i < rollups.length; i += 500) {
      await trx
        .insertInto('run_rollups')
        .values(rollups.slice(i, i + 500))
        .onConflict((oc) =>
          oc.columns(['project_id', 'agent_id', 'hour', 'status', 'trigger']).doUpdateSet((eb) => ({
            runs: eb('run_rollups.runs', '+', eb.ref('excluded.runs')),
            duration_count: eb(
              'run_rollups.duration_count',
              '+',
              eb.ref('excluded.duration_count'),
            ),
            duration_sum: eb('run_rollups.duration_sum', '+', eb.ref('excluded.duration_sum')),
            input_tokens: eb('run_rollups.input_tokens', '+', eb.ref('excluded.input_tokens')),
            output_tokens: eb('run_rollups.output_tokens', '+', eb.ref('excluded.output_tokens')),
            cost_nanos: eb('run_rollups.cost_nanos', '+', eb.ref('excluded.cost_nanos')),
          })),
        )
        .execute();
    }
    for (let i = 0; i < histogram.length; i += 500) {
      await trx
        .insertInto('duration_histogram')
        .values(histogram.slice(i, i + 500))
        .onConflict((oc) =>
          oc.columns(['project_id', 'agent_id', 'hour', 'bin']).doUpdateSet((eb) => ({
            runs: eb('duration_histogram.runs', '+', eb.ref('excluded.runs')),
          })),
        )
        .execute();
    }
  }
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
    a.cost_nanos === b.cost_nanos
  );
}
