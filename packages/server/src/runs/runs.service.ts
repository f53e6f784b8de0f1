import {
  ID_PATTERN,
  TIMELINE_MAX_STEPS,
  type Run,
  type RunList,
  type RunSort,
  type Step,
} from '@runlog/core';
import type { Db } from '../db/database.js';
import { AppError } from '../http/errors.js';
import { toRun, toStep } from './runs.mapper.js';
import {
  countRunsCapped,
  countRunsFromRollups,
  listRuns,
  listStepOutlines,
  listStepsWithinBudget,
  stepSortAt,
  type RunCursor,
  type RunFilter,
  type SortedCursor,
  type StepCursor,
} from './runs.repository.js';

/** Past this many matching runs a filtered `total` stops counting and says it is capped. */
export const TOTAL_CAP = 10_000;

/** A page of runs as `GET /runs` answers; `total_capped` only when `total` is a lower bound. */
export type RunPage = RunList;

/**
 * An opaque keyset cursor: base64url of whole numbers and an id, `:`-joined (ids may hold
 * `:`, so the id comes last).
 */
function encodeKey(numbers: readonly number[], id: string): string {
  return Buffer.from([...numbers, id].join(':'), 'utf8').toString('base64url');
}

/** Reads `count` numbers and an id from a cursor `encodeKey` made; a 400 naming `field` else. */
function decodeKey(text: string, count: number, field: string): { numbers: number[]; id: string } {
  const invalid = () => AppError.invalid(field, 'not a cursor this API returned');
  if (!/^[A-Za-z0-9_-]+$/.test(text)) throw invalid();
  const parts = Buffer.from(text, 'base64url').toString('utf8').split(':');
  const numbers = parts.slice(0, count);
  const id = parts.slice(count).join(':');
  // negative: a time before 1970, refused now but stored by older versions (Go's zero time)
  if (
    numbers.length < count ||
    !numbers.every((n) => /^-?\d{1,16}$/.test(n)) ||
    !ID_PATTERN.test(id)
  )
    throw invalid();
  return { numbers: numbers.map(Number), id };
}

/**
 * The cursor of a page of runs: `<sort_at>:<id>`.
 * @example decodeCursor(encodeCursor({ sortAt: 1, id: 'r1' })) // { sortAt: 1, id: 'r1' }
 */
export function encodeCursor(cursor: RunCursor): string {
  return encodeKey([cursor.sortAt], cursor.id);
}

/** Reads a cursor made by `encodeCursor`; a 400 naming `field` for anything else. */
export function decodeCursor(text: string, field = 'query.cursor'): RunCursor {
  try {
    const { numbers, id } = decodeKey(text, 1, field);
    return { sortAt: numbers[0]!, id };
  } catch (err) {
    // a sorted list's cursor (`runs list --sort cost` paged on without its --sort): say so
    const code = /^s([cdt]):/.exec(Buffer.from(text, 'base64url').toString('utf8'))?.[1];
    const sort = code && SORTS_BY_CODE.get(code);
    if (sort)
      throw AppError.invalid(field, `a cursor of a list in sort=${sort}: ask with the same sort`);
    throw err;
  }
}

/** Whether `text` is a cursor `encodeCursor` made (the newest-first list's). */
function isNewestFirstCursor(text: string): boolean {
  try {
    decodeKey(text, 1, 'query.cursor');
    return true;
  } catch {
    return false;
  }
}

/** Which sort a sorted list's cursor belongs to, and back. */
const SORT_CODES = { cost: 'c', duration: 'd', tokens: 't' } as const;
const SORTS_BY_CODE = new Map<string, string>(
  Object.entries(SORT_CODES).map(([sort, code]) => [code, sort]),
);

/**
 * The cursor of a page of runs in a sorted order: `s<sort>:<value>:<id>`, the value as the
 * database wrote it (exact past 2^53; -1 for a run without a duration). The leading `s`
 * keeps it apart from a newest-first cursor, each refused where the other is meant.
 */
export function encodeSortedCursor(sort: Exclude<RunSort, 'newest'>, at: SortedCursor): string {
  return Buffer.from(`s${SORT_CODES[sort]}:${at.value}:${at.id}`, 'utf8').toString('base64url');
}

/**
 * Reads a cursor made by `encodeSortedCursor` for the same `sort`; a 400 naming
 * `query.cursor` for anything else (a cursor of another order would skip runs).
 */
export function decodeSortedCursor(text: string, sort: Exclude<RunSort, 'newest'>): SortedCursor {
  const invalid = (why = 'not a cursor this API returned') => AppError.invalid('query.cursor', why);
  if (!/^[A-Za-z0-9_-]+$/.test(text)) throw invalid();
  const [tag, value, ...rest] = Buffer.from(text, 'base64url').toString('utf8').split(':');
  const id = rest.join(':');
  if (
    !tag ||
    !/^s[cdt]$/.test(tag) ||
    value === undefined ||
    !/^-?\d{1,30}(\.\d+)?(e[+-]?\d+)?$/i.test(value) ||
    !ID_PATTERN.test(id)
  )
    // the newest-first list's `<sort_at>:<id>`, paged on with a sort: say so
    throw invalid(
      isNewestFirstCursor(text) ? 'a cursor of the newest-first list: ask without sort' : undefined,
    );
  if (tag !== `s${SORT_CODES[sort]}`) throw invalid(`not a cursor of a list in sort=${sort}`);
  return { value, id };
}

/** The cursor of a page of steps: `<time>:<seq>:<id>`. */
export function encodeStepCursor(cursor: StepCursor): string {
  return encodeKey([cursor.at, cursor.seq], cursor.id);
}

