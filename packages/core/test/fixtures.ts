/**
 * API objects for tests: every field at its empty value, then the test's own. One place, so a
 * new field of `Run`, `Step` or `Agent` is added to every test's fixtures at once.
 */
import type { Agent, AgentSummary, Run, Step } from '../src/schemas.js';

const EPOCH = '2026-01-01T00:00:00.000Z';

/** @example runFixture({ id: 'r1', status: 'failed' }) */
export function runFixture(over: Partial<Run> = {}): Run {
  return {
    id: 'r1',
    project_id: 'default',
    agent_id: 'agent',
    status: 'running',
    trigger: 'api',
    source: null,
    triggered_by: null,
    user_id: null,
    thread_id: null,
    parent_run_id: null,
    retry_of: null,
    attempt: 1,
    input: null,
    output: null,
    error: null,
    model: null,
    tags: [],
    metadata: {},
    queued_at: null,
    started_at: null,
    ended_at: null,
    duration_ms: null,
    cancel_requested_at: null,
    lease_expires_at: null,
    step_count: 0,
    error_count: 0,
    llm_calls: 0,
    tool_calls: 0,
    input_tokens: 0,
    output_tokens: 0,
    total_tokens: 0,
    cost_usd: 0,
    scores: {},
    created_at: EPOCH,
    updated_at: EPOCH,
    ...over,
  };
}

/** @example stepFixture({ id: 's1', parent_step_id: 's0' }) */
export function stepFixture(over: Partial<Step> = {}): Step {
  return {
    id: 's1',
    run_id: 'r1',
    parent_step_id: null,
    seq: 0,
    type: 'llm',
    name: null,
    status: 'succeeded',
    started_at: null,
    ended_at: null,
    duration_ms: null,
    input: null,
    output: null,
    error: null,
    model: null,
    provider: null,
    input_tokens: null,
    output_tokens: null,
    cached_input_tokens: null,
    reasoning_tokens: null,
    cost_usd: null,
    first_token_at: null,
    time_to_first_token_ms: null,
    metadata: {},
    ...over,
  };
}

/** @example agentFixture({ id: 'triager', paused_at: '2026-01-01T00:00:00.000Z' }) */
export function agentFixture(over: Partial<Agent> = {}): Agent {
  const id = over.id ?? 'triager';
  return {
    id,
    project_id: 'default',
    name: id,
    description: null,
    schedule: null,
    timeout_ms: null,
    max_cost_usd: null,
    max_tokens: null,
    max_steps: null,
    retry: null,
    max_concurrency: null,
    max_concurrency_per_thread: null,
    max_cost_usd_24h: null,
    over_budget_since: null,
    paused_at: null,
    metadata: {},
    next_run_at: null,
    worker_seen_at: null,
    created_at: EPOCH,
    updated_at: EPOCH,
    ...over,
  };
}

/** An agent as `GET /agents` lists it: no run, no error, no counts, unless `over` says. */
export function agentSummaryFixture(over: Partial<AgentSummary> = {}): AgentSummary {
  return {
    ...agentFixture(over),
    latest_run: null,
    last_error: null,
    counts_24h: {
      runs: 0,
      succeeded: 0,
      failed: 0,
      failed_not_retried: 0,
      running: 0,
      fail_rate: null,
      total_tokens: 0,
      cost_usd: 0,
    },
    ...over,
  };
}
