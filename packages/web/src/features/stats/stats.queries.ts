import { keepPreviousData, queryOptions } from '@tanstack/react-query';
import type { StatsResponse } from '@runlog/core';
import { api } from '../../lib/api';

export const RANGES = {
  '24h': { label: 'Last 24 hours', ms: 86_400_000, bucket: 'hour' },
  '7d': { label: 'Last 7 days', ms: 7 * 86_400_000, bucket: 'day' },
  '30d': { label: 'Last 30 days', ms: 30 * 86_400_000, bucket: 'day' },
} as const;
export type RangeKey = keyof typeof RANGES;

export const statsQuery = (agentId: string, range: RangeKey) =>
  queryOptions({
    queryKey: ['stats', agentId, range] as const,
    queryFn: ({ signal }) => {
      const r = RANGES[range];
      // from the start of the bucket holding "7 days ago": the totals cover the whole range
      // (a bucket is the rollups' grain), where starting at the next bucket left up to a
      // bucket's worth of runs out of "Last 7 days"
      const unit = r.bucket === 'hour' ? 3_600_000 : 86_400_000;
      const to = Date.now();
      const from = Math.floor((to - r.ms) / unit) * unit;
      return api<StatsResponse>('GET', '/runs/stats', {
        query: { agent_id: agentId || undefined, from, to, bucket: r.bucket },
        signal,
      });
    },
    placeholderData: keepPreviousData,
    refetchInterval: 60_000,
  });
