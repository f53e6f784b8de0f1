import { keepPreviousData, queryOptions } from '@tanstack/react-query';
import type { StatsResponse } from '@runlog/core';
import { api } from '../../lib/api';

export const RANGES = {
  '24h': { label: 'Last 24 hours', buckets: 24, bucket: 'hour' },
  '7d': { label: 'Last 7 days', buckets: 7, bucket: 'day' },
  '30d': { label: 'Last 30 days', buckets: 30, bucket: 'day' },
} as const;

/**
 * The start of a range: its last `buckets` whole buckets, the one now is in included (7 day
 * bars for "Last 7 days", today the last), as the CLI's `stats --days 7` reads it.
 * @example rangeFrom(RANGES['7d'], Date.parse('2026-12-04T15:00:00Z')) // 2026-11-28T00:00Z
 */
export function rangeFrom(range: { buckets: number; bucket: 'hour' | 'day' }, now: number): number {
  const unit = range.bucket === 'hour' ? 3_600_000 : 86_400_000;
  return Math.floor(now / unit) * unit - (range.buckets - 1) * unit;
}
export type RangeKey = keyof typeof RANGES;

export const statsQuery = (agentId: string, range: RangeKey) =>
  queryOptions({
    queryKey: ['stats', agentId, range] as const,
    queryFn: ({ signal }) => {
      const r = RANGES[range];
      const to = Date.now();
      const from = rangeFrom(r, to);
      return api<StatsResponse>('GET', '/runs/stats', {
        query: { agent_id: agentId || undefined, from, to, bucket: r.bucket },
        signal,
      });
    },
    placeholderData: keepPreviousData,
    refetchInterval: 60_000,
  });
