import { z } from 'zod';
import {
  Id,
  MAX_SCORES_PER_RUN,
  NANOS_PER_USD,
  Run,
  SCORE_TYPES,
  Score,
  ScoreSummary,
  ScoreValue,
  Text,
  Step,
  isTruncatedJson,
  readableError,
  storedDepth,
  toIso,
  usdToNanos,
} from '@runlog/core';
import type { RunRow, ScoreRow, StepRow } from '../db/schema.js';
import { MAX_SUM } from '../db/bulk.js';
import { storedValue, summarize, toScore } from '../scores/scores.js';
import type { ListedRunRow } from '../db/payloads.js';
import { toRun, toStep } from '../runs/runs.mapper.js';
import { modelsOfSteps } from '../stats/models.js';

/**
 * One exported run: the API's `Run` (with `project_id`) and its `steps`, plus the stored
 * fields the API does not show (`sort_at`, `worker_id`, `last_heartbeat_at`, `deadline_at`;
 * steps' `created_at`, `updated_at`, `cost_given`), so an import gives back the stored rows
 * exactly.
 */
export interface ExportedRun extends Run {
  sort_at: string;
  worker_id: string | null;
  last_heartbeat_at: string | null;
  deadline_at: string | null;
  /** Its scores whole (`scores` sums them up), when it has any. */
  score_list?: Score[];
  steps: ExportedStep[];
}

export interface ExportedStep extends Step {
  created_at: string;
  updated_at: string;
  /** Whether its cost was given (true) or computed from prices (false); null when unknown. */
  cost_given: boolean | null;
}

export function toExportedRun(
  row: ListedRunRow,
  steps: StepRow[],
  scores: ScoreRow[] = [],
): ExportedRun {
  return {
    ...toRun(row),
    sort_at: toIso(row.sort_at),
    worker_id: row.worker_id,
    last_heartbeat_at: toIso(row.last_heartbeat_at),
    deadline_at: toIso(row.deadline_at),
    ...(scores.length > 0 ? { score_list: scores.map(toScore) } : {}),
    // last, so that a long run's line can be written a piece of its steps at a time
    steps: steps.map(toExportedStep),
  };
}

/** A step as an export line carries it. */
export function toExportedStep(s: StepRow): ExportedRun['steps'][number] {
  return {
    ...toStep(s),
    created_at: toIso(s.created_at),
    updated_at: toIso(s.updated_at),
    cost_given: s.cost_given === null ? null : s.cost_given === 1,
  };
}

const Time = z.iso.datetime({ offset: true }).transform((s) => Date.parse(s));
const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
// what a cost column holds in nano-USD: more failed the whole batch on PostgreSQL (a bigint
// refuses it) and was stored as Infinity on SQLite
const cost = z
  .number()
  .min(0)
  .max(MAX_SUM / NANOS_PER_USD);
// kept whole: a stored error may carry more keys than RunError's, or be a truncation marker
const StoredError = z.record(z.string(), z.unknown()).nullable();

const ImportScore = Score.extend({
  id: Id,
  run_id: Id,
  step_id: Id.nullable(),
  type: z.enum(SCORE_TYPES),
  // within what recording takes (ScoreFields), so an import cannot store what it refuses
  name: Text(200).min(1),
  value: ScoreValue,
  comment: Text(10_000).nullable(),
  source: Text(200).nullable(),
  created_at: Time,
  updated_at: Time,
}).superRefine((s, ctx) => {
  if (storedValue(s.value).type !== s.type)
    ctx.addIssue({ code: 'custom', path: ['value'], message: `must be ${s.type}, as type says` });
});

const ImportStep = Step.extend({
  id: Id,
  run_id: Id,
  parent_step_id: Id.nullable(),
  // any size: SQLite stored larger ones before ingestion capped them; PostgreSQL's column
  // cannot hold them, which `importRuns` says per line
  seq: z.number().int().min(0),
  error: StoredError,
  started_at: Time.nullable(),
  ended_at: Time.nullable(),
  duration_ms: count.nullable(),
  input_tokens: count.nullable(),
  output_tokens: count.nullable(),
  cached_input_tokens: count.nullable(),
  reasoning_tokens: count.nullable(),
  cost_usd: cost.nullable(),
  created_at: Time.optional(),
  updated_at: Time.optional(),
  cost_given: z.boolean().nullable().optional(),
  // absent from lines exported before migration 0018
  first_token_at: Time.nullable().optional(),
  time_to_first_token_ms: z.number().int().nullable().optional(),
});

