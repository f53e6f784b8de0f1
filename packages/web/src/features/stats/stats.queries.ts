import { keepPreviousData, queryOptions } from '@tanstack/react-query';
import { lastBucketsFrom, type StatsResponse } from '@runlog/core';
import { api } from '../../lib/api';

export const RANGES = {
  '24h': { label: 'Last 24 hours', buckets: 24, bucket: 'hour' },
  '7d': { label: 'Last 7 days', buckets: 7, bucket: 'day' },
  '30d': { label: 'Last 30 days', buckets: 30, bucket: 'day' },
} as const;

export type RangeKey = keyof typeof RANGES;

export const statsQuery = (agentId: string, range: RangeKey) =>
  queryOptions({
    queryKey: ['stats', agentId, range] as const,
    queryFn: ({ signal }) => {
      const r = RANGES[range];
      const to = Date.now();
      // the last N whole buckets, the current one the last, as the CLI's --days reads them
      const from = lastBucketsFrom(r.buckets, r.bucket, to);
      return api<StatsResponse>('GET', '/runs/stats', {
        query: { agent_id: agentId || undefined, from, to, bucket: r.bucket },
        signal,
      });
    },
    placeholderData: keepPreviousData,
    refetchInterval: 60_000,
  });
