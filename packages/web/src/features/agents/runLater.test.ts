import { describe, expect, it } from 'vitest';
import { localInput } from '../runs/runs.queries';
import { laterDefault, parseStartAt } from './runLater';

const NOW = Date.parse('2026-12-04T09:02:10.000Z');
/** The local `datetime-local` text of an instant, whatever zone the test runs in. */
const local = (iso: string) => localInput(iso);

describe('parseStartAt', () => {
  it('reads the local time picked as the instant to send', () => {
    expect(parseStartAt(local('2026-12-04T10:30:00.000Z'), NOW)).toEqual({
      ok: true,
      runAt: '2026-12-04T10:30:00.000Z',
    });
  });

  it('refuses an empty time, one passed and one more than a year ahead', () => {
    expect(parseStartAt('', NOW)).toEqual({
      ok: false,
      error: 'Pick the date and time it starts at.',
    });
    expect(parseStartAt(local('2026-12-04T09:00:00.000Z'), NOW)).toEqual({
      ok: false,
      error: 'That time has passed: pick a later one, or start it now.',
    });
    expect(parseStartAt(local('2027-12-05T09:00:00.000Z'), NOW)).toEqual({
      ok: false,
      error: 'A run starts within a year at most.',
    });
    expect(parseStartAt(local('2027-12-04T09:00:00.000Z'), NOW).ok).toBe(true);
  });
});

describe('laterDefault', () => {
  it('is an hour ahead, on the next five minutes, in local time', () => {
    expect(laterDefault(NOW)).toBe(local('2026-12-04T10:05:00.000Z'));
    expect(laterDefault(Date.parse('2026-12-04T09:05:00.000Z'))).toBe(
      local('2026-12-04T10:05:00.000Z'),
    );
  });
});
