import { sql, type SqlBool } from 'kysely';
import {
  FAILED_RUN_STATUSES,
  THREAD_PREVIEW_CHARS,
  nanosToUsd,
  previewText,
  toIso,
  type RunStatus,
  type ThreadList,
  type ThreadSummary,
} from '@runlog/core';
import type { Db } from '../db/database.js';
import { sumOf } from '../db/dialect.js';
import { readOffLoop } from '../db/readers.js';
import { AppError } from '../http/errors.js';

/** Which of a project's threaded runs a thread list sums up; absent fields do not filter. */
export interface ThreadFilter {
  agentIds?: readonly string[];
  userId?: string;
  /** Inclusive bounds on the runs' `sort_at`, epoch ms. */
  from?: number;
  to?: number;
}

/** A position in a thread list: the last thread of the previous page. */
export interface ThreadCursor {
  lastAt: number;
  threadId: string;
}

const CURSOR_TAG = 't';

/** The cursor of a page of threads: base64url of `t<last_at>:<thread_id>` (any text). */
export function encodeThreadCursor(cursor: ThreadCursor): string {
  return Buffer.from(`${CURSOR_TAG}${cursor.lastAt}:${cursor.threadId}`, 'utf8').toString(
    'base64url',
  );
}

/** Reads a cursor `encodeThreadCursor` made; a 400 naming `query.cursor` for anything else. */
export function decodeThreadCursor(text: string): ThreadCursor {
  const invalid = () => AppError.invalid('query.cursor', 'not a cursor this API returned');
  if (!/^[A-Za-z0-9_-]+$/.test(text)) throw invalid();
  const match = /^t(\d{1,16}):([\s\S]{1,200})$/.exec(
    Buffer.from(text, 'base64url').toString('utf8'),
  );
  if (!match) throw invalid();
  return { lastAt: Number(match[1]), threadId: match[2]! };
}

/** The runs a filter keeps: a project's runs in a thread. */
function threadedRuns(db: Db, projectId: string, filter: ThreadFilter) {
  let query = db.kysely
    .selectFrom('runs')
    .where('project_id', '=', projectId)
    .where('thread_id', 'is not', null);
  if (filter.agentIds?.length) query = query.where('agent_id', 'in', [...filter.agentIds]);
  if (filter.userId !== undefined) query = query.where('user_id', '=', filter.userId);
  if (filter.from !== undefined) query = query.where('sort_at', '>=', filter.from);
  if (filter.to !== undefined) query = query.where('sort_at', '<=', filter.to);
  return query;
}

interface ThreadRow {
  thread_id: string;
  runs: number | string;
  failed: number | string;
  active: number | string;
  first_at: number | string;
  last_at: number | string;
  input_tokens: number | string;
  output_tokens: number | string;
  cost_nanos: number | string;
}

/** Each thread's counts and sums over the runs kept, latest first, after `cursor`. */
function threadTotals(
  db: Db,
  projectId: string,
  filter: ThreadFilter,
  page: { threadIds?: readonly string[]; cursor?: ThreadCursor; limit?: number },
) {
  const failed = sql.join(FAILED_RUN_STATUSES.map((s) => sql.lit(s)));
  let query = threadedRuns(db, projectId, filter)
    .select([
      sql<string>`thread_id`.as('thread_id'),
      sql<number>`count(*)`.as('runs'),
      sql<number>`sum(case when status in (${failed}) then 1 else 0 end)`.as('failed'),
      sql<number>`sum(case when status in ('queued', 'running') then 1 else 0 end)`.as('active'),
      sql<number>`min(sort_at)`.as('first_at'),
      sql<number>`max(sort_at)`.as('last_at'),
      sumOf(db, 'input_tokens'),
      sumOf(db, 'output_tokens'),
      sumOf(db, 'cost_nanos'),
    ])
    .groupBy('thread_id');
  if (page.threadIds) query = query.where('thread_id', 'in', [...page.threadIds]);
  const { cursor } = page;
  if (cursor)
    query = query.having(
      sql<SqlBool>`(max(sort_at), thread_id) < (${cursor.lastAt}, ${cursor.threadId})`,
    );
  query = query.orderBy(sql`max(sort_at)`, 'desc').orderBy('thread_id', 'desc');
  if (page.limit !== undefined) query = query.limit(page.limit);
  return query;
}

interface EndRow {
  thread_id: string;
  id: string;
  status: string;
  agent_id: string;
  user_id: string | null;
  input: string | null;
  output: string | null;
  error: string | null;
  first_rank: number | string;
  last_rank: number | string;
}

/** Enough of a stored payload's JSON text to preview it (a payload may run to megabytes). */
const PREVIEW_SOURCE_CHARS = 4 * THREAD_PREVIEW_CHARS;

/** A stored payload (JSON text, perhaps cut short) as preview text. */
function preview(text: string | null): string | null {
  if (text === null) return null;
  try {
    return previewText(JSON.parse(text) as unknown, THREAD_PREVIEW_CHARS);
  } catch {
    // cut inside the JSON: its text as it reads, a string without its opening quote
    return previewText(text.startsWith('"') ? text.slice(1) : text, THREAD_PREVIEW_CHARS);
  }
}

