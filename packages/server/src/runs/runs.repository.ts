import { sql, type ExpressionBuilder, type RawBuilder } from 'kysely';
import type { RunSort } from '@runlog/core';
import type { Db } from '../db/database.js';
import { planOnce } from '../db/pg-prepared.js';
import { readOffLoop } from '../db/readers.js';
import { containsText, jsonArrayContains, metadataHolds, jsonField } from '../db/dialect.js';
import type { Database, RunRow, StepRow } from '../db/schema.js';
import {
  INLINE_PAYLOAD_BYTES,
  STEP_LIST_COLUMNS,
  budgetedRuns,
  budgetedSteps,
  fillHeldPayloads,
  fillHeldRunPayloads,
  rowsWithinBudget,
  type ListedRunRow,
  type PayloadSizes,
} from '../db/payloads.js';

/** A run of the project, or `undefined`: another project's run is as absent as a missing one. */
export async function findRun(db: Db, projectId: string, id: string): Promise<RunRow | undefined> {
  return db.kysely
    .selectFrom('runs')
    .selectAll()
    .where('project_id', '=', projectId)
    .where('id', '=', id)
    .executeTakeFirst();
}

/** A step of a run of the project, or `undefined`. */
export async function findStep(
  db: Db,
  projectId: string,
  runId: string,
  id: string,
): Promise<StepRow | undefined> {
  return db.kysely
    .selectFrom('steps')
    .selectAll()
    .where('project_id', '=', projectId)
    .where('run_id', '=', runId)
    .where('id', '=', id)
    .executeTakeFirst();
}

/** Where a page of steps resumes: past this step in time order. */
export interface StepCursor {
  at: number;
  seq: number;
  id: string;
}

/** A step's place in time order: its start, else its end, else when it was recorded. */
export function stepSortAt(step: StepRow): number {
  return step.started_at ?? step.ended_at ?? step.created_at;
}

/**
 * A run's steps in time order (steps that only reported an end sort by it), all of them or
 * `page.limit` past `page.after`.
 */
export async function listSteps(
  db: Db,
  projectId: string,
  runId: string,
  page: { after?: StepCursor | undefined; limit?: number | undefined } = {},
): Promise<StepRow[]> {
  return orderedSteps(db, projectId, runId, page).selectAll().execute();
}

/**
 * A page of a run's steps in time order, up to `page.limit` of them, and fewer when their
 * payloads pass `PAGE_PAYLOAD_BYTES`: `cut` then says the page stopped short.
 */
export async function listStepsWithinBudget(
  db: Db,
  projectId: string,
  runId: string,
  page: { after?: StepCursor | undefined; limit: number },
): Promise<{ rows: StepRow[]; cut: boolean }> {
  const first = (await orderedSteps(db, projectId, runId, page)
    .select(budgetedSteps())
    .execute()) as unknown as (StepRow & PayloadSizes)[];
  const kept = rowsWithinBudget(first);
  const rows = first.slice(0, kept);
  await fillHeldPayloads(db, projectId, rows, runId);
  return { rows, cut: kept < first.length };
}

/**
 * Up to `limit` of a run's steps in time order for its timeline, without their input,
 * output and metadata, and with their error only when it is at most `INLINE_PAYLOAD_BYTES`
 * (`error_bytes` gives its size either way).
 */
export async function listStepOutlines(
  db: Db,
  projectId: string,
  runId: string,
  limit: number,
): Promise<(StepRow & { error_bytes: number | string | null })[]> {
  const error = sql.ref('error');
  const rows = await orderedSteps(db, projectId, runId, { limit })
    .select([
      ...STEP_LIST_COLUMNS,
      sql<
        string | null
      >`case when octet_length(${error}) > ${sql.lit(INLINE_PAYLOAD_BYTES)} then null else ${error} end`.as(
        'error',
      ),
      sql<number | string | null>`octet_length(${error})`.as('error_bytes'),
    ])
    .execute();
  return rows.map((r) => ({ ...r, input: null, output: null, metadata: '{}' }));
}

function orderedSteps(
  db: Db,
  projectId: string,
  runId: string,
  page: { after?: StepCursor | undefined; limit?: number | undefined },
) {
  const at = sql<number>`coalesce(started_at, ended_at, created_at)`;
  let q = db.kysely
    .selectFrom('steps')
    .where('project_id', '=', projectId)
    .where('run_id', '=', runId);
  if (page.after) {
    const { after } = page;
    q = q.where(sql<boolean>`(${at}, seq, id) > (${after.at}, ${after.seq}, ${after.id})`);
  }
  q = q.orderBy(at).orderBy('seq').orderBy('id');
  if (page.limit !== undefined) q = q.limit(page.limit);
  return q;
}

