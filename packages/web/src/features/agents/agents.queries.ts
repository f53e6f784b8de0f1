import { queryOptions } from '@tanstack/react-query';
import type { Agent, AgentSummary, AgentUpsertBody, Run, RunList } from '@runlog/core';
import { api } from '../../lib/api';
import { AGENT_RUNS_LIMIT } from '../runs/runs.cache';

export const agentsKey = ['agents'] as const;
export const agentRunsKey = (agentId: string) => ['agents', agentId, 'runs'] as const;

/** Where an agent's runs and controls are: the Agents page with the agent open. */
export const agentPath = (agentId: string) => `/?agent=${encodeURIComponent(agentId)}`;

export const agentsQuery = () =>
  queryOptions({
    queryKey: agentsKey,
    queryFn: ({ signal }) =>
      api<{ agents: AgentSummary[] }>('GET', '/agents', { signal }).then((r) => r.agents),
  });

/** An agent's 20 most recent runs, kept current by `agent:<id>` updates. */
export const agentRunsQuery = (agentId: string) =>
  queryOptions({
    queryKey: agentRunsKey(agentId),
    queryFn: ({ signal }) =>
      api<RunList>('GET', `/agents/${encodeURIComponent(agentId)}/runs`, {
        query: { limit: AGENT_RUNS_LIMIT },
        signal,
      }),
  });

/**
 * How many runs of an agent wait queued now (those queued for later too): what pausing it
 * holds back. `capped`: the count stopped at its cap, a lower bound.
 */
export const agentQueuedQuery = (agentId: string) =>
  queryOptions({
    queryKey: ['runs', 'agent-queued', agentId] as const,
    queryFn: ({ signal }) =>
      api<RunList>('GET', '/runs', {
        query: { agent_id: agentId, status: 'queued', limit: 1 },
        signal,
      }).then((list) => ({ total: list.total, capped: list.total_capped === true })),
  });

export const enqueueRun = (agentId: string, input: unknown, runAt?: string) =>
  api<Run>('POST', `/agents/${encodeURIComponent(agentId)}/runs`, {
    body: {
      ...(input !== undefined ? { input } : {}),
      ...(runAt !== undefined ? { run_at: runAt } : {}),
      trigger: 'manual',
      source: 'dashboard',
    },
  });

/** Changes the settings `body` gives (absent ones keep their value, null clears one). */
export const putAgent = (agentId: string, body: AgentUpsertBody) =>
  api<Agent>('PUT', `/agents/${encodeURIComponent(agentId)}`, { body });

/** The agents list with `agent`'s new settings; its runs and counts stay as they were. */
export function applyAgentToSummaries(
  agents: readonly AgentSummary[],
  agent: Agent,
): AgentSummary[] {
  return agents.map((a) => (a.id === agent.id ? { ...a, ...agent } : a));
}
