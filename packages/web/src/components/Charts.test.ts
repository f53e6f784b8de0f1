import { describe, expect, it } from 'vitest';
import { axisTicks, bucketLabel, durationTick, isolated } from './Charts';

describe('axisTicks', () => {
  it('counts in whole 1, 2 or 5 times a power of ten steps', () => {
    expect(axisTicks(5, 'count')).toEqual([0, 2, 4, 6]);
    expect(axisTicks(3, 'count')).toEqual([0, 1, 2, 3]);
    expect(axisTicks(1, 'count')).toEqual([0, 1]);
    expect(axisTicks(0, 'count')).toEqual([0, 1]);
    expect(axisTicks(170, 'count')).toEqual([0, 50, 100, 150, 200]);
  });

  it('steps decimals without float noise', () => {
    expect(axisTicks(0.33, 'decimal')).toEqual([0, 0.1, 0.2, 0.3, 0.4]);
    expect(axisTicks(1, 'decimal')).toEqual([0, 0.5, 1]);
  });

  it('steps durations at clock-round values', () => {
    const s = 1000;
    expect(axisTicks(500 * s, 'duration')).toEqual([0, 300 * s, 600 * s]);
    expect(axisTicks(95 * s, 'duration')).toEqual([0, 30 * s, 60 * s, 90 * s, 120 * s]);
    expect(axisTicks(1800, 'duration')).toEqual([0, 500, 1000, 1500, 2000]);
  });
});

describe('durationTick', () => {
  it('names round durations short enough to fit beside the axis', () => {
    const m = 60_000;
    const h = 60 * m;
    expect(
      [0, 500, 30_000, 10 * m, 90 * m, 6 * h, 24 * h, 36 * h, 48 * h, 60 * h].map(durationTick),
    ).toEqual([
      '0 ms',
      '500 ms',
      '30 s',
      '10 m',
      '1 h 30 m',
      '6 h',
      '24 h',
      '36 h',
      '2 d',
      '2 d 12 h',
    ]);
    expect(durationTick(90_000)).toBe('1 m 30 s');
  });
});

describe('isolated', () => {
  it('is a point with no data on either side', () => {
    expect(isolated([null, 3, null], 1)).toBe(true);
    expect(isolated([3], 0)).toBe(true);
    expect(isolated([3, 4, null], 1)).toBe(false);
  });
});

describe('bucketLabel', () => {
  it("names a day bucket by its date in the viewer's time zone, whose days the page asks for", () => {
    const tz = process.env.TZ;
    process.env.TZ = 'America/Los_Angeles';
    try {
      // Los Angeles' 4 December starts at 08:00 UTC; midnight UTC is still the 3rd there
      expect(bucketLabel('2026-12-04T08:00:00.000Z', 'day')).toMatch(/\b4\b/);
      expect(bucketLabel('2026-12-04T08:00:00.000Z', 'day', true)).toMatch(/\b4\b/);
      expect(bucketLabel('2026-12-04T08:00:00.000Z', 'day', true)).not.toContain('UTC');
      expect(bucketLabel('2026-12-04T00:00:00.000Z', 'day')).toMatch(/\b3\b/);
    } finally {
      if (tz === undefined) delete process.env.TZ;
      else process.env.TZ = tz;
    }
  });
});
