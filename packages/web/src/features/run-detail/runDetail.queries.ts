import { queryOptions } from '@tanstack/react-query';
import type { RunWithSteps } from '@runlog/core';
import { api } from '../../lib/api';

export const runDetailKey = (runId: string) => ['runs', 'detail', runId] as const;

/** A run with its steps, kept current by `run:<id>` updates. */
export const runDetailQuery = (runId: string) =>
  queryOptions({
    queryKey: runDetailKey(runId),
    queryFn: ({ signal }) =>
      api<RunWithSteps>('GET', `/runs/${encodeURIComponent(runId)}`, {
        query: { include: 'steps' },
        signal,
      }),
  });
