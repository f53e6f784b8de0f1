import { InvalidArgumentError } from 'commander';
import { describe, expect, it } from 'vitest';
import { NONE, durationArg, intArg, orNone, parseWhen, runIdsArg, usdArg } from './options.js';

/** What a parser refuses `value` with, or the value it gives. */
function refusal<T>(parse: (value: string) => T, value: string): string {
  try {
    parse(value);
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidArgumentError);
    return (err as Error).message;
  }
  throw new Error(`${value} was taken`);
}

describe('setting parsers', () => {
  it('takes run ids one after another, each checked as one run id is', () => {
    const ids = runIdsArg('<id>');
    expect(
      ['r-1', 'r-2', 'r-1'].reduce<string[] | undefined>((all, v) => ids(v, all), undefined),
    ).toEqual(['r-1', 'r-2', 'r-1']);
    expect(refusal((v) => ids(v, ['r-1']), 'no spaces')).toMatch(/^<id> /);
    expect(refusal((v) => ids(v, undefined), 'stats')).toMatch(/^<id>: /);
  });

  it('takes a span as 30s, 5m, 2h, 1.5h or plain milliseconds, within its bounds', () => {
    const timeout = durationArg('--timeout', 1000, 604_800_000);
    expect(['30s', '5m', '2h', '1.5h', '7d', '1000', '1w'].map(timeout)).toEqual([
      30_000, 300_000, 7_200_000, 5_400_000, 604_800_000, 1000, 604_800_000,
    ]);
    expect(refusal(timeout, '999')).toBe('--timeout must be 1s to 7d');
    expect(refusal(timeout, '8d')).toBe('--timeout must be 1s to 7d');
    for (const bad of ['soon', '-5m', '5 minutes', ''])
      expect(refusal(timeout, bad)).toBe(
        '--timeout must be a span like 30s, 5m or 2h, or milliseconds',
      );
  });

  it('takes dollars above 0, with or without the sign', () => {
    const cost = usdArg('--max-cost', 1_000_000);
    expect(['5', '0.25', '$2.50', '1e6', '.5'].map(cost)).toEqual([5, 0.25, 2.5, 1_000_000, 0.5]);
    for (const bad of ['0', '-1', '1000001', 'five', '0x10', 'Infinity', '$'])
      expect(refusal(cost, bad)).toBe(
        '--max-cost must be an amount of US dollars above 0 and at most 1000000',
      );
  });

  it('reads none as a cleared setting, and says so when it refuses', () => {
    const steps = orNone(intArg('--max-steps', 1, 1e9));
    expect(steps('none')).toBe(NONE);
    expect(steps('50')).toBe(50);
    expect(refusal(steps, '0')).toBe('--max-steps must be 1 to 1000000000, or none to clear it');
    expect(refusal(steps, 'None')).toBe('--max-steps must be a whole number, or none to clear it');
  });

  it('reads a date and a time without a zone in UTC, as it reads a date alone', () => {
    const zone = process.env.TZ;
    process.env.TZ = 'America/Los_Angeles';
    try {
      const since = parseWhen('--since');
      expect(
        ['2026-12-05', '2026-12-05T00:00', '2026-12-05 10:30:15', '2026-12-05T10:30+05:30'].map(
          since,
        ),
      ).toEqual([
        Date.parse('2026-12-05T00:00:00Z'),
        Date.parse('2026-12-05T00:00:00Z'),
        Date.parse('2026-12-05T10:30:15Z'),
        Date.parse('2026-12-05T05:00:00Z'),
      ]);
    } finally {
      if (zone === undefined) delete process.env.TZ;
      else process.env.TZ = zone;
    }
  });

  it('takes a date only when the month has that day, not the day Date.parse rolls it over to', () => {
    const since = parseWhen('--since');
    expect(['2028-02-29', '2026-04-30', '2026-12-31T23:00:00Z'].map(since)).toEqual([
      Date.parse('2028-02-29T00:00:00Z'),
      Date.parse('2026-04-30T00:00:00Z'),
      Date.parse('2026-12-31T23:00:00Z'),
    ]);
    for (const bad of ['2026-02-29', '2026-02-30', '2026-04-31', '2026-06-31T10:00:00Z'])
      expect(refusal(since, bad)).toMatch(/^--since must be a span like 24h or 7d, or a date like/);
  });
});
