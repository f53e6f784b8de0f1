import { Readable } from 'node:stream';
import type { Run, RunExportFormat, RunSort } from '@runlog/core';
import type { Db } from '../db/database.js';
import { csvHeader, csvLine } from '../export/record.js';
import { toRun } from './runs.mapper.js';
import { listRuns, type RunCursor, type RunFilter, type SortedCursor } from './runs.repository.js';

/** Runs read a page at a time while an export streams: a page's rows are all it holds. */
const EXPORT_PAGE = 500;

/** What an export's answer is, by its format. */
export const EXPORT_MEDIA_TYPES: Record<RunExportFormat, string> = {
  csv: 'text/csv; charset=utf-8',
  jsonl: 'application/x-ndjson; charset=utf-8',
};

/**
 * The runs `filter` keeps, in the list's order (newest first, or `sort`), at most `limit`,
 * read a page at a time as the consumer takes them: the export of a hundred thousand runs
 * holds one page in memory, and a client that reads slowly holds the reads back.
 */
export async function* exportedRuns(
  db: Db,
  projectId: string,
  filter: RunFilter,
  options: { limit: number; sort?: RunSort | undefined },
): AsyncGenerator<Run> {
  const sort = options.sort && options.sort !== 'newest' ? options.sort : undefined;
  let cursor: RunCursor | undefined;
  let after: SortedCursor | undefined;
  for (let left = options.limit; left > 0;) {
    const wanted = Math.min(EXPORT_PAGE, left);
    // the list reads one run past the page, to know whether there are more
    const read = await listRuns(db, projectId, filter, {
      limit: wanted,
      ...(cursor ? { cursor } : {}),
      ...(sort ? { sorted: { sort, ...(after ? { after } : {}) } } : {}),
    });
    const rows = read.slice(0, wanted);
    for (const row of rows) yield toRun(row);
    const last = rows[rows.length - 1];
    if (!last || read.length <= wanted) return;
    left -= rows.length;
    if (sort) after = { value: last.sort_key ?? '0', id: last.id };
    else cursor = { sortAt: last.sort_at, id: last.id };
  }
}

/**
 * The export's body as a stream of text: the CSV header and a row a run (the file
 * `runlog export --format csv` writes), or a JSON line a run (the objects `GET /runs` lists).
 * Rows are gathered a page at a time into one write.
 */
export function exportStream(runs: AsyncIterable<Run>, format: RunExportFormat): Readable {
  async function* lines(): AsyncGenerator<string> {
    let chunk = format === 'csv' ? csvHeader() : '';
    let n = 0;
    for await (const run of runs) {
      chunk += format === 'csv' ? csvLine(run) : `${JSON.stringify(run)}\n`;
      if (++n % EXPORT_PAGE === 0) {
        yield chunk;
        chunk = '';
      }
    }
    if (chunk !== '') yield chunk;
  }
  return Readable.from(lines());
}

/**
 * The file name an export is saved under: `runs-<date>.csv`, or `runs-<agent>-<date>.csv` for
 * one agent's runs (the date is the export's, UTC).
 */
export function exportFileName(
  format: RunExportFormat,
  agentIds: readonly string[] | undefined,
  now = new Date(),
): string {
  const agent = agentIds?.length === 1 ? `-${agentIds[0]}` : '';
  return `runs${agent}-${now.toISOString().slice(0, 10)}.${format}`;
}
