import {
  RETRY_POLICY_TRIGGER,
  isTerminalStatus,
  isTruncatedJson,
  newId,
  retryDelayMs,
  type RunStatus,
} from '@runlog/core';
import type { Kysely } from 'kysely';
import { decodeRetryPolicy } from '../agents/agents.mapper.js';
import type { Database, RunRow } from '../db/schema.js';
import { newRunRow } from '../ingest/apply.js';

/** The most an automatic retry's delay is lengthened at random, as a share of it. */
export const JITTER = 0.2;

/** The error type a run ended by one of its agent's limits carries (`budgetVerdict`). */
export const BUDGET_EXCEEDED = 'BudgetExceeded';

/** The `type` of a run's stored error (its JSON text), if it has one. */
export function errorType(error: string | null): unknown {
  if (error === null) return undefined;
  try {
    return (JSON.parse(error) as { type?: unknown } | null)?.type;
  } catch {
    return undefined;
  }
}

/**
 * Whether this change of a run is one an agent's retry policy answers: a run a worker
 * executed (`worker_id`) that has just failed or timed out. Not a run someone stopped (even
 * one whose handler then threw), nor one ended by its agent's cost, token or step limit: its
 * retry would spend as much again. A run recorded as it ran (the SDK's `runlog.run`, the
 * REST API) is not the queue's: a retry of it would wait for a worker that may not exist.
 */
export function endedForRetry(before: RunRow | undefined, current: RunRow | undefined): boolean {
  if (!before || !current) return false;
  if (current.status !== 'failed' && current.status !== 'timed_out') return false;
  if (isTerminalStatus(before.status as RunStatus)) return false;
  if (current.worker_id === null || current.cancel_requested_at !== null) return false;
  return errorType(current.error) !== BUDGET_EXCEEDED;
}

/**
 * The retries the agents' policies queue for `ended` (runs `endedForRetry` took), read in the
 * write path's transaction: one new queued run per run whose agent has a policy with
 * attempts left, waiting its delay (`queued_at` ahead: claims take no run before it). The
 * retry is the run again: same agent, input, thread, user, tags and metadata, `retry_of` it
 * and `attempt + 1`, as `POST /runs/:id/retry` makes it. A run whose input was stored
 * truncated is not retried: its worker would run on the preview.
 */
export async function policyRetries(
  trx: Kysely<Database>,
  ended: readonly RunRow[],
  now: number,
): Promise<RunRow[]> {
  const byProject = new Map<string, Set<string>>();
  for (const run of ended) {
    const agents = byProject.get(run.project_id) ?? new Set<string>();
    agents.add(run.agent_id);
    byProject.set(run.project_id, agents);
  }
  const agents = new Map<string, { policy: string; timeout_ms: number | null }>();
  for (const [projectId, ids] of byProject) {
    const rows = await trx
      .selectFrom('agents')
      .select(['id', 'retry_policy', 'timeout_ms'])
      .where('project_id', '=', projectId)
      .where('id', 'in', [...ids])
      .where('retry_policy', 'is not', null)
      .execute();
    for (const r of rows)
      agents.set(`${projectId}\u0000${r.id}`, {
        policy: r.retry_policy!,
        timeout_ms: r.timeout_ms,
      });
  }
  const retries: RunRow[] = [];
  for (const run of ended) {
    const agent = agents.get(`${run.project_id}\u0000${run.agent_id}`);
    const policy = agent && decodeRetryPolicy(agent.policy);
    if (!policy || run.attempt >= policy.max_attempts) continue;
    if (run.input !== null && isTruncatedJson(JSON.parse(run.input))) continue;
    // up to a fifth more, at random: runs that failed together (an upstream's outage) do not
    // all come back in the same second, and none comes back sooner than its policy says
    const delay = retryDelayMs(policy, run.attempt);
    const at = now + delay + Math.floor(Math.random() * delay * JITTER);
    const timeout = agent.timeout_ms === null ? null : Number(agent.timeout_ms);
    retries.push({
      ...newRunRow(run.project_id, newId(), now),
      agent_id: run.agent_id,
      status: 'queued',
      trigger: 'retry',
      source: run.source,
      triggered_by: RETRY_POLICY_TRIGGER,
      user_id: run.user_id,
      thread_id: run.thread_id,
      parent_run_id: run.parent_run_id,
      retry_of: run.id,
      attempt: run.attempt + 1,
      // as stored: within the limits already, and the same text the worker read
      input: run.input,
      tags: run.tags,
      metadata: run.metadata,
      queued_at: at,
      sort_at: at,
      // a queued run's wait for a worker counts from when it may be taken
      deadline_at: timeout ? at + timeout : null,
    });
  }
  return retries;
}
