import { describe, expect, it } from 'vitest';
import { lastBucketsFrom } from './time.js';

describe('lastBucketsFrom', () => {
  const now = Date.parse('2026-12-04T15:42:00.000Z');
  const iso = (ms: number) => new Date(ms).toISOString();

  it('covers the last N whole buckets, the current one the last', () => {
    // seven day bars, today the seventh: Nov 28 .. Dec 4
    expect(iso(lastBucketsFrom(7, 'day', now))).toBe('2026-11-28T00:00:00.000Z');
    expect(iso(lastBucketsFrom(30, 'day', now))).toBe('2026-11-05T00:00:00.000Z');
    expect(iso(lastBucketsFrom(1, 'day', now))).toBe('2026-12-04T00:00:00.000Z');
    // twenty-four hour bars, this hour the last
    expect(iso(lastBucketsFrom(24, 'hour', now))).toBe('2026-12-03T16:00:00.000Z');
  });
});