/** What `GET /runs` and `GET /agents/:id/runs` filter on; absent fields do not filter. */
export interface RunFilter {
  agentIds?: readonly string[];
  statuses?: readonly string[];
  triggers?: readonly string[];
  source?: string;
  userId?: string;
  threadId?: string;
  retryOf?: string;
  parentRunId?: string;
  /** Whether some run is a retry of it (`retry_of`): runs retried already, or not yet. */
  retried?: boolean;
  tag?: string;
  /** Keys the run's metadata holds with these values (`metadataHolds`). */
  metadata?: Readonly<Record<string, string>>;
  /** A model one of the run's steps names (a key of its `models`). */
  model?: string;
  /** A score the run holds: of this name, and within these bounds or of this label. */
  score?: { name: string; min?: number; max?: number; label?: string };
  /** Inclusive bounds on `sort_at`, epoch ms. */
  from?: number;
  to?: number;
  /** Case-insensitive text in input, output or error. */
  q?: string;
}

/** A position in "newest first" order: the last run of the previous page. */
export interface RunCursor {
  sortAt: number;
  id: string;
}

function filtered(db: Db, projectId: string, filter: RunFilter) {
  let query = db.kysely.selectFrom('runs').where('project_id', '=', projectId);
  if (filter.agentIds?.length) query = query.where('agent_id', 'in', [...filter.agentIds]);
  if (filter.statuses?.length) query = query.where('status', 'in', [...filter.statuses]);
  if (filter.triggers?.length) query = query.where('trigger', 'in', [...filter.triggers]);
  if (filter.source !== undefined) query = query.where('source', '=', filter.source);
  if (filter.userId !== undefined) query = query.where('user_id', '=', filter.userId);
  if (filter.threadId !== undefined) query = query.where('thread_id', '=', filter.threadId);
  if (filter.retryOf !== undefined) query = query.where('retry_of', '=', filter.retryOf);
  if (filter.parentRunId !== undefined)
    query = query.where('parent_run_id', '=', filter.parentRunId);
  if (filter.retried !== undefined) {
    // its retries, through the index of retry_of: one probe per run
    const retries = (eb: ExpressionBuilder<Database, 'runs'>) =>
      eb.exists(
        eb
          .selectFrom('runs as retry')
          .select(sql.lit(1).as('one'))
          .whereRef('retry.project_id', '=', 'runs.project_id')
          .whereRef('retry.retry_of', '=', 'runs.id'),
      );
    query = query.where((eb) => (filter.retried ? retries(eb) : eb.not(retries(eb))));
  }
  if (filter.from !== undefined) query = query.where('sort_at', '>=', filter.from);
  if (filter.to !== undefined) query = query.where('sort_at', '<=', filter.to);
  const { tag, q, model } = filter;
  if (tag !== undefined) query = query.where(jsonArrayContains(db, sql.ref('tags'), tag));
  for (const [key, value] of Object.entries(filter.metadata ?? {}))
    query = query.where(metadataHolds(db, sql.ref('metadata'), key, value));
  if (model !== undefined) {
    // the model as a key of the run's usage by model: its JSON text after `{` or `,` (`, `
    // in the text PostgreSQL's backfill wrote) and before a colon. A quote inside a key is
    // escaped, and the values are arrays of numbers: this text appears nowhere else.
    const key = `${JSON.stringify(model)}:`;
    const has = (text: string) =>
      db.dialect === 'postgres'
        ? sql<boolean>`strpos(models, ${text}) > 0`
        : sql<boolean>`instr(models, ${text}) > 0`;
    query = query.where((eb) => eb.or([has(`{${key}`), has(`,${key}`), has(`, ${key}`)]));
  }
  const { score } = filter;
  if (score !== undefined) {
    // the runs among those given such a score (index scores_name): few, whatever the runs
    let scored = db.kysely
      .selectFrom('scores')
      .select('run_id')
      .where('project_id', '=', projectId)
      .where('name', '=', score.name);
    if (score.min !== undefined) scored = scored.where('value', '>=', score.min);
    if (score.max !== undefined) scored = scored.where('value', '<=', score.max);
    if (score.label !== undefined) scored = scored.where('label', '=', score.label);
    query = query.where('id', 'in', scored);
  }
  if (q !== undefined) {
    // input and output are stored as JSON text, where a quote, a backslash or a tab is
    // written escaped: text holding one is found in its escaped form
    const escaped = JSON.stringify(q).slice(1, -1);
    const forms = escaped === q ? [q] : [q, escaped];
    query = query.where((eb) =>
      eb.or([
        ...forms.flatMap((text) => [
          containsText(db, sql.ref('input'), text),
          containsText(db, sql.ref('output'), text),
        ]),
        // the error's words, not its field names: `q=message` must not find every failure
        ...(['message', 'type', 'stack'] as const).map((field) =>
          containsText(db, jsonField(db, sql.ref('error'), field), q),
        ),
      ]),
    );
  }
  return query;
}