/**
 * A line of a JSONL export as `runlog import` accepts it: a full run with its steps. The
 * fields the API does not show are optional, so a run fetched from the API imports too.
 */
export const ImportRun = Run.extend({
  id: Id,
  project_id: Id,
  agent_id: Id,
  attempt: z.number().int().min(1),
  error: StoredError,
  queued_at: Time.nullable(),
  started_at: Time.nullable(),
  ended_at: Time.nullable(),
  duration_ms: count.nullable(),
  cancel_requested_at: Time.nullable(),
  lease_expires_at: Time.nullable(),
  step_count: count,
  error_count: count,
  llm_calls: count,
  tool_calls: count,
  input_tokens: count,
  output_tokens: count,
  total_tokens: count.optional(),
  cost_usd: cost,
  created_at: Time,
  updated_at: Time,
  sort_at: Time.optional(),
  worker_id: z.string().nullable().optional(),
  last_heartbeat_at: Time.nullable().optional(),
  deadline_at: Time.nullable().optional(),
  // a run read with `GET /runs/:run_id?include=steps` holds its first page of steps and this
  // cursor when it has more: its steps are not all of the run's
  steps_next_cursor: z.string().optional(),
  // an export from before scores has none: they come from score_list, or stay as stored
  scores: z.record(z.string(), ScoreSummary).optional(),
  // absent: the run's stored scores are left as they are
  score_list: z.array(ImportScore).max(MAX_SCORES_PER_RUN).optional(),
  // absent (a run as GET /runs/:id answers it): the run's stored steps are left as they are
  steps: z.array(ImportStep).optional(),
}).superRefine((run, ctx) => {
  const scoreIds = new Set<string>();
  run.score_list?.forEach((s, i) => {
    if (scoreIds.has(s.id))
      ctx.addIssue({ code: 'custom', path: ['score_list', i, 'id'], message: 'is repeated' });
    scoreIds.add(s.id);
    if (s.run_id !== run.id)
      ctx.addIssue({
        code: 'custom',
        path: ['score_list', i, 'run_id'],
        message: `must be the run's id ${run.id}`,
      });
  });
  const seen = new Set<string>();
  run.steps?.forEach((s, i) => {
    if (seen.has(s.id))
      ctx.addIssue({ code: 'custom', path: ['steps', i, 'id'], message: 'is repeated' });
    seen.add(s.id);
    if (s.run_id !== run.id)
      ctx.addIssue({
        code: 'custom',
        path: ['steps', i, 'run_id'],
        message: `must be the run's id ${run.id}`,
      });
  });
});
export type ImportRun = z.infer<typeof ImportRun>;

/**
 * JSON text as the write path stores it, nested at most `MAX_JSON_DEPTH` levels as it
 * stores it; `null` (or absent) stays a NULL column.
 */
function jsonText(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  return JSON.stringify(storedDepth(value));
}

function errorText(error: Record<string, unknown> | null): string | null {
  return jsonText(error);
}

