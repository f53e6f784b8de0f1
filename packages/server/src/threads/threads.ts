import { sql, type SqlBool } from 'kysely';
import {
  FAILED_RUN_STATUSES,
  ID_PATTERN,
  THREAD_PREVIEW_CHARS,
  nanosToUsd,
  previewJsonText,
  toIso,
  type RunStatus,
  type ThreadList,
  type ThreadSummary,
} from '@runlog/core';
import type { Db } from '../db/database.js';
import { containsText, sumOf } from '../db/dialect.js';
import { readOffLoop } from '../db/readers.js';
import { AppError } from '../http/errors.js';
import { errorMessage } from '../runs/runs.mapper.js';

/** Which of a project's threaded runs a thread list sums up; absent fields do not filter. */
export interface ThreadFilter {
  agentIds?: readonly string[];
  userId?: string;
  /** Inclusive bounds on the runs' `sort_at`, epoch ms. */
  from?: number;
  to?: number;
  /** Text in the owner's id (the thread's, the user's), any case: which owners the walk finds. */
  search?: string;
}

/**
 * A position in a thread list: the latest run (time and id) of the previous page's last
 * thread. Threads are listed by their latest run, newest first, as runs are.
 */
export interface ThreadCursor {
  lastAt: number;
  lastRunId: string;
}

/** The cursor of a page of threads: base64url of `t<last_at>:<run id>`. */
export function encodeThreadCursor(cursor: ThreadCursor): string {
  return Buffer.from(`t${cursor.lastAt}:${cursor.lastRunId}`, 'utf8').toString('base64url');
}

/** Reads a cursor `encodeThreadCursor` made; a 400 naming `query.cursor` for anything else. */
export function decodeThreadCursor(text: string): ThreadCursor {
  const invalid = () => AppError.invalid('query.cursor', 'not a cursor this API returned');
  if (!/^[A-Za-z0-9_-]+$/.test(text)) throw invalid();
  // negative: a run's time before 1970, as older versions stored it
  const match = /^t(-?\d{1,16}):(.+)$/.exec(Buffer.from(text, 'base64url').toString('utf8'));
  if (!match || !ID_PATTERN.test(match[2]!)) throw invalid();
  return { lastAt: Number(match[1]), lastRunId: match[2]! };
}

/**
 * What a list of runs' owners is keyed by: their conversation (`thread_id`) or the user
 * they ran for (`user_id`). Each has a partial index of the runs that have one, newest
 * first (`runs_threads_latest`, `runs_users_latest`).
 */
export type OwnerKey = 'thread_id' | 'user_id';

/** The runs a filter keeps: a project's runs that have a `key` (in a thread, for a user). */
export function ownedRuns(db: Db, projectId: string, key: OwnerKey, filter: ThreadFilter) {
  let query = db.kysely
    .selectFrom('runs')
    .where('project_id', '=', projectId)
    .where(key, 'is not', null);
  if (filter.agentIds?.length) query = query.where('agent_id', 'in', [...filter.agentIds]);
  if (filter.userId !== undefined) query = query.where('user_id', '=', filter.userId);
  if (filter.from !== undefined) query = query.where('sort_at', '>=', filter.from);
  if (filter.to !== undefined) query = query.where('sort_at', '<=', filter.to);
  return query;
}