/** A stored error's message. */
function errorMessage(text: string | null): string | null {
  if (text === null) return null;
  try {
    const error = JSON.parse(text) as { message?: unknown };
    return typeof error.message === 'string' ? error.message : null;
  } catch {
    return null;
  }
}

/** The summaries of these threads (rows `threadTotals` read), with their ends and agents. */
async function summaries(
  db: Db,
  projectId: string,
  filter: ThreadFilter,
  rows: readonly ThreadRow[],
): Promise<ThreadSummary[]> {
  if (rows.length === 0) return [];
  const threadIds = rows.map((r) => r.thread_id);
  const cut = (column: 'input' | 'output') =>
    sql<string | null>`substr(${sql.ref(column)}, 1, ${PREVIEW_SOURCE_CHARS})`.as(column);
  // each thread's first and latest run, ranked in the runs_thread index's order
  const ranked = threadedRuns(db, projectId, filter)
    .where('thread_id', 'in', threadIds)
    .select([
      sql<string>`thread_id`.as('thread_id'),
      'id',
      'status',
      'agent_id',
      'user_id',
      cut('input'),
      cut('output'),
      'error',
      sql<number>`row_number() over (partition by thread_id order by sort_at, id)`.as('first_rank'),
      sql<number>`row_number() over (partition by thread_id order by sort_at desc, id desc)`.as(
        'last_rank',
      ),
    ]);
  const ends = db.kysely
    .selectFrom(ranked.as('ranked'))
    .selectAll()
    .where((eb) => eb.or([eb('first_rank', '=', 1), eb('last_rank', '=', 1)]));
  const agents = threadedRuns(db, projectId, filter)
    .where('thread_id', 'in', threadIds)
    .select([sql<string>`thread_id`.as('thread_id'), 'agent_id'])
    .groupBy(['thread_id', 'agent_id']);
  const [endRows, agentRows] = await Promise.all([
    readOffLoop(db, ends) as Promise<EndRow[]>,
    readOffLoop(db, agents),
  ]);
  const firsts = new Map<string, EndRow>();
  const lasts = new Map<string, EndRow>();
  for (const row of endRows) {
    if (Number(row.first_rank) === 1) firsts.set(row.thread_id, row);
    if (Number(row.last_rank) === 1) lasts.set(row.thread_id, row);
  }
  const agentIds = new Map<string, string[]>();
  for (const row of agentRows) {
    const list = agentIds.get(row.thread_id) ?? [];
    list.push(row.agent_id);
    agentIds.set(row.thread_id, list);
  }
  return rows.flatMap((row) => {
    const first = firsts.get(row.thread_id);
    const last = lasts.get(row.thread_id);
    // a thread whose runs went between the two reads: not listed, rather than half-said
    if (!first || !last) return [];
    return [
      {
        thread_id: row.thread_id,
        runs: Number(row.runs),
        failed: Number(row.failed),
        active: Number(row.active),
        agent_ids: (agentIds.get(row.thread_id) ?? []).sort(),
        user_id: last.user_id,
        first_at: toIso(Number(row.first_at)),
        last_at: toIso(Number(row.last_at)),
        total_tokens: Number(row.input_tokens) + Number(row.output_tokens),
        cost_usd: nanosToUsd(Number(row.cost_nanos)),
        first_run: { id: first.id, input: preview(first.input) },
        last_run: {
          id: last.id,
          status: last.status as RunStatus,
          agent_id: last.agent_id,
          output: preview(last.output),
          error: errorMessage(last.error),
        },
      },
    ];
  });
}

/**
 * A page of threads, the latest active first: each summed over the runs `filter` keeps.
 * The grouping reads every run kept (through the `runs_thread` index), beside the event
 * loop on SQLite.
 */
export async function listThreads(
  db: Db,
  projectId: string,
  filter: ThreadFilter,
  page: { limit: number; cursor?: string },
): Promise<ThreadList> {
  const cursor = page.cursor !== undefined ? decodeThreadCursor(page.cursor) : undefined;
  const rows = (await readOffLoop(
    db,
    threadTotals(db, projectId, filter, { limit: page.limit + 1, ...(cursor ? { cursor } : {}) }),
  )) as ThreadRow[];
  const hasMore = rows.length > page.limit;
  const shown = rows.slice(0, page.limit);
  const threads = await summaries(db, projectId, filter, shown);
  const last = shown[shown.length - 1];
  return {
    threads,
    next_cursor:
      hasMore && last
        ? encodeThreadCursor({ lastAt: Number(last.last_at), threadId: last.thread_id })
        : null,
    has_more: hasMore,
  };
}

/** One thread summed over all its runs; `undefined` when no run names it. */
export async function findThread(
  db: Db,
  projectId: string,
  threadId: string,
): Promise<ThreadSummary | undefined> {
  const rows = (await readOffLoop(
    db,
    threadTotals(db, projectId, {}, { threadIds: [threadId] }),
  )) as ThreadRow[];
  const [summary] = await summaries(db, projectId, {}, rows);
  return summary;
}
