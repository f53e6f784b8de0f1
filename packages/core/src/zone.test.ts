import { describe, expect, it } from 'vitest';
import { lastBucketsFrom } from './time.js';
import {
  canonicalZone,
  isTimeZone,
  localDate,
  localDayOf,
  localDayStart,
  startOfLocalDay,
  zoneOffset,
} from './zone.js';

const HOUR = 3_600_000;
const at = (iso: string) => Date.parse(iso);
const iso = (ms: number) => new Date(ms).toISOString();
const day = (date: string) => Date.parse(`${date}T00:00:00Z`) / 86_400_000;

describe('zones', () => {
  it('knows IANA zones and UTC, not made-up ones', () => {
    expect(isTimeZone('America/Los_Angeles')).toBe(true);
    expect(isTimeZone('UTC')).toBe(true);
    expect(isTimeZone('Mars/Olympus')).toBe(false);
    expect(isTimeZone('')).toBe(false);
    expect(canonicalZone('Etc/UTC')).toBe('UTC');
  });

  it('reads offsets, whole-hour, half and quarter hours, across daylight saving', () => {
    expect(zoneOffset('America/Los_Angeles', at('2026-01-15T12:00:00Z'))).toBe(-8 * HOUR);
    expect(zoneOffset('America/Los_Angeles', at('2026-07-15T12:00:00Z'))).toBe(-7 * HOUR);
    expect(zoneOffset('Asia/Kolkata', at('2026-07-15T12:00:00Z'))).toBe(5.5 * HOUR);
    expect(zoneOffset('Asia/Kathmandu', at('2026-07-15T12:00:00Z'))).toBe(5.75 * HOUR);
    expect(zoneOffset('Europe/London', at('2026-01-15T12:00:00Z'))).toBe(0);
    expect(zoneOffset('UTC', 0)).toBe(0);
  });

  it('starts a local day at local midnight, days of 23 and 25 hours across daylight saving', () => {
    const la = 'America/Los_Angeles';
    expect(iso(localDayStart(la, day('2026-03-07')))).toBe('2026-03-07T08:00:00.000Z');
    expect(iso(localDayStart(la, day('2026-03-08')))).toBe('2026-03-08T08:00:00.000Z');
    expect(iso(localDayStart(la, day('2026-03-09')))).toBe('2026-03-09T07:00:00.000Z');
    expect(localDayStart(la, day('2026-11-02')) - localDayStart(la, day('2026-11-01'))).toBe(
      25 * HOUR,
    );
    expect(localDayOf(la, at('2026-03-08T07:59:59.999Z'))).toBe(day('2026-03-07'));
    expect(localDayOf(la, at('2026-03-08T08:00:00Z'))).toBe(day('2026-03-08'));
    expect(iso(localDayStart('Asia/Kolkata', day('2026-03-08')))).toBe('2026-03-07T18:30:00.000Z');
    expect(iso(localDayStart('Asia/Kathmandu', day('2026-03-08')))).toBe(
      '2026-03-07T18:15:00.000Z',
    );
    expect(localDate('Asia/Tokyo', at('2026-03-08T16:00:00Z'))).toBe('2026-03-09');
    expect(localDate('America/Los_Angeles', at('2026-03-08T07:59:00Z'))).toBe('2026-03-07');
    expect(iso(startOfLocalDay('Asia/Tokyo', at('2026-03-08T16:00:00Z')))).toBe(
      '2026-03-08T15:00:00.000Z',
    );
  });

  it('starts a day whose midnight the clocks skip at the first time they show it', () => {
    // Santiago moved its clocks from 00:00 to 01:00 on 2026-09-06
    const start = localDayStart('America/Santiago', day('2026-09-06'));
    expect(iso(start)).toBe('2026-09-06T04:00:00.000Z');
    expect(localDayOf('America/Santiago', start - 1)).toBe(day('2026-09-05'));
    expect(localDayOf('America/Santiago', start)).toBe(day('2026-09-06'));
  });

  it('counts the last N local days back from today', () => {
    const now = at('2026-03-10T03:00:00Z'); // 20:00 on March 9 in Los Angeles
    expect(iso(lastBucketsFrom(1, 'day', now, 'America/Los_Angeles'))).toBe(
      '2026-03-09T07:00:00.000Z',
    );
    // back over the change of clocks: March 7 began at UTC-8
    expect(iso(lastBucketsFrom(3, 'day', now, 'America/Los_Angeles'))).toBe(
      '2026-03-07T08:00:00.000Z',
    );
    expect(iso(lastBucketsFrom(3, 'day', now, 'UTC'))).toBe('2026-03-08T00:00:00.000Z');
    // hours stay UTC hours
    expect(iso(lastBucketsFrom(2, 'hour', now, 'Asia/Kolkata'))).toBe('2026-03-10T02:00:00.000Z');
  });
});
