import { sql, type AliasedRawBuilder } from 'kysely';
import { PAYLOAD_FIELDS, truncatedJson } from '@runlog/core';
import type { Db } from './database.js';
import type { RunTable, StepTable } from './schema.js';

/**
 * The JSON text columns of a run or a step (core's `PAYLOAD_FIELDS`): each may hold up to
 * `maxFieldBytes` (1 MiB by default), so a page of 1,000 steps could be gigabytes. Lists read
 * them within a budget.
 */
type PayloadColumn = (typeof PAYLOAD_FIELDS)[number];

/**
 * What one page of runs or steps carries of payloads at most, as stored: a page is cut
 * short (with `has_more` and a cursor) before the row that would pass it, though never
 * before its first row.
 */
export const PAGE_PAYLOAD_BYTES = 32 * 1024 * 1024;

/**
 * What a page of runs carries of payloads whole; past it, fields over
 * `RUN_INLINE_PAYLOAD_BYTES` come as previews. Smaller than a page of steps': a list of runs
 * is a summary (the dashboard shows none of their payloads but a thread's turns), a run's
 * steps are its content.
 */
export const RUN_PAGE_PAYLOAD_BYTES = 8 * 1024 * 1024;

/**
 * `RUN_PAGE_PAYLOAD_BYTES` for the agents list's latest runs: the dashboard reads that list
 * on most pages and shows none of their payloads; 100 agents whose latest runs held 60 KiB
 * prompts made it 15 MB.
 */
export const AGENT_LIST_PAYLOAD_BYTES = 1024 * 1024;

/**
 * Payload columns larger than this are left out of a list's first read (SQLite and
 * PostgreSQL both give a value's length without reading it) and read by id afterwards, for
 * the rows the page keeps only.
 */
export const INLINE_PAYLOAD_BYTES = 64 * 1024;

/**
 * `INLINE_PAYLOAD_BYTES` for lists of runs: fields over this count against the list's budget
 * (`RUN_PAGE_PAYLOAD_BYTES`), so 50 runs of four 60 KiB fields cannot pass it uncounted.
 */
export const RUN_INLINE_PAYLOAD_BYTES = 8 * 1024;

/** Every column of `runs` but its payloads, in table order. */
export const RUN_LIST_COLUMNS = [
  'project_id',
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
  'model',
  'tags',
  'queued_at',
  'started_at',
  'ended_at',
  'duration_ms',
  'cancel_requested_at',
  'lease_expires_at',
  'worker_id',
  'last_heartbeat_at',
  'deadline_at',
  'step_count',
  'error_count',
  'llm_calls',
  'tool_calls',
  'input_tokens',
  'output_tokens',
  'cost_nanos',
  'scores',
  'sort_at',
  'created_at',
  'updated_at',
] as const satisfies readonly Exclude<keyof RunTable, PayloadColumn | InternalRunColumn>[];

/**
 * The run columns only the write path reads (a run's usage by model, which the stats sum):
 * no answer shows them, so lists leave them out.
 */
type InternalRunColumn = 'models';
/** A run as lists read it: every column but the write path's own. */
export type ListedRunRow = Omit<RunTable, InternalRunColumn>;

/** Every column of `steps` but its payloads, in table order. */
export const STEP_LIST_COLUMNS = [
  'project_id',
  'run_id',
  'id',
  'parent_step_id',
  'seq',
  'type',
  'name',
  'status',
  'started_at',
  'ended_at',
  'duration_ms',
  'model',
  'provider',
  'input_tokens',
  'output_tokens',
  'cached_input_tokens',
  'reasoning_tokens',
  'cost_nanos',
  'cost_given',
  'created_at',
  'updated_at',
  'first_token_at',
] as const satisfies readonly Exclude<keyof StepTable, PayloadColumn>[];

// a column added to a table must be added to its list, or lists would stop returning it
type Missing<T, L extends readonly unknown[]> = Exclude<keyof T, PayloadColumn | L[number]>;
const runColumnsComplete: Missing<ListedRunRow, typeof RUN_LIST_COLUMNS> extends never
  ? true
  : never = true;
const stepColumnsComplete: Missing<StepTable, typeof STEP_LIST_COLUMNS> extends never
  ? true
  : never = true;
void runColumnsComplete;
void stepColumnsComplete;

/** What a budgeted first read adds to each row: each payload column's size in bytes. */
export interface PayloadSizes {
  input_bytes: number | string | null;
  output_bytes: number | string | null;
  error_bytes: number | string | null;
  metadata_bytes: number | string | null;
}

const bytesOf = (row: PayloadSizes, column: PayloadColumn) => Number(row[`${column}_bytes`] ?? 0);

/** Bytes of all the row's payloads as stored. */
export function payloadBytes(row: PayloadSizes): number {
  return PAYLOAD_FIELDS.reduce((n, c) => n + bytesOf(row, c), 0);
}

/**
 * Bytes of the payloads a budgeted first read left out: each larger than `inline`
 * (`INLINE_PAYLOAD_BYTES` for steps, `RUN_INLINE_PAYLOAD_BYTES` for runs).
 */
export function heldBytes(row: PayloadSizes, inline: number): number {
  return PAYLOAD_FIELDS.reduce((n, c) => {
    const bytes = bytesOf(row, c);
    return bytes > inline ? n + bytes : n;
  }, 0);
}

/**
 * The select list of a budgeted first read of `runs` or `steps`: every other column, each
 * payload column itself when it is small, else `null`, and each one's size (`input_bytes`,
 * ...). One piece of SQL text built once: it is on the path of every page of runs, where
 * Kysely compiling 40 expressions per request cost 30 µs. Its last expression takes the
 * alias Kysely gives it.
 */