/**
 * What a sorted list orders by, most first, then by id: the expressions of the indexes
 * `0010_run_sort_indexes` made, so each order is read off its index. A run without a
 * duration (not ended) counts as -1: after every ended run. Tokens are summed as `numeric`
 * on PostgreSQL, where two columns each held at `MAX_SUM` would overflow a bigint.
 */
export function sortValue(db: Db, sort: Exclude<RunSort, 'newest'>): RawBuilder<unknown> {
  if (sort === 'cost') return sql`cost_nanos`;
  if (sort === 'duration') return sql`coalesce(duration_ms, -1)`;
  return db.dialect === 'postgres'
    ? sql`(input_tokens::numeric + output_tokens)`
    : sql`(input_tokens + output_tokens)`;
}

/**
 * A position in a sorted list: the sort value (as the database wrote it in decimal: exact
 * past 2^53) and id of the previous page's last run.
 */
export interface SortedCursor {
  value: string;
  id: string;
}

/**
 * A page of runs newest first (`sort_at` desc, `id` desc), or in a `sorted` order, after
 * `cursor` (`sorted.after`) and then `offset` rows. Fetches `limit + 1` rows so the caller
 * can tell whether more follow. Payloads past the page's budget come as truncated values
 * (`fillHeldRunPayloads`).
 */
export async function listRuns(
  db: Db,
  projectId: string,
  filter: RunFilter,
  page: {
    limit: number;
    cursor?: RunCursor;
    offset?: number;
    sorted?: { sort: Exclude<RunSort, 'newest'>; after?: SortedCursor };
  },
): Promise<(ListedRunRow & { sort_key?: string })[]> {
  let query = filtered(db, projectId, filter).select(budgetedRuns());
  const { cursor, sorted } = page;
  if (sorted) {
    const value = sortValue(db, sorted.sort);
    const { after } = sorted;
    if (after) {
      // the value as exactly as it was read: a bigint (or, for tokens, a numeric) on
      // PostgreSQL, a 64-bit integer on SQLite (a sum past 64 bits is a real there)
      const bound =
        db.dialect === 'postgres'
          ? sql`cast(${after.value} as ${sql.raw(sorted.sort === 'tokens' ? 'numeric' : 'bigint')})`
          : sql`${/^-?\d+$/.test(after.value) ? BigInt(after.value) : Number(after.value)}`;
      // a row comparison: the index's own order, read from the cursor on (not filtered)
      query = query.where(sql<boolean>`(${value}, id) < (${bound}, ${after.id})`);
    }
    query = query
      .select(sql<string>`cast(${value} as text)`.as('sort_key'))
      .orderBy(value, 'desc')
      .orderBy('id', 'desc');
  } else {
    // a row value: a bound of the index's range on both databases (PostgreSQL reads an
    // OR of the two parts as a filter, every run above the cursor again on a deep page)
    if (cursor) query = query.where(sql<boolean>`(sort_at, id) < (${cursor.sortAt}, ${cursor.id})`);
    query = query.orderBy('sort_at', 'desc').orderBy('id', 'desc');
  }
  query = query.limit(page.limit + 1);
  if (page.offset) query = query.offset(page.offset);
  // a first page filtered by equalities (an agent's latest runs): the dashboard's most
  // frequent read, its plan the same for every value
  else if (
    !cursor &&
    !sorted &&
    !readsMany(filter) &&
    filter.from === undefined &&
    filter.to === undefined
  )
    query = planOnce(db, query);
  // a search, a filter no index narrows, a deep offset or a sort under a filter reads runs
  // until the page fills, over all of them for a rare word: beside the event loop, so it
  // never holds up recording
  const first = (readsMany(filter, page.offset) || sorted
    ? await readOffLoop(db, query)
    : await query.execute()) as unknown as (ListedRunRow & PayloadSizes & { sort_key?: string })[];
  await fillHeldRunPayloads(db, projectId, first.slice(0, page.limit));
  return first;
}

/** Past this many rows, an offset is read beside the event loop: each row skipped is read. */
const DEEP_OFFSET = 1000;

