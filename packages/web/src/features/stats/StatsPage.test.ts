import { describe, expect, it } from 'vitest';
import { sinceText } from './StatsPage';

/** The text with the locale's narrow no-break space (before AM/PM) as a plain one. */
const since = (...args: Parameters<typeof sinceText>) => sinceText(...args).replace(/\s/g, ' ');

describe('sinceText', () => {
  const zone = 'America/Los_Angeles';
  const locale = 'en-US';

  it('names the day of a 24-hour range that starts yesterday, so it does not read as a time to come', () => {
    // 7:25 AM in Los Angeles: the last 24 whole hours start at 8:00 AM the day before
    const now = Date.parse('2026-12-07T15:25:00.000Z');
    expect(since('2026-12-06T16:00:00.000Z', 'hour', { now, zone, locale })).toBe(
      'yesterday 8:00 AM',
    );
  });

  it("gives the hour alone when the range starts on today's date, by the viewer's clock", () => {
    // 11:30 PM on Dec 7 in Los Angeles, already Dec 8 in UTC: midnight is today's
    const now = Date.parse('2026-12-08T07:30:00.000Z');
    expect(since('2026-12-07T08:00:00.000Z', 'hour', { now, zone, locale })).toBe('12:00 AM');
  });

  it('gives the date of an hour further back than yesterday', () => {
    const now = Date.parse('2026-12-07T15:25:00.000Z');
    expect(since('2026-12-05T16:00:00.000Z', 'hour', { now, zone, locale })).toBe('Dec 5, 8:00 AM');
  });

  it("names a range of days by its first day's date in the zone", () => {
    const now = Date.parse('2026-12-07T15:25:00.000Z');
    // 8:00 UTC on Nov 30 is still Nov 30 in Los Angeles; midnight UTC on Dec 1 is Nov 30 there
    expect(since('2026-11-30T08:00:00.000Z', 'day', { now, zone, locale })).toBe('2026-11-30');
    expect(since('2026-12-01T00:00:00.000Z', 'day', { now, zone, locale })).toBe('2026-11-30');
  });
});
