import { keepPreviousData, queryOptions } from '@tanstack/react-query';
import { lastBucketsFrom, systemZone, type StatsResponse } from '@runlog/core';
import { api } from '../../lib/api';

export const RANGES = {
  '24h': { label: 'Last 24 hours', buckets: 24, bucket: 'hour' },
  '7d': { label: 'Last 7 days', buckets: 7, bucket: 'day' },
  '30d': { label: 'Last 30 days', buckets: 30, bucket: 'day' },
} as const;

export type RangeKey = keyof typeof RANGES;

/** The zone whose days the Stats page shows: the browser's. */
export const statsZone = (): string => systemZone();

export const statsQuery = (agentId: string, range: RangeKey) =>
  queryOptions({
    queryKey: ['stats', agentId, range, statsZone()] as const,
    queryFn: ({ signal }) => {
      const r = RANGES[range];
      const to = Date.now();
      const tz = statsZone();
      // the last N whole buckets, the current one the last, as the CLI's --days reads them:
      // days are the viewer's own, from local midnight (hours are the same everywhere)
      const from = lastBucketsFrom(r.buckets, r.bucket, to, tz);
      return api<StatsResponse>('GET', '/runs/stats', {
        query: { agent_id: agentId || undefined, from, to, bucket: r.bucket, tz },
        signal,
      });
    },
    placeholderData: keepPreviousData,
    refetchInterval: 60_000,
  });
