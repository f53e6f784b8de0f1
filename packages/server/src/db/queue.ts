import { sql, type Kysely } from 'kysely';
import { statusIn } from './dialect.js';
import type { DialectName } from './database.js';
import type { Database } from './schema.js';

/** A queued run a claim may take, in queue order (`queued_at`, then `id`). */
export interface QueuedCandidate {
  id: string;
  agent_id: string;
  queued_at: number;
  thread_id: string | null;
  /**
   * For an agent with a per-thread cap: how many runs of its thread the agent's workers are
   * executing now (0 without a thread, or without that cap).
   */
  thread_running: number;
}

/** An agent's per-thread cap, and how many runs of each thread its workers execute now. */
export interface ThreadCap {
  cap: number;
  running: ReadonlyMap<string, number>;
}

/** A scan of one thread-capped agent's queue reads it this many runs at a time... */
const THREAD_SCAN_PAGE = 256;
/**
 * ...and no further than this many: the runs further back wait until the threads ahead of
 * them move (each run that ends lets its thread's next run through). A claim stays
 * milliseconds however many turns of running conversations wait.
 */
export const THREAD_SCAN_MAX = 2048;

/**
 * The oldest queued runs of the given agents that may run by `now` (an automatic retry waits
 * its delay with `queued_at` ahead), for a claim inside a write transaction, not locked: on
 * PostgreSQL the claim then takes the runs it can of these with the write path's own
 * (advisory) locks, without waiting (`tryLockRuns`); on SQLite the single writer already
 * serialises claims.
 *
 * `slots` bounds agents with a concurrency cap: at most that many of each one's runs (none
 * for 0), read from its own range of the queue index, so a capped agent's older runs do not
 * take the places of other agents' runs the claim may hand out. `threads` passes over the
 * runs of threads at their agent's per-thread cap (and takes no more of one thread than it
 * has room for), reading the agent's queue in pages, at most `THREAD_SCAN_MAX` runs deep.
 */
