import { ID_PATTERN, type Run, type RunList } from '@runlog/core';
import type { Db } from '../db/database.js';
import { AppError } from '../http/errors.js';
import { toRun } from './runs.mapper.js';
import {
  countRunsCapped,
  countRunsFromRollups,
  listRuns,
  type RunCursor,
  type RunFilter,
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
  if (numbers.length < count || !numbers.every((n) => /^\d{1,16}$/.test(n)) || !ID_PATTERN.test(id))
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
  const { numbers, id } = decodeKey(text, 1, field);
  return { sortAt: numbers[0]!, id };
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

/** Whether only filters the rollups can count are set (agent, status, trigger). */
function rollupCountable(filter: RunFilter): boolean {
  return (
    filter.source === undefined &&
    filter.userId === undefined &&
    filter.threadId === undefined &&
    filter.retryOf === undefined &&
    filter.tag === undefined &&
    filter.from === undefined &&
    filter.to === undefined &&
    filter.q === undefined
  );
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
    /** Where a filtered count stops; `TOTAL_CAP` unless said. */
    totalCap?: number;
  },
): Promise<RunPage> {
  const cap = page.totalCap ?? TOTAL_CAP;
  const cursor = page.cursor !== undefined ? decodeCursor(page.cursor) : undefined;
  const [rows, total] = await Promise.all([
    listRuns(db, projectId, filter, {
      limit: page.limit,
      ...(cursor ? { cursor } : {}),
      ...(page.offset ? { offset: page.offset } : {}),
    }),
    rollupCountable(filter)
      ? countRunsFromRollups(db, projectId, filter)
      : countRunsCapped(db, projectId, filter, cap),
  ]);
  const hasMore = rows.length > page.limit;
  const pageRows = hasMore ? rows.slice(0, page.limit) : rows;
  const last = pageRows[pageRows.length - 1];
  const runs: Run[] = pageRows.map(toRun);
  const result: RunPage = {
    runs,
    next_cursor: hasMore && last ? encodeCursor({ sortAt: last.sort_at, id: last.id }) : null,
    has_more: hasMore,
    total,
  };
  if (!rollupCountable(filter) && total >= cap) result.total_capped = true;
  return result;
}
