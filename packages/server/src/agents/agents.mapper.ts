import {
  RetryPolicy,
  nanosToUsd,
  toIso,
  usdToNanos,
  type Agent,
  type AgentUpsertBody,
} from '@runlog/core';
import type { AgentRow } from '../db/schema.js';
import { fromJson } from '../runs/runs.mapper.js';

/** The one mapping from a stored agent row to the API's `Agent`. */
export function toAgent(row: AgentRow): Agent {
  const metadata = fromJson(row.metadata);
  return {
    id: row.id,
    project_id: row.project_id,
    name: row.name,
    description: row.description,
    schedule:
      row.schedule_cron !== null
        ? {
            cron: row.schedule_cron,
            timezone: row.schedule_tz ?? 'UTC',
            paused: Number(row.schedule_paused) === 1,
          }
        : null,
    timeout_ms: row.timeout_ms,
    max_cost_usd: row.max_cost_nanos === null ? null : nanosToUsd(Number(row.max_cost_nanos)),
    max_tokens: row.max_tokens === null ? null : Number(row.max_tokens),
    max_steps: row.max_steps === null ? null : Number(row.max_steps),
    retry: decodeRetryPolicy(row.retry_policy),
    max_concurrency: row.max_concurrency === null ? null : Number(row.max_concurrency),
    max_concurrency_per_thread:
      row.max_concurrency_per_thread === null ? null : Number(row.max_concurrency_per_thread),
    max_cost_usd_24h:
      row.max_cost_nanos_24h === null ? null : nanosToUsd(Number(row.max_cost_nanos_24h)),
    over_budget_since: toIso(row.over_budget_at),
    paused_at: toIso(row.paused_at),
    metadata:
      metadata && typeof metadata === 'object' && !Array.isArray(metadata)
        ? (metadata as Record<string, unknown>)
        : {},
    // the slot the scheduler will queue next (past, after downtime, until it catches up);
    // none while it or the agent is paused: the slot stored then is not one that will run
    next_run_at:
      row.schedule_cron !== null &&
      Number(row.schedule_paused) !== 1 &&
      row.paused_at === null &&
      row.schedule_next_at !== null
        ? toIso(row.schedule_next_at)
        : null,
    worker_seen_at: toIso(row.worker_seen_at),
    created_at: toIso(row.created_at),
    updated_at: toIso(row.updated_at),
  };
}

type LimitColumns = Partial<
  Pick<AgentRow, 'max_cost_nanos' | 'max_tokens' | 'max_steps' | 'max_cost_nanos_24h'>
>;

/** The limit columns an agent body sets: each field given, `null` clearing it. */
export function limitColumns(
  body: Pick<AgentUpsertBody, 'max_cost_usd' | 'max_tokens' | 'max_steps' | 'max_cost_usd_24h'>,
): LimitColumns {
  const columns: LimitColumns = {};
  const { max_cost_usd: cost, max_tokens: tokens, max_steps: steps } = body;
  const day = body.max_cost_usd_24h;
  // at least a nano-dollar: a limit never reads as "any cost at all"
  if (cost !== undefined)
    columns.max_cost_nanos = cost === null ? null : Math.max(1, usdToNanos(cost));
  if (tokens !== undefined) columns.max_tokens = tokens;
  if (steps !== undefined) columns.max_steps = steps;
  if (day !== undefined)
    columns.max_cost_nanos_24h = day === null ? null : Math.max(1, usdToNanos(day));
  return columns;
}

/** The `retry_policy` column of a policy; null for none. */
export function encodeRetryPolicy(policy: RetryPolicy | null): string | null {
  if (policy === null) return null;
  const { max_attempts, delay_ms, backoff } = policy;
  return JSON.stringify({ max_attempts, delay_ms, backoff });
}

/** An agent's retry policy from its column; null for none, or for a value it cannot read. */
export function decodeRetryPolicy(text: string | null): RetryPolicy | null {
  if (text === null) return null;
  const parsed = RetryPolicy.safeParse(fromJson(text));
  return parsed.success ? parsed.data : null;
}