export async function selectQueuedForClaim(
  trx: Kysely<Database>,
  dialect: DialectName,
  projectId: string,
  agentIds: string[],
  limit: number,
  now: number,
  /** More candidates on PostgreSQL, past this many already tried. */
  skipped = 0,
  slots?: ReadonlyMap<string, number>,
  threads?: ReadonlyMap<string, ThreadCap>,
): Promise<QueuedCandidate[]> {
  // on PostgreSQL a few more: another instance may hold some of the oldest
  const reach = (n: number) => (dialect === 'postgres' ? Math.min(n * 2 + 8, 200) + skipped : n);
  const queue = (agents: string[]) =>
    trx
      .selectFrom('runs')
      .select(['id', 'agent_id', 'queued_at', 'thread_id'])
      .where(statusIn('queued'))
      .where('agent_id', 'in', agents)
      .where('project_id', '=', projectId)
      // within the index's range: (project_id, agent_id, queued_at, id) of the queued runs
      .where('queued_at', '<=', now);
  const candidate = (
    r: { id: string; agent_id: string; queued_at: number | null; thread_id: string | null },
    running = 0,
  ): QueuedCandidate => ({
    id: r.id,
    agent_id: r.agent_id,
    queued_at: Number(r.queued_at),
    thread_id: r.thread_id,
    thread_running: running,
  });
  const read = async (agents: string[], n: number) =>
    (await queue(agents).orderBy('queued_at').orderBy('id').limit(reach(n)).execute()).map((r) =>
      candidate(r),
    );
  const scan = async (agent: string, n: number, threadCap: ThreadCap) => {
    const want = reach(n);
    const out: QueuedCandidate[] = [];
    // the runs of each thread this scan takes, beside those running
    const taken = new Map<string, number>();
    let after: { queued_at: number; id: string } | undefined;
    for (let scanned = 0; out.length < want && scanned < THREAD_SCAN_MAX;) {
      let q = queue([agent]);
      if (after) q = q.where(sql<boolean>`(queued_at, id) > (${after.queued_at}, ${after.id})`);
      const page = await q.orderBy('queued_at').orderBy('id').limit(THREAD_SCAN_PAGE).execute();
      for (const r of page) {
        if (r.thread_id === null) {
          out.push(candidate(r));
        } else {
          const running = threadCap.running.get(r.thread_id) ?? 0;
          const mine = taken.get(r.thread_id) ?? 0;
          if (running + mine >= threadCap.cap) continue;
          taken.set(r.thread_id, mine + 1);
          out.push(candidate(r, running));
        }
        if (out.length >= want) break;
      }
      scanned += page.length;
      if (page.length < THREAD_SCAN_PAGE) break;
      const last = page[page.length - 1]!;
      after = { queued_at: Number(last.queued_at), id: last.id };
    }
    return out;
  };
  // capped agents are read each on its own: so many runs of one, past the threads at their cap
  const apart = (a: string) => slots?.has(a) === true || threads?.has(a) === true;
  if (!agentIds.some(apart)) return read(agentIds, limit);
  const free = agentIds.filter((a) => !apart(a));
  const rows: QueuedCandidate[] = free.length > 0 ? await read(free, limit) : [];
  for (const agent of new Set(agentIds.filter(apart))) {
    const open = Math.min(slots?.get(agent) ?? limit, limit);
    if (open <= 0) continue;
    const threadCap = threads?.get(agent);
    rows.push(...(threadCap ? await scan(agent, open, threadCap) : await read([agent], open)));
  }
  return rows
    .sort((a, b) => a.queued_at - b.queued_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .slice(0, reach(limit));
}

/** The runs workers execute now of some agents: per agent, and per agent per thread. */
export interface RunningOnWorkers {
  agents: Map<string, number>;
  threads: Map<string, Map<string, number>>;
}

/**
 * How many runs of each of these agents workers are executing now (running, claimed by a
 * worker), and of each of their threads, read off the (project, agent, status) index in one
 * query: as many rows as the agents run, whatever their history (SQLite is told the index:
 * sampled statistics may prefer another). On PostgreSQL a claim takes the agents' slot locks
 * (`slotLock`) first, so that the claims of a capped agent count one after another.
 */
export async function runningOnWorkers(
  trx: Kysely<Database>,
  dialect: DialectName,
  projectId: string,
  agentIds: readonly string[],
  /** Of these, the agents counted per thread too (those with a per-thread cap). */
  byThread: readonly string[] = [],
): Promise<RunningOnWorkers> {
  const out: RunningOnWorkers = { agents: new Map(), threads: new Map() };
  if (agentIds.length === 0) return out;
  // the other agents' runs fold into one row each, however many threads they run in
  const thread =
    byThread.length > 0
      ? sql`case when r.agent_id in (${sql.join([...byThread])}) then r.thread_id end`
      : sql`null`;
  const runs =
    dialect === 'sqlite' ? sql`runs as r indexed by runs_agent_status_sort` : sql`runs as r`;
  const rows = await sql<{
    agent_id: string;
    thread_id: string | null;
    n: number | string;
  }>`select r.agent_id, ${thread} as thread_id, count(*) as n
    from ${runs}
    where r.project_id = ${projectId} and r.agent_id in (${sql.join([...agentIds])})
      and r.status = 'running' and r.worker_id is not null
    group by 1, 2`.execute(trx);
  for (const r of rows.rows) {
    const n = Number(r.n);
    out.agents.set(r.agent_id, (out.agents.get(r.agent_id) ?? 0) + n);
    if (r.thread_id === null) continue;
    let threads = out.threads.get(r.agent_id);
    if (!threads) out.threads.set(r.agent_id, (threads = new Map()));
    threads.set(r.thread_id, n);
  }
  return out;
}

/**
 * The key of one thread of an agent, as the per-thread caps count and lock it (an agent id
 * has no '/', so it is never ambiguous).
 */
export const threadKey = (agentId: string, threadId: string) => `${agentId}/${threadId}`;

/** The advisory lock keys (`advisoryLocks`) of a capped agent's places and of a thread's. */
export const slotLock = (projectId: string, agentId: string) => `slots/${projectId}/${agentId}`;
export const threadLock = (projectId: string, key: string) => `thread/${projectId}/${key}`;
