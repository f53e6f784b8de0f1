import { keepPreviousData, queryOptions } from '@tanstack/react-query';
import type { Run, RunList, RunStatus, RunTrigger } from '@runlog/core';
import { api } from '../../lib/api';
import type { RunFilters } from './runs.cache';

export const PAGE_SIZE = 50;

/** The Runs page's view as kept in the URL. */
export interface RunsView {
  agent: string[];
  status: RunStatus[];
  trigger: RunTrigger[];
  source: string;
  from: string; // datetime-local value, local time
  to: string;
  q: string;
  page: number;
}

export const runListKey = (view: RunsView) => ['runs', 'list', view] as const;

function localToMs(value: string): number | undefined {
  if (!value) return undefined;
  const ms = new Date(value).getTime();
  return Number.isNaN(ms) ? undefined : ms;
}

export function viewFilters(view: RunsView): RunFilters {
  return {
    agent_id: view.agent,
    status: view.status,
    trigger: view.trigger,
    source: view.source || undefined,
    from: localToMs(view.from),
    to: localToMs(view.to),
    q: view.q || undefined,
  };
}

export const runListQuery = (view: RunsView) =>
  queryOptions({
    queryKey: runListKey(view),
    queryFn: ({ signal }) => {
      const f = viewFilters(view);
      return api<RunList>('GET', '/runs', {
        query: {
          agent_id: f.agent_id?.join(','),
          status: f.status?.join(','),
          trigger: f.trigger?.join(','),
          source: f.source,
          from: f.from,
          to: f.to,
          q: f.q,
          limit: PAGE_SIZE,
          offset: view.page * PAGE_SIZE,
        },
        signal,
      });
    },
    placeholderData: keepPreviousData,
  });

/** The runs that retried `runId` (`seen`: the retries the agent's recent runs show, to refetch when one appears). */
export const retriesQuery = (runId: string, seen: string) =>
  queryOptions({
    queryKey: ['runs', 'retries', runId, seen] as const,
    queryFn: ({ signal }) =>
      api<RunList>('GET', '/runs', { query: { retry_of: runId, limit: 20 }, signal }),
    placeholderData: keepPreviousData,
  });

export const cancelRun = (runId: string) =>
  api<Run>('POST', `/runs/${encodeURIComponent(runId)}/cancel`);
export const retryRun = (runId: string) =>
  api<Run>('POST', `/runs/${encodeURIComponent(runId)}/retry`);
