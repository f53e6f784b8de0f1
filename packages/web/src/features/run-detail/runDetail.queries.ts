import { queryOptions } from '@tanstack/react-query';
import type { RunWithSteps, StepList } from '@runlog/core';
import { api } from '../../lib/api';

export const runDetailKey = (runId: string) => ['runs', 'detail', runId] as const;

/**
 * A run with all its steps, kept current by `run:<id>` updates. The server answers the
 * first 1,000 steps inline; a longer run's others come a page at a time after them.
 */
export const runDetailQuery = (runId: string) =>
  queryOptions({
    queryKey: runDetailKey(runId),
    queryFn: async ({ signal }) => {
      const path = `/runs/${encodeURIComponent(runId)}`;
      const { steps_next_cursor: more, ...run } = await api<RunWithSteps>('GET', path, {
        query: { include: 'steps' },
        signal,
      });
      for (let cursor = more; cursor !== undefined;) {
        const page = await api<StepList>('GET', `${path}/steps`, { query: { cursor }, signal });
        run.steps.push(...page.steps);
        cursor = page.next_cursor ?? undefined;
      }
      return run;
    },
  });
