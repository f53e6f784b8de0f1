import {
  agentBudget,
  workerWait,
  type Agent,
  type AgentSummary,
  type Run,
  type RunList,
  type RunStatus,
  type Worker,
  type WorkerWait,
} from '@runlog/core';
import { ApiError, api, errorMessage } from '../../lib/api';
import { RUN_STATUS_META, formatCost, formatUsdLimit, isActive } from '../../lib/format';
import { cancelRun, retryRunOnce, runListParams, type RunsView } from './runs.queries';

// Stop and Retry of many runs at once: which runs each applies to, the calls made a few at a
// time, and what they came to. Everything here but the calls is pure, for the tests.

/** The most runs "select all matching" selects: a bigger pass is done again on what is left. */
export const SELECT_ALL_CAP = 1000;

/** How many runs are stopped or retried at the same time: a few, so the server keeps serving. */
export const BULK_CONCURRENCY = 4;

/** The runs a bulk action acts on, and the selected runs it leaves alone. */
export interface BulkPlan {
  /** Failed, timed-out and cancelled runs: each gets a retry, unless it has one already. */
  retry: Run[];
  /** Selected runs Retry leaves alone as queued or running: a retry would run them twice. */
  retryActive: number;
  /** Selected runs Retry leaves alone as succeeded: done already, retried from their page. */
  retrySucceeded: number;
  /** Queued or running runs not asked to stop yet. */
  stop: Run[];
  /** Ended runs, and running ones asked to stop already. */
  stopSkipped: number;
}

/**
 * Which of the selected runs Retry and Stop act on: Retry the ones that ended without
 * succeeding (a run still queued or running is not retried, and a selection of a whole page
 * does not run again the work that succeeded), Stop the queued or running ones not stopping
 * already.
 * @example planBulk([failedRun, runningRun]) // { retry: [failedRun], stop: [runningRun], ... }
 */
export function planBulk(runs: readonly Run[]): BulkPlan {
  const retry = runs.filter((r) => !isActive(r.status) && r.status !== 'succeeded');
  const stop = runs.filter((r) => isActive(r.status) && r.cancel_requested_at === null);
  return {
    retry,
    retryActive: runs.filter((r) => isActive(r.status)).length,
    retrySucceeded: runs.filter((r) => r.status === 'succeeded').length,
    stop,
    stopSkipped: runs.length - stop.length,
  };
}

/** "1 run", "37 runs": a count with its noun. */
export function plural(n: number, noun: string): string {
  return `${n.toLocaleString('en-US')} ${noun}${n === 1 ? '' : 's'}`;
}

const STATUS_WORDS: Record<RunStatus, string> = {
  queued: 'queued',
  running: 'running',
  succeeded: 'succeeded',
  failed: 'failed',
  cancelled: 'cancelled',
  timed_out: 'timed-out',
};

/**
 * What runs are: "37 failed runs" when they share a status, "5 ended runs" when not.
 * @example runsText(plan.retry) // '37 failed runs'
 */
export function runsText(runs: readonly Run[], mixed = 'ended'): string {
  const first = runs[0]?.status;
  const word = first && runs.every((r) => r.status === first) ? STATUS_WORDS[first] : mixed;
  return plural(runs.length, `${word} run`);
}

/** The Retry button's label: what it will act on ("Retry 37 failed runs"). */
export function retryLabel(plan: BulkPlan): string {
  return plan.retry.length === 0 ? 'Retry' : `Retry ${runsText(plan.retry, 'unsuccessful')}`;
}

/** The Stop button's label ("Stop 12 queued runs", "Stop 3 active runs"). */
export function stopLabel(plan: BulkPlan): string {
  return plan.stop.length === 0 ? 'Stop' : `Stop ${runsText(plan.stop, 'active')}`;
}

/** Why a bulk button acts on nothing, for its tooltip and a screen reader. */
export function emptyReason(action: BulkAction): string {
  return action === 'retry'
    ? 'None of the selected runs failed, timed out or was cancelled: a queued or running run cannot be retried, and a succeeded one is retried from its own page'
    : 'None of the selected runs is queued or running (or each was asked to stop already)';
}

export type BulkAction = 'retry' | 'stop';

/**
 * What one run came to: `queued` (its retry, new), `already` (a retry it had, not queued
 * again), `cancelled` (a queued run, at once), `stopping` (a running run, asked to stop),
 * `ended` (it ended before Stop reached it), `failed` (the server said why) or `not_sent`
 * (the pass was cancelled before its turn).
 */
export type BulkOutcome =
  | { run: Run; result: 'queued' | 'already' | 'cancelled' | 'stopping'; to: Run }
  | { run: Run; result: 'ended' | 'not_sent' }
  | { run: Run; result: 'failed'; error: string };

export type BulkResult = BulkOutcome['result'];

