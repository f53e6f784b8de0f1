import type { AgentSummary, Worker } from './schemas.js';

/** A worker asks for runs every second or so while it has a free slot: quiet longer, it is busy or gone. */
export const WORKER_QUIET_MS = 60_000;

/** An agent's budget over 24 hours and what its runs of the last 24 hours cost, in US$. */
export interface AgentBudget {
  /** Its `max_cost_usd_24h`; null: no budget. */
  capUsd: number | null;
  /** Its `counts_24h.cost_usd`: the runs it started in the last 24 hours. */
  spentUsd: number;
}

/**
 * An agent's budget and spend, read off its summary (`GET /agents`, `GET /agents/:id`).
 * @example budgetReached(agentBudget(agent)) // true while its queued runs wait for the budget
 */
export function agentBudget(
  agent: Pick<AgentSummary, 'max_cost_usd_24h'> & {
    counts_24h: Pick<AgentSummary['counts_24h'], 'cost_usd'>;
  },
): AgentBudget {
  return { capUsd: agent.max_cost_usd_24h, spentUsd: agent.counts_24h.cost_usd };
}

/**
 * Whether the budget holds the agent's queued runs back: its runs of the last 24 hours cost
 * it or more. The server's claims and schedule go by the same rule, in nano-dollars.
 */
export function budgetReached(budget: AgentBudget): budget is AgentBudget & { capUsd: number } {
  return budget.capUsd !== null && budget.spentUsd >= budget.capUsd;
}

/** Why a queued run of an agent still waits, as the run's page and `runlog runs show` say it. */
export type WorkerWait =
  /** The agent is paused (since `since`): no worker is handed its runs until it is resumed. */
  | { kind: 'paused'; since: string }
  /**
   * The runs the agent started in the last 24 hours cost `spentUsd`, at or past its
   * `max_cost_usd_24h` (`capUsd`): no worker is handed its runs until that falls below it.
   */
  | { kind: 'budget'; spentUsd: number; capUsd: number }
  /** No worker ever asked for the agent's runs. */
  | { kind: 'none' }
  /** Its workers run as many of its runs as its `max_concurrency` lets run at once. */
  | { kind: 'capped'; cap: number; running: number }
  /** Its workers run as many runs of its thread as `max_concurrency_per_thread` lets. */
  | { kind: 'thread'; threadId: string; cap: number; running: number }
  /** Its online workers hold runs and have not asked for more since `seenAt`: no slot is free. */
  | { kind: 'busy'; seenAt: string; workers: number; held: number }
  /** No worker asked for its runs for longer than `WORKER_QUIET_MS`. */
  | { kind: 'late'; seenAt: string }
  /** A worker asked lately, but none serving the agent is online now (it stopped). */
  | { kind: 'stopped'; seenAt: string }
  /** A worker asked lately. */
  | { kind: 'seen'; seenAt: string };

/**
 * Why a queued run of `agentId` waits, from when a worker last asked for its runs
 * (`Agent.worker_seen_at`) and the workers listed (`GET /workers`; `undefined` when not read),
 * or the agent's concurrency cap, when its workers hold that many of its runs.
 * A worker asks for runs only with a slot free: one that stopped asking while it holds runs
 * (a run that hangs) is busy, not gone.
 * @example workerWait('triage', agent.worker_seen_at, list.workers, Date.now())
 */
export function workerWait(
  agentId: string,
  seenAt: string | null,
  workers: readonly Worker[] | undefined,
  now: number,
  /**
   * The agent's caps: `max_concurrency`, and for a run of a thread its
   * `max_concurrency_per_thread` with how many runs of the thread the agent runs now. At one,
   * the cap holds the run back, not the workers.
   */
  caps: {
    cap?: number | null;
    thread?: { id: string; cap: number; running: number } | undefined;
    /** When the agent was paused (`Agent.paused_at`): nothing else holds the run back then. */
    pausedAt?: string | null;
    /**
     * The agent's budget over 24 hours (`Agent.max_cost_usd_24h`) and what its runs of the
     * last 24 hours cost (`AgentSummary.counts_24h.cost_usd`): at it, it holds the run back.
     */
    budget?: AgentBudget;
  } = {},
): WorkerWait {
  if (caps.pausedAt) return { kind: 'paused', since: caps.pausedAt };
  const budget = caps.budget;
  if (budget && budgetReached(budget))
    return { kind: 'budget', spentUsd: budget.spentUsd, capUsd: budget.capUsd };
  const cap = caps.cap ?? null;
  if (cap !== null && workers) {
    // the agent's runs the workers hold (each lists its first 20)
    const running = workers.reduce(
      (n, w) => n + w.running_runs.filter((r) => r.agent_id === agentId).length,
      0,
    );
    if (running >= cap) return { kind: 'capped', cap, running };
  }
  const thread = caps.thread;
  if (thread && thread.running >= thread.cap)
    return { kind: 'thread', threadId: thread.id, cap: thread.cap, running: thread.running };
  if (seenAt === null) return { kind: 'none' };
  const serving = workers?.filter((w) => w.online && w.agents.includes(agentId));
  const late = now - Date.parse(seenAt) > WORKER_QUIET_MS;
  const held = serving?.reduce((n, w) => n + w.running, 0) ?? 0;
  if (late && serving && serving.length > 0 && held > 0)
    return { kind: 'busy', seenAt, workers: serving.length, held };
  if (late) return { kind: 'late', seenAt };
  if (serving && serving.length === 0) return { kind: 'stopped', seenAt };
  return { kind: 'seen', seenAt };
}
