import { queryOptions } from '@tanstack/react-query';
import type { RunWithSteps, StepList } from '@runlog/core';
import { api } from '../../lib/api';
import { applyStepUpdates } from './steps.cache';

export const runDetailKey = (runId: string) => ['runs', 'detail', runId] as const;

/**
 * A run with all its steps, kept current by `run:<id>` updates. The server answers the
 * first 1,000 steps inline; a longer run's others come a page at a time after them. On the
 * first load the page shows as soon as the first steps are in, the others joining as they
 * come (folded into the cache, so live updates meanwhile are kept); a refetch keeps showing
 * what it had until it has them all.
 */
export const runDetailQuery = (runId: string) =>
  queryOptions({
    queryKey: runDetailKey(runId),
    queryFn: async ({ signal, client, queryKey }) => {
      const path = `/runs/${encodeURIComponent(runId)}`;
      const { steps_next_cursor: more, ...run } = await api<RunWithSteps>('GET', path, {
        query: { include: 'steps' },
        signal,
      });
      const progressive = more !== undefined && client.getQueryData(queryKey) === undefined;
      if (progressive) client.setQueryData<RunWithSteps>(queryKey, run);
      for (let cursor = more; cursor !== undefined;) {
        const page = await api<StepList>('GET', `${path}/steps`, { query: { cursor }, signal });
        if (progressive)
          client.setQueryData<RunWithSteps>(queryKey, (d) =>
            d ? { ...d, steps: applyStepUpdates(d.steps, page.steps) } : d,
          );
        else run.steps.push(...page.steps);
        cursor = page.next_cursor ?? undefined;
      }
      return (progressive && client.getQueryData<RunWithSteps>(queryKey)) || run;
    },
  });