/** Retry or Stop of one run, as an outcome: an error is what the run came to, not a throw. */
export async function actOn(action: BulkAction, run: Run): Promise<BulkOutcome> {
  try {
    if (action === 'retry') {
      // once: a run retried already is answered with its retry, not retried twice (the
      // server looks and queues in one step, so a teammate's pass at the same time is seen)
      const { run: to, queued } = await retryRunOnce(run.id);
      return { run, result: queued ? 'queued' : 'already', to };
    }
    const to = await cancelRun(run.id);
    return { run, result: to.status === 'cancelled' ? 'cancelled' : 'stopping', to };
  } catch (err) {
    // Stop answers 409 only for a run that has ended: it did what Stop was for
    if (action === 'stop' && err instanceof ApiError && err.status === 409)
      return { run, result: 'ended' };
    return { run, result: 'failed', error: errorMessage(err) };
  }
}

/** How many runs came to each result. */
export function countResults(outcomes: readonly BulkOutcome[]): Record<BulkResult, number> {
  const counts: Record<BulkResult, number> = {
    queued: 0,
    already: 0,
    cancelled: 0,
    stopping: 0,
    ended: 0,
    failed: 0,
    not_sent: 0,
  };
  for (const o of outcomes) counts[o.result]++;
  return counts;
}

/** The words each result is counted under, in the order a summary says them. */
const RESULT_WORDS: Record<BulkAction, [BulkResult, string][]> = {
  retry: [
    ['queued', 'queued'],
    ['already', 'already retried'],
    ['failed', 'failed'],
    ['not_sent', 'not sent'],
  ],
  stop: [
    ['cancelled', 'cancelled'],
    ['stopping', 'stop requested'],
    ['ended', 'had ended'],
    ['failed', 'failed'],
    ['not_sent', 'not sent'],
  ],
};

/**
 * The counts of a pass that are not zero, in words.
 * @example countsText('retry', outcomes) // 'queued 30 · already retried 5 · failed 2'
 */
export function countsText(action: BulkAction, outcomes: readonly BulkOutcome[]): string {
  const counts = countResults(outcomes);
  return RESULT_WORDS[action]
    .filter(([result]) => counts[result] > 0)
    .map(([result, word]) => `${word} ${counts[result].toLocaleString('en-US')}`)
    .join(' · ');
}

/**
 * What a pass came to, as its toast says it. The head names the action, not its outcome:
 * "Retried 3 runs" over three runs retried already read as three retries queued.
 * @example summaryText('retry', outcomes) // 'Retry of 37 runs: queued 30 · already retried 5 · failed 2'
 */
export function summaryText(action: BulkAction, outcomes: readonly BulkOutcome[]): string {
  const notSent = countResults(outcomes).not_sent;
  const sent = (outcomes.length - notSent).toLocaleString('en-US');
  const head =
    notSent > 0
      ? `${action === 'retry' ? 'Retry' : 'Stop'} cancelled after ${sent} of ${plural(outcomes.length, 'run')}`
      : `${action === 'retry' ? 'Retry' : 'Stop'} of ${plural(outcomes.length, 'run')}`;
  return `${head}: ${countsText(action, outcomes)}`;
}

/** A run's status in words, lower case: "failed", "timed out". */
export function statusWord(status: RunStatus): string {
  return RUN_STATUS_META[status].label.toLowerCase();
}

/** Runs read per request by "select all matching". */
const MATCH_PAGE = 200;

/**
 * The runs a Runs page view matches, in its order, read page by page through `GET /runs` with
 * the same filters, up to `cap`. `onProgress` hears how many are read so far.
 * @example const { runs, total } = await fetchMatching(view, SELECT_ALL_CAP, (n) => setRead(n), signal)
 */
export async function fetchMatching(
  view: RunsView,
  cap: number,
  onProgress: (read: number) => void,
  signal: AbortSignal,
): Promise<{ runs: Run[]; total: number; totalCapped: boolean }> {
  const runs: Run[] = [];
  const seen = new Set<string>();
  let cursor: string | undefined;
  let total = 0;
  let totalCapped = false;
  do {
    const page = await api<RunList>('GET', '/runs', {
      query: { ...runListParams(view), limit: Math.min(MATCH_PAGE, cap - runs.length), cursor },
      signal,
    });
    if (cursor === undefined) {
      total = page.total;
      totalCapped = page.total_capped === true;
    }
    for (const run of page.runs) {
      if (runs.length >= cap) break;
      // a keyset page never repeats a run; kept safe against a run that moved between pages
      if (seen.has(run.id)) continue;
      seen.add(run.id);
      runs.push(run);
    }
    onProgress(runs.length);
    cursor = page.has_more && page.next_cursor ? page.next_cursor : undefined;
  } while (cursor !== undefined && runs.length < cap);
  return { runs, total, totalCapped };
}