/** The runs a filter keeps: a project's runs in a thread. */
function threadedRuns(db: Db, projectId: string, filter: ThreadFilter) {
  return ownedRuns(db, projectId, 'thread_id', filter);
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

/** The counts and sums of these threads over the runs `filter` keeps. */
function threadTotals(db: Db, projectId: string, filter: ThreadFilter, threadIds: string[]) {
  const failed = sql.join(FAILED_RUN_STATUSES.map((s) => sql.lit(s)));
  return threadedRuns(db, projectId, filter)
    .where('thread_id', 'in', threadIds)
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
const PREVIEW_SOURCE_CHARS = 16_000;

/** A stored payload (JSON text, perhaps cut short) as preview text. */
function preview(text: string | null): string | null {
  return text === null ? null : previewJsonText(text, THREAD_PREVIEW_CHARS);
}

/** These threads summed up, in this order; a thread the filter keeps no run of is left out. */
async function summarize(
  db: Db,
  projectId: string,
  filter: ThreadFilter,
  threadIds: string[],
): Promise<ThreadSummary[]> {
  if (threadIds.length === 0) return [];
  const cut = (column: 'input' | 'output') =>
    sql<string | null>`substr(${sql.ref(`runs.${column}`)}, 1, ${PREVIEW_SOURCE_CHARS})`.as(column);
  // each thread's first and latest run, ranked in the runs_thread index's order; only those
  // two are read whole
  const ranked = threadedRuns(db, projectId, filter)
    .where('thread_id', 'in', threadIds)
    .select([
      sql<string>`thread_id`.as('thread_id'),
      sql<string>`id`.as('run_id'),
      sql<number>`row_number() over (partition by thread_id order by sort_at, id)`.as('first_rank'),
      sql<number>`row_number() over (partition by thread_id order by sort_at desc, id desc)`.as(
        'last_rank',
      ),
    ]);
  // a cross join, which SQLite reads in the order written: the few ranked runs first, then
  // each by its key. As an inner join SQLite, which keeps no statistics here, walked all the
  // project's runs and probed the ranked ones (7 s for a thread of 5 among 500,000 runs)
  const ends = db.kysely
    .selectFrom(ranked.as('ranked'))
    .crossJoin('runs')
    .where('runs.project_id', '=', projectId)
    .whereRef('runs.id', '=', 'ranked.run_id')
    .select([
      'ranked.thread_id',
      'runs.id',
      'runs.status',
      'runs.agent_id',
      'runs.user_id',
      cut('input'),
      cut('output'),
      'runs.error',
      'ranked.first_rank',
      'ranked.last_rank',
    ])
    .where((eb) => eb.or([eb('ranked.first_rank', '=', 1), eb('ranked.last_rank', '=', 1)]));
  // grouped by an expression no index holds: by the column, SQLite walked all the project's
  // runs in runs_agent_sort's order to skip a sort rather than read the thread's off runs_thread
  const agentId = sql<string>`agent_id || ''`;
  const agents = threadedRuns(db, projectId, filter)
    .where('thread_id', 'in', threadIds)
    .select([sql<string>`thread_id`.as('thread_id'), agentId.as('agent_id')])
    .groupBy([sql`thread_id`, agentId]);
  const [totalRows, endRows, agentRows] = await Promise.all([
    readOffLoop(db, threadTotals(db, projectId, filter, threadIds)) as Promise<ThreadRow[]>,
    readOffLoop(db, ends) as Promise<EndRow[]>,
    readOffLoop(db, agents),
  ]);
  const totals = new Map(totalRows.map((row) => [row.thread_id, row]));
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
  return threadIds.flatMap((threadId) => {
    const row = totals.get(threadId);
    const first = firsts.get(threadId);
    const last = lasts.get(threadId);
    // a thread whose runs went between the reads: not listed, rather than half-said
    if (!row || !first || !last) return [];
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
 * Runs read by the first step of the walk for a page; each next step reads what the runs per
 * owner met so far say the owners still wanted hold (half as much again), at least twice the
 * step before: a page of users of a thousand runs each is a step or two, not ten.
 */
const FIRST_CHUNK = 256;
const MAX_CHUNK = 16_384;
/**
 * Most threads met that a step of the walk leaves out in SQL, on the index, rather than
 * reading their runs again (a long conversation's turns); past that, they are read and
 * skipped.
 */
const EXCLUDED_MAX = 1000;

/** A thread (or a user) found by the walk: its latest run that the filter keeps. */
export interface Latest {
  threadId: string;
  lastAt: number;
  lastRunId: string;
}

/**
 * The next `count` threads after `cursor`, by their latest run newest first (`latestOwners`
 * keyed by `thread_id`).
 */
export function latestThreads(
  db: Db,
  projectId: string,
  filter: ThreadFilter,
  count: number,
  cursor: ThreadCursor | undefined,
): Promise<Latest[]> {
  return latestOwners(db, projectId, 'thread_id', filter, count, cursor);
}

/**
 * The next `count` owners (threads, users) after `cursor`, by their latest run newest first:
 * a walk down the project's runs that have one newest first (the key's `*_latest` index, or
 * the filter's own), each owner taken where its latest run is met. After a cursor, an owner
 * met again is one listed before when it has a run at or past the cursor. `threadId` holds
 * the owner's key.
 */
export async function latestOwners(
  db: Db,
  projectId: string,
  key: OwnerKey,
  filter: ThreadFilter,
  count: number,
  cursor: ThreadCursor | undefined,
): Promise<Latest[]> {
  const found: Latest[] = [];
  const met = new Set<string>();
  let after = cursor ? { sortAt: cursor.lastAt, id: cursor.lastRunId } : undefined;
  // an agent's or a user's runs are walked on their own index, keyed or not: however
  // many of them have no key, beside the event loop; so is a search, which may pass over
  // every owner before it meets one that matches
  const narrowed =
    (filter.agentIds?.length ?? 0) > 0 ||
    filter.userId !== undefined ||
    filter.search !== undefined;
  let walked = 0;
  for (let chunk = FIRST_CHUNK; found.length < count;) {
    let step = ownedRuns(db, projectId, key, filter).select([
      'sort_at',
      'id',
      sql<string>`${sql.ref(key)}`.as('owner'),
    ]);
    const from = after;
    // a row value: the index's own order, a bound of its range on both databases
    if (from) step = step.where(sql<SqlBool>`(sort_at, id) < (${from.sortAt}, ${from.id})`);
    if (met.size > 0 && met.size <= EXCLUDED_MAX) step = step.where(key, 'not in', [...met]);
    // only the walk searches: the owners it finds match, so their sums and the cursor's
    // check of them (`listedBefore`) need not test each of their runs again
    if (filter.search !== undefined)
      step = step.where(containsText(db, sql.ref(key), filter.search));
    step = step.orderBy('sort_at', 'desc').orderBy('id', 'desc').limit(chunk);
    // of the step's runs, only each owner's latest and the step's last come back: a user's
    // thousand runs are passed over in the database, not copied out one by one
    const ranked = db.kysely
      .selectFrom(step.as('step'))
      .select([
        'step.sort_at',
        'step.id',
        'step.owner',
        sql<number>`row_number() over (partition by step.owner order by step.sort_at desc, step.id desc)`.as(
          'k',
        ),
        sql<number>`row_number() over (order by step.sort_at desc, step.id desc)`.as('pos'),
        sql<number>`count(*) over ()`.as('n'),
      ]);
    const query = db.kysely
      .selectFrom(ranked.as('ranked'))
      .selectAll()
      .where((eb) => eb.or([eb('k', '=', 1), eb('pos', '=', eb.ref('n'))]))
      .orderBy('sort_at', 'desc')
      .orderBy('id', 'desc');
    const rows =
      narrowed || chunk > FIRST_CHUNK ? await readOffLoop(db, query) : await query.execute();
    const fresh: Latest[] = [];
    for (const row of rows) {
      if (Number(row.k) !== 1 || met.has(row.owner)) continue;
      met.add(row.owner);
      fresh.push({ threadId: row.owner, lastAt: Number(row.sort_at), lastRunId: row.id });
    }
    const listed =
      cursor && fresh.length > 0
        ? await listedBefore(db, projectId, key, filter, fresh, cursor)
        : undefined;
    for (const owner of fresh) {
      if (listed?.has(owner.threadId)) continue;
      found.push(owner);
      if (found.length === count) break;
    }
    const read = rows.length > 0 ? Number(rows[0]!.n) : 0;
    const last = rows.find((row) => Number(row.pos) === read);
    if (read < chunk || !last) break;
    after = { sortAt: Number(last.sort_at), id: last.id };
    walked += read;
    const perOwner = walked / Math.max(1, met.size);
    const wanted = Math.ceil((count - found.length) * perOwner * 1.5);
    chunk = Math.min(MAX_CHUNK, Math.max(chunk * 2, wanted));
  }
  return found;
}

/** Which of these owners have a run (that the filter keeps) at or past `cursor`. */
async function listedBefore(
  db: Db,
  projectId: string,
  key: OwnerKey,
  filter: ThreadFilter,
  owners: readonly Latest[],
  cursor: ThreadCursor,
): Promise<Set<string>> {
  const rows = await readOffLoop(
    db,
    ownedRuns(db, projectId, key, filter)
      .where(
        key,
        'in',
        owners.map((t) => t.threadId),
      )
      .where((eb) =>
        eb.or([
          eb('sort_at', '>', cursor.lastAt),
          eb.and([eb('sort_at', '=', cursor.lastAt), eb('id', '>=', cursor.lastRunId)]),
        ]),
      )
      .select(sql<string>`${sql.ref(key)}`.as('owner'))
      .distinct(),
  );
  return new Set(rows.map((r) => r.owner));
}

/**
 * A page of threads, the latest active first (by their latest run, as runs are listed),
 * each summed over the runs `filter` keeps.
 */
export async function listThreads(
  db: Db,
  projectId: string,
  filter: ThreadFilter,
  page: { limit: number; cursor?: string },
): Promise<ThreadList> {
  const cursor = page.cursor !== undefined ? decodeThreadCursor(page.cursor) : undefined;
  const latest = await latestThreads(db, projectId, filter, page.limit + 1, cursor);
  const shown = latest.slice(0, page.limit);
  const threads = await summarize(
    db,
    projectId,
    filter,
    shown.map((t) => t.threadId),
  );
  const last = shown[shown.length - 1];
  const hasMore = latest.length > page.limit;
  return {
    threads,
    next_cursor:
      hasMore && last
        ? encodeThreadCursor({ lastAt: last.lastAt, lastRunId: last.lastRunId })
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
  const [summary] = await summarize(db, projectId, {}, [threadId]);
  return summary;
}
