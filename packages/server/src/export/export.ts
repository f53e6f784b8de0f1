import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { Db } from '../db/database.js';
import type { RunRow, StepRow } from '../db/schema.js';
import { csvHeader, toCsvLine, toExportedRun } from './record.js';
import { exportedSettings } from './settings.js';

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
    let q = exportedRuns(db, opts).selectAll();
    if (after) {
      const a = after;
      // a row-value comparison lets both SQLite and PostgreSQL seek the (project_id, sort_at, id) index
      q = q.where((eb) => eb(eb.refTuple('sort_at', 'id'), '>', eb.tuple(a.sort_at, a.id)));
    }
    const page = await q.orderBy('sort_at').orderBy('id').limit(pageSize).execute();
    if (page.length === 0) break;
    let chunk = '';
    if (opts.format === 'csv') {
      for (const row of page) chunk += toCsvLine(row);
    } else {
      const byRun = await loadSteps(db, opts.projectId, page);
      for (const row of page) {
        const runSteps = byRun.get(row.id) ?? [];
        steps += runSteps.length;
        chunk += JSON.stringify(toExportedRun(row, runSteps)) + '\n';
      }
    }
    await write(out, chunk);
    runs += page.length;
    opts.onProgress?.(runs);
    const last = page[page.length - 1]!;
    after = { sort_at: last.sort_at, id: last.id };
    if (page.length < pageSize) break;
  }
  return { runs, steps, agents, prices };
}

async function loadSteps(
  db: Db,
  projectId: string,
  runs: RunRow[],
): Promise<Map<string, StepRow[]>> {
  const byRun = new Map<string, StepRow[]>();
  const ids = runs.map((r) => r.id);
  for (let i = 0; i < ids.length; i += 500) {
    const rows = await db.kysely
      .selectFrom('steps')
      .selectAll()
      .where('project_id', '=', projectId)
      .where('run_id', 'in', ids.slice(i, i + 500))
      .orderBy('run_id')
      .orderBy('seq')
      .orderBy('id')
      .execute();
    for (const s of rows) {
      const list = byRun.get(s.run_id);
      if (list) list.push(s);
      else byRun.set(s.run_id, [s]);
    }
  }
  return byRun;
}

async function write(out: Writable, chunk: string): Promise<void> {
  if (out.write(chunk)) return;
  // once() rejects if the stream fails while we wait
  await once(out, 'drain');
}
