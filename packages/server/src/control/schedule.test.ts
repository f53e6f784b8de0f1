import { describe, expect, it } from 'vitest';
import { nextSlot, scheduleProblem, scheduleProblems } from './schedule.js';

const at = (iso: string) => Date.parse(iso);
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

describe('nextSlot', () => {
  it('is always after the time it is asked from, also in the hour clocks go back', () => {
    // New York repeats 01:00-02:00 local on 2027-11-07 (06:00-07:00Z is its second pass)
    const tz = 'America/New_York';
    const after = at('2027-11-07T06:10:00Z');
    // before: 05:30Z and 05:20Z, slots in the past the scheduler fired again and again
    expect(iso(nextSlot('30 1 * * *', tz, after))).toBe('2027-11-08T06:30:00.000Z');
    expect(iso(nextSlot('*/20 * * * *', tz, after))).toBe('2027-11-07T07:00:00.000Z');
    // every minute of the repeated hour and every kind of schedule
    for (const cron of ['*/20 * * * *', '30 1 * * *', '0 * * * *', '*/2 * * * * *', '15 */2 * * *'])
      for (let t = at('2027-11-07T04:00:00Z'); t < at('2027-11-07T09:00:00Z'); t += 60_000) {
        const next = nextSlot(cron, tz, t);
        expect(next, `${cron} after ${iso(t)}`).not.toBeNull();
        expect(next!, `${cron} after ${iso(t)}`).toBeGreaterThan(t);
      }
  });

  it('fires each local time once across a fall-back, and skips none after it', () => {
    const tz = 'America/New_York';
    const slots: string[] = [];
    let t = at('2027-11-07T05:00:00Z');
    while (t < at('2027-11-07T08:30:00Z')) {
      t = nextSlot('*/30 * * * *', tz, t)!;
      slots.push(iso(t)!);
    }
    expect(slots).toEqual([
      '2027-11-07T05:30:00.000Z', // 01:30 EDT
      '2027-11-07T07:00:00.000Z', // 02:00 EST: the repeated 01:00-02:00 does not fire again
      '2027-11-07T07:30:00.000Z',
      '2027-11-07T08:00:00.000Z',
      '2027-11-07T08:30:00.000Z',
    ]);
  });

  it('keeps daily jobs once a day over both changes, in zones with odd offsets too', () => {
    const daily = (tz: string, from: string, days: number) => {
      const out: string[] = [];
      let t = at(from);
      for (let i = 0; i < days; i++) out.push(iso((t = nextSlot('30 1 * * *', tz, t)!))!);
      return out;
    };
    expect(daily('America/New_York', '2027-11-06T00:00:00Z', 3)).toEqual([
      '2027-11-06T05:30:00.000Z',
      '2027-11-07T05:30:00.000Z',
      '2027-11-08T06:30:00.000Z',
    ]);
    expect(daily('Asia/Kathmandu', '2027-01-01T00:00:00Z', 2)).toEqual([
      '2027-01-01T19:45:00.000Z',
      '2027-01-02T19:45:00.000Z',
    ]);
  });
});

describe('scheduleProblem', () => {
  it('refuses a schedule that can never fire, naming the cron', () => {
    expect(scheduleProblem({ cron: '0 0 30 2 *', timezone: 'UTC' })).toEqual({
      field: 'cron',
      message: 'never fires: no date matches 0 0 30 2 *',
    });
    expect(scheduleProblem({ cron: '0 0 29 2 *', timezone: 'UTC' })).toBeUndefined();
  });

  it('names both fields when both are wrong, the cron checked in UTC', () => {
    expect(
      scheduleProblems({ cron: 'every tuesday', timezone: 'Mars/Olympus' }).map((p) => p.field),
    ).toEqual(['cron', 'timezone']);
    expect(scheduleProblems({ cron: '0 0 30 2 *', timezone: 'Mars/Olympus' })).toEqual([
      { field: 'cron', message: 'never fires: no date matches 0 0 30 2 *' },
      { field: 'timezone', message: 'unknown time zone Mars/Olympus' },
    ]);
    expect(scheduleProblems({ cron: '0 * * * *', timezone: 'Europe/Paris' })).toEqual([]);
  });

  it("does not quote croner's zero-based value for an out-of-range field", () => {
    const problem = scheduleProblem({ cron: '0 0 32 * *', timezone: 'UTC' });
    expect(problem?.field).toBe('cron');
    // before: "Invalid value for day: 31" for the 32 given
    expect(problem?.message).not.toMatch(/31/);
    expect(problem?.message).toMatch(/day/);
  });
});
