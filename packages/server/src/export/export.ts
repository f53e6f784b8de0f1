import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { Db } from '../db/database.js';
import { readSnapshot } from '../db/readers.js';
import type { StepRow } from '../db/schema.js';
import {
  budgetedRuns,
  budgetedSteps,
  fillHeldPayloads,
  rowsWithinBudget,
  type PayloadSizes,
  type ListedRunRow,
} from '../db/payloads.js';
import { csvHeader, csvLine, toExportedRun, toExportedStep } from './record.js';
import { exportedSettings } from './settings.js';
import { toRun } from '../runs/runs.mapper.js';

export const EXPORT_FORMATS = ['jsonl', 'csv'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export interface ExportOptions {
  projectId: string;
  format: ExportFormat;
  agentId?: string;
  /** Runs whose `sort_at` is at or after this epoch ms. */
  since?: number;
  /** Runs whose `sort_at` is before this epoch ms. */
  until?: number;
  /** Runs read per query (default 1000). */
  pageSize?: number;
  /** Called after each page is written, with the runs written so far. */
  onProgress?: (runs: number) => void;
}

/** The runs an export covers: the count and every page read the same filters. */
function exportedRuns(db: Db, opts: ExportOptions) {
  let q = db.kysely.selectFrom('runs').where('project_id', '=', opts.projectId);
  if (opts.agentId !== undefined) q = q.where('agent_id', '=', opts.agentId);
  if (opts.since !== undefined) q = q.where('sort_at', '>=', opts.since);
  if (opts.until !== undefined) q = q.where('sort_at', '<', opts.until);
  return q;
}

/** How many runs an export with these filters writes (for a progress bar). */
export async function countExport(db: Db, opts: ExportOptions): Promise<number> {
  const row = await exportedRuns(db, opts)
    .select((eb) => eb.fn.countAll<number | string>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/**
 * Streams a project's runs, oldest first, to `out`: JSONL (a run with its steps per line,
 * after a line for the project's settings and one per agent and price override) or CSV (the
 * run's scalar fields). Pages through a keyset cursor on (sort_at, id) and waits for `out`
 * to drain, so memory stays flat whatever the size.
 * @example await exportRuns(db, { projectId: 'default', format: 'jsonl' }, process.stdout)
 */
export async function exportRuns(
  db: Db,
  opts: ExportOptions,
  out: Writable,
): Promise<{ runs: number; steps: number; agents: number; prices: number }> {
  // one snapshot: a step a live server recorded between the read of its run and of its steps
  // gave a line whose totals did not count all its steps (nor an import of it)
  return readSnapshot(db, (snapshot) => exportFrom(snapshot, opts, out));
}

async function exportFrom(
  db: Db,
  opts: ExportOptions,
  out: Writable,
): Promise<{ runs: number; steps: number; agents: number; prices: number }> {
  const pageSize = opts.pageSize ?? 1000;
  let after: { sort_at: number; id: string } | undefined;
  let runs = 0;
  let steps = 0;
  let agents = 0;
  let prices = 0;
  if (opts.format === 'csv') await write(out, csvHeader());
  else {
    const settings = await exportedSettings(db, opts.projectId, opts.agentId);
    await write(out, settings.lines);
    ({ agents, prices } = settings);
  }
  for (;;) {
    let q = exportedRuns(db, opts).select(budgetedRuns());
    if (after) {
      const a = after;
      // a row-value comparison lets both SQLite and PostgreSQL seek the (project_id, sort_at, id) index
      q = q.where((eb) => eb(eb.refTuple('sort_at', 'id'), '>', eb.tuple(a.sort_at, a.id)));
    }
    const read = (await q
      .orderBy('sort_at')
      .orderBy('id')
      .limit(pageSize)
      .execute()) as unknown as (ListedRunRow & PayloadSizes)[];
    if (read.length === 0) break;
    // a page holds at most PAGE_PAYLOAD_BYTES of the runs' own payloads (each may be 4 MiB)
    const page = read.slice(0, rowsWithinBudget(read));
    await fillHeldPayloads(db, opts.projectId, page);
    if (opts.format === 'csv') {
      await write(out, page.map((row) => csvLine(toRun(row))).join(''));
    } else {
      for (let i = 0; i < page.length;) {
        // runs of few steps are written together, their steps read in one query; a run of
        // many is written a piece at a time, so no run's size is held in memory at once
        const batch: ListedRunRow[] = [];
        let batchSteps = 0;
        for (; i < page.length; i++) {
          const n = page[i]!.step_count;
          if (n > SMALL_RUN_STEPS || batchSteps + n > BATCH_STEPS) break;
          batch.push(page[i]!);
          batchSteps += n;
        }
        if (batch.length > 0) {
          // the steps' large payloads are read one run at a time, as its line is written: a
          // batch of 5000 steps may hold gigabytes of them, past what one string can
          const byRun = await loadSteps(db, opts.projectId, batch);
          const scoresByRun = await loadScores(db, opts.projectId, batch);
          let chunk = '';
          for (const row of batch) {
            const runSteps = byRun.get(row.id) ?? [];
            byRun.delete(row.id);
            await fillHeldPayloads(db, opts.projectId, runSteps, row.id);
            steps += runSteps.length;
            chunk += JSON.stringify(toExportedRun(row, runSteps, scoresByRun.get(row.id))) + '\n';
            if (chunk.length >= WRITE_CHARS) {
              await write(out, chunk);
              chunk = '';
            }
          }
          await write(out, chunk);
        } else steps += await writeLongRun(db, opts.projectId, page[i++]!, out);
      }
    }
    runs += page.length;
    opts.onProgress?.(runs);
    const last = page[page.length - 1]!;
    after = { sort_at: last.sort_at, id: last.id };
    if (read.length < pageSize && page.length === read.length) break;
  }
  return { runs, steps, agents, prices };
}

/** Runs with at most this many steps are written in batches of up to BATCH_STEPS steps. */
const SMALL_RUN_STEPS = 100;
const BATCH_STEPS = 5000;
/** A longer run's steps are read and written this many at a time (fewer past PAGE_PAYLOAD_BYTES). */
const STEP_CHUNK = 200;
/** Lines are written once this many characters of them are waiting. */
const WRITE_CHARS = 1 << 20;

/**
 * Writes a run of many steps as its line (the same bytes as `toExportedRun` stringified),
 * its steps read and written STEP_CHUNK at a time. Returns how many steps it wrote.
 */
async function writeLongRun(db: Db, projectId: string, run: ListedRunRow, out: Writable) {
  const scores = (await loadScores(db, projectId, [run])).get(run.id);
  const head = JSON.stringify(toExportedRun(run, [], scores));
  // `steps` is the line's last key: `..."steps":[]}` opens here and closes after the steps
  await write(out, head.slice(0, -2));
  let after: { seq: number; id: string } | undefined;
  let written = 0;
  for (;;) {
    let q = db.kysely
      .selectFrom('steps')
      .selectAll()
      .where('project_id', '=', projectId)
      .where('run_id', '=', run.id);
    if (after) {
      const a = after;
      q = q.where((eb) => eb(eb.refTuple('seq', 'id'), '>', eb.tuple(a.seq, a.id)));
    }
    const read = (await q
      .select(budgetedSteps())
      .orderBy('seq')
      .orderBy('id')
      .limit(STEP_CHUNK)
      .execute()) as unknown as (StepRow & PayloadSizes)[];
    if (read.length === 0) break;
    // at most PAGE_PAYLOAD_BYTES of payloads at a time: 200 steps may hold 800 MiB
    const rows = read.slice(0, rowsWithinBudget(read));
    await fillHeldPayloads(db, projectId, rows, run.id);
    const text = rows.map((s) => JSON.stringify(toExportedStep(s))).join(',');
    await write(out, (written > 0 ? ',' : '') + text);
    written += rows.length;
    const last = rows[rows.length - 1]!;
    after = { seq: last.seq, id: last.id };
    if (read.length < STEP_CHUNK && rows.length === read.length) break;
  }
  await write(out, ']}\n');
  return written;
}

/** Rows read 500 runs at a time by `read`, grouped by their run, in the order read. */
async function byRun<R extends { run_id: string }>(
  ids: readonly string[],
  read: (chunk: string[]) => Promise<R[]>,
): Promise<Map<string, R[]>> {
  const grouped = new Map<string, R[]>();
  for (let i = 0; i < ids.length; i += 500) {
    for (const row of await read(ids.slice(i, i + 500))) {
      const list = grouped.get(row.run_id);
      if (list) list.push(row);
      else grouped.set(row.run_id, [row]);
    }
  }
  return grouped;
}

async function loadSteps(db: Db, projectId: string, runs: readonly ListedRunRow[]) {
  return byRun(
    runs.map((r) => r.id),
    // payloads over INLINE_PAYLOAD_BYTES are left out (`fillHeldPayloads` reads them)
    (ids) =>
      db.kysely
        .selectFrom('steps')
        .select(budgetedSteps())
        .where('project_id', '=', projectId)
        .where('run_id', 'in', ids)
        .orderBy('run_id')
        .orderBy('seq')
        .orderBy('id')
        .execute() as unknown as Promise<(StepRow & PayloadSizes)[]>,
  );
}

/** The scores of those of `runs` that have any (`runs.scores` says which), by run. */
async function loadScores(db: Db, projectId: string, runs: readonly ListedRunRow[]) {
  return byRun(
    runs.filter((r) => r.scores !== '{}').map((r) => r.id),
    (ids) =>
      db.kysely
        .selectFrom('scores')
        .selectAll()
        .where('project_id', '=', projectId)
        .where('run_id', 'in', ids)
        .orderBy('run_id')
        .orderBy('created_at')
        .orderBy('id')
        .execute(),
  );
}

async function write(out: Writable, chunk: string): Promise<void> {
  if (out.write(chunk)) return;
  // once() rejects if the stream fails while we wait
  await once(out, 'drain');
}
