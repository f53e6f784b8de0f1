import { sql, type AliasedRawBuilder } from 'kysely';
import { TRUNCATED_MARKER, type TruncatedJson } from '@runlog/core';
import type { Db } from './database.js';
import type { RunTable, StepTable } from './schema.js';

/**
 * The JSON text columns of a run or a step: each may hold up to `maxFieldBytes` (1 MiB by
 * default), so a page of 1,000 steps could be gigabytes. Lists read them within a budget.
 */
export const PAYLOAD_COLUMNS = ['input', 'output', 'error', 'metadata'] as const;
type PayloadColumn = (typeof PAYLOAD_COLUMNS)[number];

/**
 * What one page of runs or steps carries of payloads at most, as stored: a page is cut
 * short (with `has_more` and a cursor) before the row that would pass it, though never
 * before its first row.
 */
export const PAGE_PAYLOAD_BYTES = 32 * 1024 * 1024;

/**
 * Payload columns larger than this are left out of a list's first read (SQLite and
 * PostgreSQL both give a value's length without reading it) and read by id afterwards, for
 * the rows the page keeps only.
 */
export const INLINE_PAYLOAD_BYTES = 64 * 1024;

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
  'sort_at',
  'created_at',
  'updated_at',
] as const satisfies readonly Exclude<keyof RunTable, PayloadColumn>[];

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
  'created_at',
  'updated_at',
] as const satisfies readonly Exclude<keyof StepTable, PayloadColumn>[];

// a column added to a table must be added to its list, or lists would stop returning it
type Missing<T, L extends readonly unknown[]> = Exclude<keyof T, PayloadColumn | L[number]>;
const runColumnsComplete: Missing<RunTable, typeof RUN_LIST_COLUMNS> extends never ? true : never =
  true;
const stepColumnsComplete: Missing<StepTable, typeof STEP_LIST_COLUMNS> extends never
  ? true
  : never = true;
void runColumnsComplete;
void stepColumnsComplete;

/** What a budgeted first read adds to each row. */
export interface PayloadSizes {
  /** Bytes of all the row's payloads as stored. */
  payload_bytes: number | string;
  /** Bytes of the payloads left out of this read (larger than `INLINE_PAYLOAD_BYTES`). */
  held_bytes: number | string;
}

const length = (column: PayloadColumn) => sql`coalesce(octet_length(${sql.ref(column)}), 0)`;

/**
 * The select list of a budgeted first read: each payload column itself when it is small,
 * else `null`, and the row's `payload_bytes` and `held_bytes`.
 */
export function budgetedPayloads(): AliasedRawBuilder<unknown, string>[] {
  const inline = sql.lit(INLINE_PAYLOAD_BYTES);
  return [
    ...PAYLOAD_COLUMNS.map((c) =>
      sql`case when ${length(c)} > ${inline} then null else ${sql.ref(c)} end`.as(c),
    ),
    sql`${sql.join(PAYLOAD_COLUMNS.map(length), sql` + `)}`.as('payload_bytes'),
    sql`${sql.join(
      PAYLOAD_COLUMNS.map(
        (c) => sql`case when ${length(c)} > ${inline} then ${length(c)} else 0 end`,
      ),
      sql` + `,
    )}`.as('held_bytes'),
  ];
}

/**
 * How many of `rows` (read in page order) fit in `PAGE_PAYLOAD_BYTES`: all of them, or the
 * rows before the one that would pass it, and always the first.
 */
export function rowsWithinBudget(rows: readonly PayloadSizes[]): number {
  let used = 0;
  for (let i = 0; i < rows.length; i++) {
    used += Number(rows[i]!.payload_bytes);
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
  const held = rows.filter((r) => Number(r.held_bytes) > 0);
  for (let i = 0; i < held.length; i += 100) {
    const chunk = held.slice(i, i + 100);
    const ids = chunk.map((r) => r.id);
    const found = new Map(
      (runId === undefined
        ? await db.kysely
            .selectFrom('runs')
            .select(['id', ...PAYLOAD_COLUMNS])
            .where('project_id', '=', projectId)
            .where('id', 'in', ids)
            .execute()
        : await db.kysely
            .selectFrom('steps')
            .select(['id', ...PAYLOAD_COLUMNS])
            .where('project_id', '=', projectId)
            .where('run_id', '=', runId)
            .where('id', 'in', ids)
            .execute()
      ).map((f) => [f.id, f]),
    );
    for (const row of chunk) {
      const full = found.get(row.id);
      // deleted between the two reads: the row keeps what the first read gave
      if (full) Object.assign(row, pick(full));
    }
  }
}

/**
 * For a list whose rows must all be answered (runs: offset paging counts them), reads the
 * payloads a budgeted first read left out while the page stays within `PAGE_PAYLOAD_BYTES`,
 * and past it gives each left-out field as the marker of a truncated value with a preview:
 * `GET /runs/:id` has it whole.
 */
export async function fillHeldRunPayloads<R extends PayloadSizes & { id: string }>(
  db: Db,
  projectId: string,
  rows: R[],
): Promise<void> {
  let used = rows.reduce((n, r) => n + Number(r.payload_bytes) - Number(r.held_bytes), 0);
  const whole: R[] = [];
  const previewed: R[] = [];
  for (const row of rows) {
    const held = Number(row.held_bytes);
    if (held === 0) continue;
    if (used + held <= PAGE_PAYLOAD_BYTES) {
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
        PAYLOAD_COLUMNS.flatMap((c) => [
          sql<string | null>`substr(${sql.ref(c)}, 1, ${sql.lit(PREVIEW_CHARS)})`.as(c),
          sql<number | string | null>`octet_length(${sql.ref(c)})`.as(`${c}_bytes`),
        ]),
      )
      .where('project_id', '=', projectId)
      .where(
        'id',
        'in',
        chunk.map((r) => r.id),
      )
      .execute();
    const byId = new Map(found.map((f) => [f.id as string, f as Record<string, unknown>]));
    for (const row of chunk) {
      const part = byId.get(row.id);
      if (!part) continue;
      const target = row as unknown as Record<PayloadColumn, string | null>;
      for (const c of PAYLOAD_COLUMNS) {
        const bytes = Number(part[`${c}_bytes`] ?? 0);
        if (bytes <= INLINE_PAYLOAD_BYTES) continue;
        const marker: TruncatedJson = {
          [TRUNCATED_MARKER]: true,
          original_size: bytes,
          preview: part[c] as string,
        };
        target[c] = JSON.stringify(marker);
      }
    }
  }
}

/** How much of a field past a list's budget its marker shows. */
const PREVIEW_CHARS = 2000;

function pick(row: Record<PayloadColumn, string | null>): Record<PayloadColumn, string | null> {
  return { input: row.input, output: row.output, error: row.error, metadata: row.metadata };
}