function budgetedSelect(
  columns: readonly string[],
  inline: number,
): AliasedRawBuilder<unknown, 'metadata_bytes'> {
  const parts = [
    ...columns.map((c) => `"${c}"`),
    ...PAYLOAD_FIELDS.map(
      (c) => `case when octet_length("${c}") > ${inline} then null else "${c}" end as "${c}"`,
    ),
    ...PAYLOAD_FIELDS.map((c) => `octet_length("${c}") as "${c}_bytes"`),
  ];
  const last = parts.pop()!.replace(/ as "metadata_bytes"$/, '');
  return sql.raw([...parts, last].join(', ')).as('metadata_bytes');
}

const RUN_LIST_SELECT = budgetedSelect(RUN_LIST_COLUMNS, RUN_INLINE_PAYLOAD_BYTES);
const STEP_LIST_SELECT = budgetedSelect(STEP_LIST_COLUMNS, INLINE_PAYLOAD_BYTES);

/** `budgetedSelect` for runs. */
export function budgetedRuns(): AliasedRawBuilder<unknown, 'metadata_bytes'> {
  return RUN_LIST_SELECT;
}

/** `budgetedSelect` for steps. */
export function budgetedSteps(): AliasedRawBuilder<unknown, 'metadata_bytes'> {
  return STEP_LIST_SELECT;
}

/**
 * How many of `rows` (read in page order) fit in `PAGE_PAYLOAD_BYTES`: all of them, or the
 * rows before the one that would pass it, and always the first.
 */
export function rowsWithinBudget(rows: readonly PayloadSizes[]): number {
  let used = 0;
  for (let i = 0; i < rows.length; i++) {
    used += payloadBytes(rows[i]!);
    if (used > PAGE_PAYLOAD_BYTES && i > 0) return i;
  }
  return rows.length;
}

/**
 * Reads the payloads a budgeted first read left out, for the rows that had any, and puts
 * them in place: rows of `runs`, or with `runId` rows of that run's `steps`.
 */
export async function fillHeldPayloads<R extends PayloadSizes & { id: string }>(
  db: Db,
  projectId: string,
  rows: R[],
  runId?: string,
): Promise<void> {
  const inline = runId === undefined ? RUN_INLINE_PAYLOAD_BYTES : INLINE_PAYLOAD_BYTES;
  const held = rows.filter((r) => heldBytes(r, inline) > 0);
  for (let i = 0; i < held.length; i += 100) {
    const chunk = held.slice(i, i + 100);
    const found = await db.kysely
      .selectFrom(runId === undefined ? 'runs' : 'steps')
      .select(['id', ...PAYLOAD_FIELDS])
      .where('project_id', '=', projectId)
      .where(
        'id',
        'in',
        chunk.map((r) => r.id),
      )
      .$if(runId !== undefined, (q) => q.where(sql.ref('run_id'), '=', runId))
      .execute();
    const byId = new Map(found.map((f) => [f.id, f]));
    for (const row of chunk) {
      const full = byId.get(row.id);
      // deleted between the two reads: the row keeps what the first read gave
      if (full) Object.assign(row, full);
    }
  }
}

/**
 * For a list whose rows must all be answered (runs: offset paging counts them), reads the
 * payloads a budgeted first read left out while the page stays within `budget`, and past it
 * gives each left-out field as the marker of a truncated value with a preview:
 * `GET /runs/:id` has it whole.
 */
export async function fillHeldRunPayloads<R extends PayloadSizes & { id: string }>(
  db: Db,
  projectId: string,
  rows: R[],
  budget = RUN_PAGE_PAYLOAD_BYTES,
): Promise<void> {
  const inline = RUN_INLINE_PAYLOAD_BYTES;
  let used = rows.reduce((n, r) => n + payloadBytes(r) - heldBytes(r, inline), 0);
  const whole: R[] = [];
  const previewed: R[] = [];
  for (const row of rows) {
    const held = heldBytes(row, inline);
    if (held === 0) continue;
    if (used + held <= budget) {
      used += held;
      whole.push(row);
    } else previewed.push(row);
  }
  await fillHeldPayloads(db, projectId, whole);
  for (let i = 0; i < previewed.length; i += 100) {
    const chunk = previewed.slice(i, i + 100);
    const found = await db.kysely
      .selectFrom('runs')
      .select('id')
      .select(
        PAYLOAD_FIELDS.map((c) =>
          sql<string | null>`substr(${sql.ref(c)}, 1, ${sql.lit(PREVIEW_CHARS)})`.as(c),
        ),
      )
      .where('project_id', '=', projectId)
      .where(
        'id',
        'in',
        chunk.map((r) => r.id),
      )
      .execute();
    const byId = new Map(found.map((f) => [f.id, f as Record<PayloadColumn, string | null>]));
    for (const row of chunk) {
      const part = byId.get(row.id);
      if (!part) continue;
      const target = row as unknown as Record<PayloadColumn, string | null>;
      // the sizes are the first read's: only the fields it left out become previews
      for (const c of PAYLOAD_FIELDS) {
        const bytes = bytesOf(row, c);
        if (bytes > inline)
          target[c] = JSON.stringify(truncatedJson(part[c] ?? '', bytes, PREVIEW_CHARS));
      }
    }
  }
}

/** How much of a field past a list's budget its marker shows. */
export const PREVIEW_CHARS = 2000;
