import { describe, expect, it } from 'vitest';
import type { Agent, AgentSummary } from '@runlog/core';
import { agentFixture, runFixture } from '../../../../core/test/fixtures';
import { applyAgentToSummaries } from './agents.queries';

const T0 = '2026-12-06T10:00:00.000Z';

const agent = (id: string, over: Partial<Agent> = {}): Agent =>
  agentFixture({
    id,
    schedule: { cron: '0 9 * * *', timezone: 'UTC', paused: false },
    next_run_at: '2026-12-07T09:00:00.000Z',
    created_at: T0,
    updated_at: T0,
    ...over,
  });

const summary = (id: string): AgentSummary => ({
  ...agent(id),
  latest_run: runFixture({ id: `${id}-1`, agent_id: id, status: 'queued' }),
  last_error: null,
  counts_24h: {
    runs: 3,
    succeeded: 2,
    failed: 0,
    failed_not_retried: 0,
    running: 1,
    fail_rate: 0,
    total_tokens: 10,
    cost_usd: 0.01,
  },
});

describe('applyAgentToSummaries', () => {
  it("folds an agent's pause and resume (agent_update, a PUT's answer) into the list", () => {
    const list = [summary('triager'), summary('reviewer')];
    const pausedAt = '2026-12-06T11:00:00.000Z';
    const paused = applyAgentToSummaries(
      list,
      agent('triager', { paused_at: pausedAt, next_run_at: null }),
    );
    expect(paused[0]).toMatchObject({ paused_at: pausedAt, next_run_at: null });
    // its runs and counts are the list's own: the update carries none
    expect(paused[0]?.counts_24h).toBe(list[0]?.counts_24h);
    expect(paused[0]?.latest_run).toBe(list[0]?.latest_run);
    expect(paused[1]).toBe(list[1]);

    const resumed = applyAgentToSummaries(paused, agent('triager'));
    expect(resumed[0]).toMatchObject({ paused_at: null, next_run_at: '2026-12-07T09:00:00.000Z' });
  });
});
