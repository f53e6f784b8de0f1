import { keepPreviousData, queryOptions } from '@tanstack/react-query';
import { lastBucketsFrom, systemZone, type StatsResponse } from '@runlog/core';
import { api, ApiError } from '../../lib/api';

export const RANGES = {
  '24h': { label: 'Last 24 hours', buckets: 24, bucket: 'hour' },
  '7d': { label: 'Last 7 days', buckets: 7, bucket: 'day' },
  '30d': { label: 'Last 30 days', buckets: 30, bucket: 'day' },
} as const;

export type RangeKey = keyof typeof RANGES;

/**
 * A browser zone the server refused (its time zone database does not have it, or the
 * browser's is unknown): the page then shows UTC days, and says so.
 */
let refusedZone: string | undefined;

/** The zone whose days the Stats page shows: the browser's, unless the server refused it. */
export const statsZone = (): string => {
  const zone = systemZone();
  return zone === refusedZone ? 'UTC' : zone;
};

/** The browser's zone when the server refused it (the page's days are UTC days then). */
export const refusedStatsZone = (): string | undefined =>
  refusedZone !== undefined && refusedZone === systemZone() ? refusedZone : undefined;

/** Whether an error is the server refusing the `tz` of a stats query. */
function refusesZone(err: unknown): boolean {
  return (
    err instanceof ApiError &&
    err.status === 400 &&
    (err.details ?? []).some((d) => (d as { field?: unknown } | null)?.field === 'query.tz')
  );
}

export const statsQuery = (agentId: string, range: RangeKey) =>
  queryOptions({
    queryKey: ['stats', agentId, range, statsZone()] as const,
    queryFn: async ({ signal }) => {
      const r = RANGES[range];
      const ask = (tz: string) => {
        const to = Date.now();
        // the last N whole buckets, the current one the last, as the CLI's --days reads them:
        // days are the viewer's own, from local midnight (hours are the same everywhere)
        const from = lastBucketsFrom(r.buckets, r.bucket, to, tz);
        return api<StatsResponse>('GET', '/runs/stats', {
          query: { agent_id: agentId || undefined, from, to, bucket: r.bucket, tz },
          signal,
        });
      };
      const tz = statsZone();
      try {
        return await ask(tz);
      } catch (err) {
        // a zone the browser names and the server does not know: UTC days, not no stats
        if (tz === 'UTC' || !refusesZone(err)) throw err;
        refusedZone = tz;
        return ask('UTC');
      }
    },
    placeholderData: keepPreviousData,
    refetchInterval: 60_000,
  });