/**
 * Whether a page may read many runs to fill: a filter checked run by run (text search,
 * tags, and `source` and `trigger`, which no index narrows) or a deep offset.
 */
function readsMany(filter: RunFilter, offset = 0): boolean {
  return (
    filter.q !== undefined ||
    filter.tag !== undefined ||
    filter.metadata !== undefined ||
    filter.model !== undefined ||
    filter.score !== undefined ||
    filter.retried !== undefined ||
    filter.source !== undefined ||
    (filter.triggers?.length ?? 0) > 0 ||
    offset > DEEP_OFFSET
  );
}

/** How many runs match, counting at most `cap` of them (the count stays cheap). */
export async function countRunsCapped(
  db: Db,
  projectId: string,
  filter: RunFilter,
  cap: number,
): Promise<number> {
  const capped = filtered(db, projectId, filter).select(sql.lit(1).as('one')).limit(cap);
  // up to `cap` rows, and a search reads every run to find them: off the event loop
  const [row] = await readOffLoop(
    db,
    db.kysely
      .selectFrom(capped.as('matching'))
      .select((eb) => eb.fn.countAll<number | string>().as('n')),
  );
  return Number(row?.n ?? 0);
}

/**
 * How many runs of the project match agent/status/trigger filters, from the stats rollups
 * (which the write path keeps equal to a scan of `runs`) instead of counting rows.
 */
export async function countRunsFromRollups(
  db: Db,
  projectId: string,
  filter: Pick<RunFilter, 'agentIds' | 'statuses' | 'triggers'>,
): Promise<number> {
  // the daily grain: a total reads (days x combinations) rows, never one per hour or run
  const sum = (eb: ExpressionBuilder<Database, 'run_rollups_daily' | 'project_rollups_daily'>) =>
    eb.fn.sum<number | string | null>('runs').as('n');
  if (filter.agentIds?.length) {
    let query = db.kysely
      .selectFrom('run_rollups_daily')
      .where('project_id', '=', projectId)
      .where('agent_id', 'in', [...filter.agentIds]);
    if (filter.statuses?.length) query = query.where('status', 'in', [...filter.statuses]);
    if (filter.triggers?.length) query = query.where('trigger', 'in', [...filter.triggers]);
    return Number((await planOnce(db, query.select(sum)).executeTakeFirst())?.n ?? 0);
  }
  let query = db.kysely.selectFrom('project_rollups_daily').where('project_id', '=', projectId);
  if (filter.statuses?.length) query = query.where('status', 'in', [...filter.statuses]);
  if (filter.triggers?.length) query = query.where('trigger', 'in', [...filter.triggers]);
  return Number((await planOnce(db, query.select(sum)).executeTakeFirst())?.n ?? 0);
}

/**
 * Runs of the project by id, in no particular order, every column, their payloads within
 * `budget` (`fillHeldRunPayloads`): for lists of runs picked by id, as the agents list's
 * latest runs.
 */
export async function findRunsWithinBudget(
  db: Db,
  projectId: string,
  ids: readonly string[],
  budget: number,
): Promise<ListedRunRow[]> {
  const unique = [...new Set(ids)];
  const rows: (ListedRunRow & PayloadSizes)[] = [];
  for (let i = 0; i < unique.length; i += 500) {
    const found = await db.kysely
      .selectFrom('runs')
      .select(budgetedRuns())
      .where('project_id', '=', projectId)
      .where('id', 'in', unique.slice(i, i + 500))
      .execute();
    rows.push(...(found as unknown as (ListedRunRow & PayloadSizes)[]));
  }
  await fillHeldRunPayloads(db, projectId, rows, budget);
  return rows;
}

/**
 * Runs of the project by id, in no particular order: every column, or only `columns` (a
 * caller that needs no payloads does not read them).
 * @example await findRuns(db, 'default', ids, ['id', 'status'])
 */
export async function findRuns<C extends keyof RunRow = keyof RunRow>(
  db: Db,
  projectId: string,
  ids: readonly string[],
  columns?: readonly C[],
): Promise<Pick<RunRow, C>[]> {
  const unique = [...new Set(ids)];
  const rows: Pick<RunRow, C>[] = [];
  for (let i = 0; i < unique.length; i += 500) {
    const chunk = db.kysely
      .selectFrom('runs')
      .where('project_id', '=', projectId)
      .where('id', 'in', unique.slice(i, i + 500));
    const found = columns ? chunk.select([...columns]).execute() : chunk.selectAll().execute();
    // Kysely cannot narrow a generic column list to Pick<RunRow, C>: it is that by construction
    rows.push(...((await found) as Pick<RunRow, C>[]));
  }
  return rows;
}