/** Why no worker serves an agent now: none ever asked for its runs, none has lately, or they stopped. */
export type NoWorker = Extract<WorkerWait, { kind: 'none' | 'late' | 'stopped' }>;

/**
 * Why no worker serves `agentId` now (see `NoWorker`), by the rule the run's page, Retry and
 * the Agents page all go by; undefined while one does, or may (busy, at its cap).
 * @example noWorker('triage', agent.worker_seen_at, list.workers, Date.now()) // { kind: 'late', seenAt }
 */
export function noWorker(
  agentId: string,
  seenAt: string | null,
  workers: readonly Worker[] | undefined,
  now: number,
): NoWorker | undefined {
  const wait = workerWait(agentId, seenAt, workers, now);
  return wait.kind === 'none' || wait.kind === 'late' || wait.kind === 'stopped' ? wait : undefined;
}

/**
 * The agents of `runs` that no worker serves now (none ever asked for their runs, or none
 * has lately): a retry of their runs waits queued until one does. Empty while the agents are
 * not read.
 * @example agentsWithoutWorker(plan.retry, agents, workers, Date.now()) // ['code-reviewer']
 */
export function agentsWithoutWorker(
  runs: readonly Run[],
  agents: readonly Pick<Agent, 'id' | 'worker_seen_at'>[] | undefined,
  workers: readonly Worker[] | undefined,
  now: number,
): string[] {
  if (!agents) return [];
  const seen = new Map(agents.map((a) => [a.id, a.worker_seen_at]));
  return [...new Set(runs.map((r) => r.agent_id))].filter(
    (id) => noWorker(id, seen.get(id) ?? null, workers, now) !== undefined,
  );
}

/**
 * The agents of `runs` that are paused (`paused_at`): no worker is handed their runs, so a
 * retry of one waits queued until its agent is resumed. Empty while the agents are not read.
 * @example pausedAgents(plan.retry, agents) // ['code-reviewer']
 */
export function pausedAgents(
  runs: readonly Run[],
  agents: readonly Pick<Agent, 'id' | 'paused_at'>[] | undefined,
): string[] {
  if (!agents) return [];
  const paused = new Set(agents.filter((a) => a.paused_at !== null).map((a) => a.id));
  return [...new Set(runs.map((r) => r.agent_id))].filter((id) => paused.has(id));
}

/**
 * An agent over its budget: the runs it started in the last 24 hours cost `spentUsd`, at or
 * over its `max_cost_usd_24h` (`capUsd`), so no worker is handed its queued runs.
 */
export type OverBudget = { agentId: string } & Omit<
  Extract<WorkerWait, { kind: 'budget' }>,
  'kind'
>;

/** What an agent's budget is judged by: its pause, its budget and its 24 h cost. */
export type BudgetedAgent = Pick<AgentSummary, 'id' | 'paused_at' | 'max_cost_usd_24h'> & {
  counts_24h: Pick<AgentSummary['counts_24h'], 'cost_usd'>;
};

/**
 * The agents of `runs` that are over their budget: no worker is handed their runs, so a retry
 * of one waits queued until their 24 h cost falls below the budget or it is raised. A paused
 * agent is left out (`pausedAgents` names it): `workerWait` says paused first, and the pause
 * is what the user did on purpose. Empty while the agents are not read.
 * @example overBudgetAgents(plan.retry, agents) // [{ agentId: 'code-reviewer', spentUsd: 0.06, capUsd: 0.05 }]
 */
export function overBudgetAgents(
  runs: readonly Run[],
  agents: readonly BudgetedAgent[] | undefined,
): OverBudget[] {
  if (!agents) return [];
  const byId = new Map(agents.map((a) => [a.id, a]));
  return [...new Set(runs.map((r) => r.agent_id))].flatMap((id) => {
    const agent = byId.get(id);
    if (!agent) return [];
    // the rule the run's page goes by; who last asked for runs, and when, plays no part in it
    const wait = workerWait(id, null, undefined, 0, {
      pausedAt: agent.paused_at,
      budget: agentBudget(agent),
    });
    return wait.kind === 'budget'
      ? [{ agentId: id, spentUsd: wait.spentUsd, capUsd: wait.capUsd }]
      : [];
  });
}

/**
 * An agent's 24 h cost against its budget, as the notes of an agent over it say it.
 * @example overBudgetText({ spentUsd: 0.06, capUsd: 0.05 }) // '$0.06 of $0.05 in the last 24 hours'
 */
export function overBudgetText({
  spentUsd,
  capUsd,
}: Pick<OverBudget, 'spentUsd' | 'capUsd'>): string {
  return `${formatCost(spentUsd)} of ${formatUsdLimit(capUsd)} in the last 24 hours`;
}
