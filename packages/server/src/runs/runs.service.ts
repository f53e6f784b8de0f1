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
export type RunPage = RunList & { total_capped?: true };

/**
 * The opaque keyset cursor: base64url of `<sort_at>:<id>`.
 * @example decodeCursor(encodeCursor({ sortAt: 1, id: 'r1' })) // { sortAt: 1, id: 'r1' }
 */
export function encodeCursor(cursor: RunCursor): string {
  return Buffer.from(`${cursor.sortAt}:${cursor.id}`, 'utf8').toString('base64url');
}

/** Reads a cursor made by `encodeCursor`; a 400 naming `field` for anything else. */
export function decodeCursor(text: string, field = 'query.cursor'): RunCursor {
  const invalid = () => AppError.invalid(field, 'not a cursor this API returned');
  if (!/^[A-Za-z0-9_-]+$/.test(text)) throw invalid();
  const decoded = Buffer.from(text, 'base64url').toString('utf8');
  const m = /^(\d{1,16}):([A-Za-z0-9._:-]{1,128})$/.exec(decoded);
  if (!m?.[1] || !m[2]) throw invalid();
  return { sortAt: Number(m[1]), id: m[2] };
}

/** The cursor of a page of steps: base64url of `<time>:<seq>:<id>`. */
export function encodeStepCursor(cursor: StepCursor): string {
  return Buffer.from(`${cursor.at}:${cursor.seq}:${cursor.id}`, 'utf8').toString('base64url');
}

/** Reads a cursor made by `encodeStepCursor`; a 400 naming `query.cursor` for anything else. */
export function decodeStepCursor(text: string): StepCursor {
  const invalid = () => AppError.invalid('query.cursor', 'not a cursor this API returned');
  if (!/^[A-Za-z0-9_-]+$/.test(text)) throw invalid();
  const m = /^(\d{1,16}):(\d{1,16}):(.+)$/.exec(Buffer.from(text, 'base64url').toString('utf8'));
  if (!m?.[1] || !m[2] || !m[3] || !ID_PATTERN.test(m[3])) throw invalid();
  return { at: Number(m[1]), seq: Number(m[2]), id: m[3] };
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