/** The stored rows of an imported run, in `projectId` (the line's own project by default). */
export function fromImportedRun(
  rec: ImportRun,
  projectId = rec.project_id,
): { run: RunRow; steps: StepRow[]; hasSteps: boolean; scores: ScoreRow[] | undefined } {
  const steps: StepRow[] = (rec.steps ?? []).map((s) => ({
    project_id: projectId,
    run_id: rec.id,
    id: s.id,
    parent_step_id: s.parent_step_id,
    seq: s.seq,
    type: s.type,
    name: s.name,
    status: s.status,
    started_at: s.started_at,
    ended_at: s.ended_at,
    duration_ms: s.duration_ms,
    input: jsonText(s.input),
    output: jsonText(s.output),
    error: errorText(s.error),
    model: s.model,
    provider: s.provider,
    input_tokens: s.input_tokens,
    output_tokens: s.output_tokens,
    cached_input_tokens: s.cached_input_tokens,
    reasoning_tokens: s.reasoning_tokens,
    cost_nanos: s.cost_usd === null ? null : usdToNanos(s.cost_usd),
    // unknown for a line from before migration 0017, or from the API
    cost_given: s.cost_given === undefined || s.cost_given === null ? null : s.cost_given ? 1 : 0,
    first_token_at: s.first_token_at ?? null,
    metadata: jsonText(s.metadata) ?? '{}',
    created_at: s.created_at ?? s.started_at ?? rec.created_at,
    updated_at: s.updated_at ?? s.ended_at ?? s.started_at ?? rec.updated_at,
  }));
  const run: RunRow = {
    project_id: projectId,
    id: rec.id,
    agent_id: rec.agent_id,
    status: rec.status,
    trigger: rec.trigger,
    source: rec.source,
    triggered_by: rec.triggered_by,
    user_id: rec.user_id,
    thread_id: rec.thread_id,
    parent_run_id: rec.parent_run_id,
    retry_of: rec.retry_of,
    attempt: rec.attempt,
    input: jsonText(rec.input),
    output: jsonText(rec.output),
    error: errorText(rec.error),
    model: rec.model,
    tags: JSON.stringify(rec.tags),
    metadata: jsonText(rec.metadata) ?? '{}',
    queued_at: rec.queued_at,
    started_at: rec.started_at,
    ended_at: rec.ended_at,
    duration_ms: rec.duration_ms,
    cancel_requested_at: rec.cancel_requested_at,
    lease_expires_at: rec.lease_expires_at,
    worker_id: rec.worker_id ?? null,
    last_heartbeat_at: rec.last_heartbeat_at ?? null,
    deadline_at: rec.deadline_at ?? null,
    step_count: rec.step_count,
    error_count: rec.error_count,
    llm_calls: rec.llm_calls,
    tool_calls: rec.tool_calls,
    input_tokens: rec.input_tokens,
    output_tokens: rec.output_tokens,
    cost_nanos: usdToNanos(rec.cost_usd),
    // from the line's steps; `import` keeps the stored run's for a line without them
    models: modelsOfSteps(steps),
    // from the line's scores; `import` keeps the stored run's for a line without them
    scores: '{}',
    sort_at: rec.sort_at ?? rec.queued_at ?? rec.started_at ?? rec.created_at,
    created_at: rec.created_at,
    updated_at: rec.updated_at,
  };
  const scores = rec.score_list?.map((s): ScoreRow => ({
    project_id: projectId,
    run_id: rec.id,
    id: s.id,
    step_id: s.step_id,
    name: s.name,
    ...storedValue(s.value),
    comment: s.comment,
    source: s.source,
    metadata: jsonText(s.metadata) ?? '{}',
    created_at: s.created_at,
    updated_at: s.updated_at,
  }));
  if (scores) run.scores = JSON.stringify(summarizeRows(scores));
  // a first page of steps is not the run's steps: written, but replacing none of the stored
  // ones (replacing them deleted the steps past the page, under a run that still counted them)
  const hasSteps = rec.steps !== undefined && rec.steps_next_cursor === undefined;
  return { run, steps, hasSteps, scores };
}

/**
 * The columns of a CSV of runs, in order: `runlog export --format csv` and `GET /runs.csv`
 * write the same file. Payloads and the error's type come last (added after the first).
 */
export const CSV_COLUMNS = [
  'id',
  'project_id',
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
  'error_message',
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
  'created_at',
  'updated_at',
  'error_type',
  'input',
  'output',
  'scores',
  'metadata',
] as const;

/**
 * One CSV cell: quoted at a comma, a quote, a line break or a `;` (spreadsheets of locales
 * whose list separator it is split there), its quotes doubled; recorded text that starts like
 * a formula gets a leading `'`, so a spreadsheet opens it as text (CSV injection).
 * @example csvCell('say "hi", then go') // '"say ""hi"", then go"'
 */
export function csvCell(value: unknown): string {
  if (value === null || value === undefined) return '';
  let text = String(value);
  if (typeof value === 'string' && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",;\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function csvHeader(): string {
  return CSV_COLUMNS.join(',') + '\n';
}

/** A payload as one cell: text as it is, anything else as its JSON. */
function payloadCell(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** A run's line of a CSV of runs (`CSV_COLUMNS`). */
export function csvLine(run: Run): string {
  const error = run.error && !isTruncatedJson(run.error) ? run.error : undefined;
  const cells: Record<(typeof CSV_COLUMNS)[number], unknown> = {
    ...run,
    tags: run.tags.join(';'),
    error_message: run.error ? readableError(run.error).message : null,
    error_type: error?.type ?? null,
    input: payloadCell(run.input),
    output: payloadCell(run.output),
    scores: Object.keys(run.scores).length > 0 ? JSON.stringify(run.scores) : null,
    metadata: Object.keys(run.metadata).length > 0 ? JSON.stringify(run.metadata) : null,
  };
  return CSV_COLUMNS.map((c) => csvCell(cells[c])).join(',') + '\n';
}

/** A run's scores summed up by name, from its rows (as `runScoresSummary` reads them). */
function summarizeRows(rows: readonly ScoreRow[]) {
  return summarize(
    rows.map((r) => ({ name: r.name, type: r.type, label: r.label, n: 1, total: r.value })),
  );
}
