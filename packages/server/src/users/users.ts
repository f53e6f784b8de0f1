import { sql } from 'kysely';
import {
  FAILED_RUN_STATUSES,
  nanosToUsd,
  toIso,
  type RunStatus,
  type UserList,
  type UserSummary,
} from '@runlog/core';
import type { Db } from '../db/database.js';
import { sumOf } from '../db/dialect.js';
import { readOffLoop } from '../db/readers.js';
import { errorMessage } from '../runs/runs.mapper.js';
import {
  decodeThreadCursor,
  encodeThreadCursor,
  latestOwners,
  ownedRuns,
} from '../threads/threads.js';

/** Which of a project's runs made for a user a user list sums up; absent fields do not filter. */
export interface UserFilter {
  agentIds?: readonly string[];
  /** Inclusive bounds on the runs' `sort_at`, epoch ms. */
  from?: number;
  to?: number;
}

interface TotalsRow {
  user_id: string;
  runs: number | string;
  failed: number | string;
  active: number | string;
  threads: number | string;
  first_at: number | string;
  last_at: number | string;
  input_tokens: number | string;
  output_tokens: number | string;
  cost_nanos: number | string;
}

interface LastRow {
  user_id: string;
  id: string;
  status: string;
  agent_id: string;
  error: string | null;
}

/** These users summed up over the runs `filter` keeps, in this order; one with none is left out. */
async function summarize(
  db: Db,
  projectId: string,
  filter: UserFilter,
  userIds: string[],
): Promise<UserSummary[]> {
  if (userIds.length === 0) return [];
  const runs = () => ownedRuns(db, projectId, 'user_id', filter).where('user_id', 'in', userIds);
  const failed = sql.join(FAILED_RUN_STATUSES.map((s) => sql.lit(s)));
  const totals = runs()
    .select([
      sql<string>`user_id`.as('user_id'),
      sql<number>`count(*)`.as('runs'),
      sql<number>`sum(case when status in (${failed}) then 1 else 0 end)`.as('failed'),
      sql<number>`sum(case when status in ('queued', 'running') then 1 else 0 end)`.as('active'),
      sql<number>`count(distinct thread_id)`.as('threads'),
      sql<number>`min(sort_at)`.as('first_at'),
      sql<number>`max(sort_at)`.as('last_at'),
      sumOf(db, 'input_tokens'),
      sumOf(db, 'output_tokens'),
      sumOf(db, 'cost_nanos'),
    ])
    .groupBy('user_id');
  // each user's latest run, ranked in runs_user_sort's order, then read by its key: a cross
  // join, which SQLite reads in the order written (see the threads' summary)
  const ranked = runs().select([
    sql<string>`user_id`.as('user_id'),
    sql<string>`id`.as('run_id'),
    sql<number>`row_number() over (partition by user_id order by sort_at desc, id desc)`.as(
      'last_rank',
    ),
  ]);
  const last = db.kysely
    .selectFrom(ranked.as('ranked'))
    .crossJoin('runs')
    .where('runs.project_id', '=', projectId)
    .whereRef('runs.id', '=', 'ranked.run_id')
    .where('ranked.last_rank', '=', 1)
    .select(['ranked.user_id', 'runs.id', 'runs.status', 'runs.agent_id', 'runs.error']);
  // grouped by an expression no index holds, as the threads' agents are
  const agentId = sql<string>`agent_id || ''`;
  const agents = runs()
    .select([sql<string>`user_id`.as('user_id'), agentId.as('agent_id')])
    .groupBy([sql`user_id`, agentId]);
  const [totalRows, lastRows, agentRows] = await Promise.all([
    readOffLoop(db, totals) as Promise<TotalsRow[]>,
    readOffLoop(db, last) as Promise<LastRow[]>,
    readOffLoop(db, agents),
  ]);
  const byUser = new Map(totalRows.map((row) => [row.user_id, row]));
  const lasts = new Map(lastRows.map((row) => [row.user_id, row]));
  const agentIds = new Map<string, string[]>();
  for (const row of agentRows) {
    const list = agentIds.get(row.user_id) ?? [];
    list.push(row.agent_id);
    agentIds.set(row.user_id, list);
  }
  return userIds.flatMap((userId) => {
    const row = byUser.get(userId);
    const latest = lasts.get(userId);
    // a user whose runs went between the reads: not listed, rather than half-said
    if (!row || !latest) return [];
    return [
      {
        user_id: row.user_id,
        runs: Number(row.runs),
        failed: Number(row.failed),
        active: Number(row.active),
        threads: Number(row.threads),
        agent_ids: (agentIds.get(userId) ?? []).sort(),
        first_at: toIso(Number(row.first_at)),
        last_at: toIso(Number(row.last_at)),
        total_tokens: Number(row.input_tokens) + Number(row.output_tokens),
        cost_usd: nanosToUsd(Number(row.cost_nanos)),
        last_run: {
          id: latest.id,
          status: latest.status as RunStatus,
          agent_id: latest.agent_id,
          error: errorMessage(latest.error),
        },
      },
    ];
  });
}

/**
 * A page of users (the `user_id`s runs were made for), the latest active first (by their
 * latest run, as runs are listed), each summed over the runs `filter` keeps.
 */
export async function listUsers(
  db: Db,
  projectId: string,
  filter: UserFilter,
  page: { limit: number; cursor?: string },
): Promise<UserList> {
  const cursor = page.cursor !== undefined ? decodeThreadCursor(page.cursor) : undefined;
  const latest = await latestOwners(db, projectId, 'user_id', filter, page.limit + 1, cursor);
  const shown = latest.slice(0, page.limit);
  const users = await summarize(
    db,
    projectId,
    filter,
    shown.map((u) => u.threadId),
  );
  const last = shown[shown.length - 1];
  const hasMore = latest.length > page.limit;
  return {
    users,
    next_cursor:
      hasMore && last
        ? encodeThreadCursor({ lastAt: last.lastAt, lastRunId: last.lastRunId })
        : null,
    has_more: hasMore,
  };
}

/** One user summed over all its runs; `undefined` when no run names it. */
export async function findUser(
  db: Db,
  projectId: string,
  userId: string,
): Promise<UserSummary | undefined> {
  const [summary] = await summarize(db, projectId, {}, [userId]);
  return summary;
}