/** Reads a cursor made by `encodeStepCursor`; a 400 naming `query.cursor` for anything else. */
export function decodeStepCursor(text: string): StepCursor {
  const { numbers, id } = decodeKey(text, 2, 'query.cursor');
  return { at: numbers[0]!, seq: numbers[1]!, id };
}

/**
 * Up to `limit` of a run's steps in time order after `after`, and the cursor of the rest.
 * @example await listStepPage(db, 'default', 'r1', 1000)
 */
export async function listStepPage(
  db: Db,
  projectId: string,
  runId: string,
  limit: number,
  after?: StepCursor,
): Promise<{ steps: Step[]; next_cursor: string | null; has_more: boolean }> {
  const { rows, cut } = await listStepsWithinBudget(db, projectId, runId, {
    after,
    limit: limit + 1,
  });
  const hasMore = cut || rows.length > limit;
  const page = hasMore ? rows.slice(0, limit) : rows;
  const last = page[page.length - 1];
  return {
    steps: page.map(toStep),
    next_cursor:
      hasMore && last
        ? encodeStepCursor({ at: stepSortAt(last), seq: last.seq, id: last.id })
        : null,
    has_more: hasMore,
  };
}

/**
 * A run's first `TIMELINE_MAX_STEPS` steps as its timeline needs them: without input, output
 * and metadata, so a run of large steps draws as fast as a small one. An error too large to
 * carry along is named by its size.
 */
export async function listTimelineSteps(
  db: Db,
  projectId: string,
  runId: string,
): Promise<{ steps: Step[]; has_more: boolean }> {
  const rows = await listStepOutlines(db, projectId, runId, TIMELINE_MAX_STEPS + 1);
  const hasMore = rows.length > TIMELINE_MAX_STEPS;
  const steps = (hasMore ? rows.slice(0, TIMELINE_MAX_STEPS) : rows).map((row) => {
    const step = toStep(row);
    if (row.error === null && row.error_bytes !== null)
      step.error = {
        message: `an error of ${Number(row.error_bytes)} bytes: GET /api/v1/runs/${runId}/steps gives it`,
      };
    return step;
  });
  return { steps, has_more: hasMore };
}

/** Whether only filters the rollups can count are set (agent, status, trigger). */
function rollupCountable(filter: RunFilter): boolean {
  return (
    filter.source === undefined &&
    filter.userId === undefined &&
    filter.threadId === undefined &&
    filter.retryOf === undefined &&
    filter.parentRunId === undefined &&
    filter.retried === undefined &&
    filter.tag === undefined &&
    filter.metadata === undefined &&
    filter.model === undefined &&
    filter.score === undefined &&
    filter.from === undefined &&
    filter.to === undefined &&
    filter.q === undefined
  );
}

/**
 * How many runs a page of offset paging shows there are at least: those it skipped, its own,
 * and one more when it has more. 0 after a cursor, whose offset counts from the cursor.
 */
function shownThrough(
  page: { offset?: number | undefined; cursor?: string | undefined },
  rows: number,
  hasMore: boolean,
): number {
  return page.cursor === undefined ? (page.offset ?? 0) + rows + (hasMore ? 1 : 0) : 0;
}

/**
 * One page of runs newest first with keyset (`cursor`) and/or `offset` paging and a `total`
 * that never slows the page down: from the rollups when only agent/status/trigger filter,
 * else a count capped at `totalCap` (then `total_capped: true`).
 */
export async function listRunsPage(
  db: Db,
  projectId: string,
  filter: RunFilter,
  page: {
    limit: number;
    cursor?: string | undefined;
    offset?: number | undefined;
    /** Newest first unless said. */
    sort?: RunSort | undefined;
    /** Where a filtered count stops; `TOTAL_CAP` unless said. */
    totalCap?: number;
  },
): Promise<RunPage> {
  const cap = page.totalCap ?? TOTAL_CAP;
  const sort = page.sort && page.sort !== 'newest' ? page.sort : undefined;
  const cursor = page.cursor !== undefined && !sort ? decodeCursor(page.cursor) : undefined;
  const after =
    page.cursor !== undefined && sort ? decodeSortedCursor(page.cursor, sort) : undefined;
  const listing = listRuns(db, projectId, filter, {
    limit: page.limit,
    ...(cursor ? { cursor } : {}),
    ...(page.offset ? { offset: page.offset } : {}),
    ...(sort ? { sorted: { sort, ...(after ? { after } : {}) } } : {}),
  });
  const [rows, total] = rollupCountable(filter)
    ? await Promise.all([listing, countRunsFromRollups(db, projectId, filter)])
    : await listing.then(async (rows) =>
        // a first page with room left holds every matching run: a search for a rare word
        // reads the runs once, not a second time to count them
        rows.length <= page.limit && page.cursor === undefined && !page.offset
          ? ([rows, rows.length] as const)
          : // one more than the cap: exactly `cap` matches is an exact total, not a capped one
            ([rows, await countRunsCapped(db, projectId, filter, cap + 1)] as const),
      );
  const hasMore = rows.length > page.limit;
  const pageRows = hasMore ? rows.slice(0, page.limit) : rows;
  const last = pageRows[pageRows.length - 1];
  const runs: Run[] = pageRows.map(toRun);
  const capped = !rollupCountable(filter) && total > cap;
  const result: RunPage = {
    runs,
    next_cursor:
      hasMore && last
        ? sort
          ? encodeSortedCursor(sort, { value: last.sort_key ?? '0', id: last.id })
          : encodeCursor({ sortAt: last.sort_at, id: last.id })
        : null,
    has_more: hasMore,
    // a lower bound never below what this page shows there is: an offset past the cap read
    // `total: 10000` beside rows 10,400 to 10,450
    total: capped ? Math.max(cap, shownThrough(page, pageRows.length, hasMore)) : total,
  };
  if (capped) result.total_capped = true;
  return result;
}
