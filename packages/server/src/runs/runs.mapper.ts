import {
  nanosToUsd,
  toIso,
  type Run,
  type RunError,
  type Step,
  type StepStatus,
  type StepType,
  type RunStatus,
  type RunTrigger,
} from '@runlog/core';
import type { StepRow } from '../db/schema.js';
import type { ListedRunRow } from '../db/payloads.js';

/** Parses a stored JSON text column; `null` stays `null`. */
export function fromJson(text: string | null): unknown {
  if (text === null) return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** A stored JSON object column; anything else (never written so) reads as `{}`. */
export function objectOr(text: string): Record<string, unknown> {
  const value = fromJson(text);
  return value && typeof value === 'object' && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};
}

/** The one mapping from a stored run row to the API's `Run`. */
export function toRun(row: ListedRunRow): Run {
  return {
    id: row.id,
    project_id: row.project_id,
    agent_id: row.agent_id,
    status: row.status as RunStatus,
    trigger: row.trigger as RunTrigger,
    source: row.source,
    triggered_by: row.triggered_by,
    user_id: row.user_id,
    thread_id: row.thread_id,
    parent_run_id: row.parent_run_id,
    retry_of: row.retry_of,
    attempt: row.attempt,
    input: fromJson(row.input),
    output: fromJson(row.output),
    error: fromJson(row.error) as RunError | null,
    model: row.model,
    tags: (fromJson(row.tags) as string[] | null) ?? [],
    metadata: objectOr(row.metadata),
    queued_at: toIso(row.queued_at),
    started_at: toIso(row.started_at),
    ended_at: toIso(row.ended_at),
    duration_ms: row.duration_ms,
    cancel_requested_at: toIso(row.cancel_requested_at),
    lease_expires_at: toIso(row.lease_expires_at),
    step_count: row.step_count,
    error_count: row.error_count,
    llm_calls: row.llm_calls,
    tool_calls: row.tool_calls,
    input_tokens: row.input_tokens,
    output_tokens: row.output_tokens,
    total_tokens: row.input_tokens + row.output_tokens,
    cost_usd: nanosToUsd(row.cost_nanos),
    scores: objectOr(row.scores) as Run['scores'],
    created_at: toIso(row.created_at),
    updated_at: toIso(row.updated_at),
  };
}

/** The one mapping from a stored step row to the API's `Step`. */
export function toStep(row: StepRow): Step {
  return {
    id: row.id,
    run_id: row.run_id,
    parent_step_id: row.parent_step_id,
    seq: row.seq,
    type: row.type as StepType,
    name: row.name,
    status: row.status as StepStatus,
    started_at: toIso(row.started_at),
    ended_at: toIso(row.ended_at),
    duration_ms: row.duration_ms,
    input: fromJson(row.input),
    output: fromJson(row.output),
    error: fromJson(row.error) as RunError | null,
    model: row.model,
    provider: row.provider,
    input_tokens: row.input_tokens,
    output_tokens: row.output_tokens,
    cached_input_tokens: row.cached_input_tokens,
    reasoning_tokens: row.reasoning_tokens,
    cost_usd: row.cost_nanos === null ? null : nanosToUsd(row.cost_nanos),
    first_token_at: toIso(row.first_token_at),
    time_to_first_token_ms:
      row.first_token_at !== null && row.started_at !== null
        ? Math.max(0, row.first_token_at - row.started_at)
        : null,
    metadata: objectOr(row.metadata),
  };
}

/** A stored error's message. */
export function errorMessage(text: string | null): string | null {
  if (text === null) return null;
  try {
    const error = JSON.parse(text) as { message?: unknown };
    return typeof error.message === 'string' ? error.message : null;
  } catch {
    return null;
  }
}
