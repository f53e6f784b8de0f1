import { queryOptions } from '@tanstack/react-query';
import type { Run, RunList, RunWithSteps, StepList } from '@runlog/core';
import { api } from '../../lib/api';
import { applyStepUpdates } from './steps.cache';

export const runDetailKey = (runId: string) => ['runs', 'detail', runId] as const;
/**
 * A run with only the steps the server answers inline: under the run's detail key, so the
 * updates that keep the run's page current (`setQueriesData` on `runDetailKey`) reach it too.
 */
export const runHeadKey = (runId: string) => [...runDetailKey(runId), 'head'] as const;

/** How many of the runs nested in a run its page lists; the others are on the Runs page. */
export const SUB_RUNS_LIMIT = 50;
export const subRunsKey = (runId: string) => ['runs', 'children', runId] as const;

/**
 * The runs nested in a run (its sub-agents), newest first. `foldRun` keeps the ones it hears
 * of current; the run's page asks again when the run itself changes (see SubRuns).
 */
export const subRunsQuery = (runId: string) =>
  queryOptions({
    queryKey: subRunsKey(runId),
    queryFn: ({ signal }) =>
      api<RunList>('GET', '/runs', {
        query: { parent_run_id: runId, limit: SUB_RUNS_LIMIT },
        signal,
      }),
    staleTime: 5000,
  });

/** One run without its steps: enough to link to it (a sub-run's parent) and name its agent. */
export const runQuery = (runId: string) =>
  queryOptions({
    queryKey: ['runs', 'one', runId] as const,
    queryFn: ({ signal }) => api<Run>('GET', `/runs/${encodeURIComponent(runId)}`, { signal }),
  });

/**
 * A run with its first steps (the first 1,000, which the server answers inline) and not the
 * others: for a view that shows a run's first steps only (Compare), which must not read all
 * of a run with tens of thousands of steps, page by page, to show a few hundred.
 */
export const runHeadQuery = (runId: string) =>
  queryOptions({
    queryKey: runHeadKey(runId),
    queryFn: async ({ signal }) => {
      const { steps_next_cursor: _more, ...run } = await api<RunWithSteps>(
        'GET',
        `/runs/${encodeURIComponent(runId)}`,
        { query: { include: 'steps' }, signal },
      );
      return run;
    },
  });

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
