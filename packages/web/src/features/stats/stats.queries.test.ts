import { describe, expect, it } from 'vitest';
import { RANGES, rangeFrom } from './stats.queries';

describe('rangeFrom', () => {
  const now = Date.parse('2026-12-04T15:42:00.000Z');
  const iso = (ms: number) => new Date(ms).toISOString();

  it('covers the last N whole buckets, the current one the last, as the CLI does', () => {
    // seven day bars, today the seventh: Nov 28 .. Dec 4
    expect(iso(rangeFrom(RANGES['7d'], now))).toBe('2026-11-28T00:00:00.000Z');
    expect(iso(rangeFrom(RANGES['30d'], now))).toBe('2026-11-05T00:00:00.000Z');
    // twenty-four hour bars, this hour the last
    expect(iso(rangeFrom(RANGES['24h'], now))).toBe('2026-12-03T16:00:00.000Z');
  });
});
