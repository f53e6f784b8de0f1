import { queryOptions } from '@tanstack/react-query';
import type { WorkerList } from '@runlog/core';
import { api } from '../../lib/api';

/**
 * The workers seen in the last 24 hours; asked again every 10 s while the page is open (whether
 * each is online), and at once when a run starts or ends (what each holds).
 */
export const workersQuery = () =>
  queryOptions({
    queryKey: ['workers'] as const,
    queryFn: ({ signal }) => api<WorkerList>('GET', '/workers', { signal }),
    refetchInterval: 10_000,
  });
