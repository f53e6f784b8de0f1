import { Readable } from 'node:stream';
import { isTruncatedJson, type Run, type RunExportFormat, type RunSort } from '@runlog/core';
import type { Db } from '../db/database.js';
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

/** The columns of a CSV export, in order: what a spreadsheet of runs needs, one cell each. */
export const CSV_COLUMNS = [
  'id',
  'agent_id',
  'status',
  'trigger',
  'source',
  'triggered_by',
  'user_id',
  'thread_id',
  'parent_run_id',
  'retry_of',
  'attempt',
  'queued_at',
  'started_at',
  'ended_at',
  'duration_ms',
  'step_count',
  'error_count',
  'llm_calls',
  'tool_calls',
  'input_tokens',
  'output_tokens',
  'total_tokens',
  'cost_usd',
  'model',
  'tags',
  'error_type',
  'error',
  'input',
  'output',
  'scores',
  'metadata',
] as const;

type Cell = string | number | null;

/** A run's cells, in `CSV_COLUMNS`' order. */
function cells(run: Run): Cell[] {
  const error = run.error;
  const message = error === null ? null : isTruncatedJson(error) ? error.preview : error.message;
  const type = error !== null && !isTruncatedJson(error) ? (error.type ?? null) : null;
  const byColumn: Record<(typeof CSV_COLUMNS)[number], Cell> = {
    id: run.id,
    agent_id: run.agent_id,
    status: run.status,
    trigger: run.trigger,
    source: run.source,
    triggered_by: run.triggered_by,
    user_id: run.user_id,
    thread_id: run.thread_id,
    parent_run_id: run.parent_run_id,
    retry_of: run.retry_of,
    attempt: run.attempt,
    queued_at: run.queued_at,
    started_at: run.started_at,
    ended_at: run.ended_at,
    duration_ms: run.duration_ms,
    step_count: run.step_count,
    error_count: run.error_count,
    llm_calls: run.llm_calls,
    tool_calls: run.tool_calls,
    input_tokens: run.input_tokens,
    output_tokens: run.output_tokens,
    total_tokens: run.total_tokens,
    cost_usd: run.cost_usd,
    model: run.model,
    tags: run.tags.join(', '),
    error_type: type,
    error: message,
    input: payloadCell(run.input),
    output: payloadCell(run.output),
    scores: Object.keys(run.scores).length > 0 ? JSON.stringify(run.scores) : null,
    metadata: Object.keys(run.metadata).length > 0 ? JSON.stringify(run.metadata) : null,
  };
  return CSV_COLUMNS.map((c) => byColumn[c]);
}

/** A payload as one cell: text as it is, anything else as its JSON. */
function payloadCell(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** Text a spreadsheet would run as a formula when it opens the file (OWASP's CSV injection). */
const FORMULA = /^[=+\-@\t\r]/;

/**
 * One CSV cell (RFC 4180): quoted when it holds a comma, a quote or a line break, its quotes
 * doubled. Text that starts like a formula gets a leading `'`, so that a run's input of
 * `=HYPERLINK(...)` opens in a spreadsheet as the text it is; numbers are written as they are.
 * @example csvCell('say "hi", then go') // '"say ""hi"", then go"'
 */
export function csvCell(value: Cell): string {
  if (value === null) return '';
  if (typeof value === 'number') return String(value);
  const text = FORMULA.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** A CSV line (CRLF-ended, as RFC 4180 has it). */
function csvLine(values: readonly Cell[]): string {
  return `${values.map(csvCell).join(',')}\r\n`;
}

/**
 * The export's body as a stream of text: the CSV header and a row a run, or a JSON line a run
 * (the objects `GET /runs` lists). Rows are gathered a page at a time into one write.
 */
export function exportStream(runs: AsyncIterable<Run>, format: RunExportFormat): Readable {
  async function* lines(): AsyncGenerator<string> {
    let chunk = format === 'csv' ? csvLine(CSV_COLUMNS) : '';
    let n = 0;
    for await (const run of runs) {
      chunk += format === 'csv' ? csvLine(cells(run)) : `${JSON.stringify(run)}\n`;
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
