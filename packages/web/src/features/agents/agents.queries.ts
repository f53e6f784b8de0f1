import { queryOptions } from '@tanstack/react-query';
import type { AgentSummary, Run, RunList } from '@runlog/core';
import { api } from '../../lib/api';
import { AGENT_RUNS_LIMIT } from '../runs/runs.cache';

export const agentsKey = ['agents'] as const;
export const agentRunsKey = (agentId: string) => ['agents', agentId, 'runs'] as const;

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

export const enqueueRun = (agentId: string, input: unknown) =>
  api<Run>('POST', `/agents/${encodeURIComponent(agentId)}/runs`, {
    body: { ...(input !== undefined ? { input } : {}), trigger: 'manual', source: 'dashboard' },
  });
