import { describe, expect, it } from 'vitest';
import {
  formatCost,
  formatCostTick,
  formatDuration,
  formatExact,
  formatPercent,
  formatPercentTick,
  formatRelative,
  formatTokens,
  formatUsdLimit,
  limitsText,
  liveNow,
  notStartedYet,
  runCost,
  runDuration,
  searchEmptyText,
  stepDuration,
} from './format';

describe('formatDuration', () => {
  it('shows each unit only in the range its rounding keeps', () => {
    expect([999.4, 999.7, 1000, 9949, 9970, 10_000, 59_999].map(formatDuration)).toEqual([
      '999 ms',
      '1.0 s',
      '1.0 s',
      '9.9 s',
      '10 s',
      '10 s',
      '59 s',
    ]);
  });
});

describe('formatCostTick', () => {
  it('gives axis ticks under $1 the digits that tell them apart', () => {
    const ticks = [0, 0.005, 0.01, 0.015, 0.02].map(formatCostTick);
    expect(ticks).toEqual(['$0', '$0.005', '$0.01', '$0.015', '$0.02']);
  });

  it('writes ticks under $1 with cents at least, as the ticks from $1 up', () => {
    const ticks = [0, 0.5, 1, 1.5].map(formatCostTick);
    expect(ticks).toEqual(['$0', '$0.50', '$1.00', '$1.50']);
    expect([0.1, 0.25, 0.3000000000000001].map(formatCostTick)).toEqual([
      '$0.10',
      '$0.25',
      '$0.30',
    ]);
  });

  it('writes a tick of a fraction of a cent in digits, never in exponent form', () => {
    expect([1e-7, 2.5e-6].map(formatCostTick)).toEqual(['$0.0000001', '$0.0000025']);
  });

  it('reads as formatCost from $1 up', () => {
    expect(formatCostTick(2.5)).toBe(formatCost(2.5));
    // just under a dollar rounds to one, as a dollar tick reads
    expect(formatCostTick(0.9996)).toBe(formatCost(1));
    expect(formatCostTick(1500)).toBe('$1,500');
  });
});

describe('formatPercent', () => {
  it('rounds a rate, but never some failures to none or most to all', () => {
    expect([0, 0.05, 0.123, 1].map(formatPercent)).toEqual(['0%', '5.0%', '12%', '100%']);
    // 1 failed run in 5,000 is not "0.0%"; 4,999 are not "100%"
    expect(formatPercent(1 / 5000)).toBe('<0.1%');
    expect(formatPercent(4999 / 5000)).toBe('>99%');
    expect(formatPercent(0.001)).toBe('0.1%');
    expect(formatPercent(0.994)).toBe('99%');
    expect(formatPercent(null)).toBe('—');
  });

  it("writes a fail rate chart's small ticks with their digits", () => {
    expect([0, 0.0002, 0.0004, 0.0006].map(formatPercentTick)).toEqual([
      '0%',
      '0.02%',
      '0.04%',
      '0.06%',
    ]);
    expect([0.2, 0.6, 1].map(formatPercentTick)).toEqual(['20%', '60%', '100%']);
  });
});

describe('formatTokens', () => {
  it('writes a count that rounds to a thousand thousands as millions', () => {
    expect([950, 12_345, 999_499, 999_600, 1_250_000].map(formatTokens)).toEqual([
      '950',
      '12k',
      '999k',
      '1.0M',
      '1.3M',
    ]);
  });
});

describe('formatCost', () => {
  it('tells costs under $1 apart with three significant digits', () => {
    expect([0.013, 0.0133, 0.0044, 0.25, 0.5, 0.1].map(formatCost)).toEqual([
      '$0.013',
      '$0.0133',
      '$0.0044',
      '$0.25',
      '$0.50',
      '$0.10',
    ]);
    expect(formatCost(0.00012345)).toBe('$0.000123');
    // never in exponent notation, however small
    expect(formatCost(1e-7)).toBe('$0.0000001');
    expect(formatCost(0.9999)).toBe('$1.00');
  });

  it('gives two decimals from $1 and whole dollars from $100', () => {
    expect([1, 1.234, 99.994, 1234.4, 0, null].map(formatCost)).toEqual([
      '$1.00',
      '$1.23',
      '$99.99',
      '$1,234',
      '$0',
      '—',
    ]);
  });
});

describe('formatUsdLimit', () => {
  it('writes a limit as it was set: whole dollars without cents, cents to the digit', () => {
    expect([20, 0.5, 0.125, 1250.5, 1e9, 12.4].map(formatUsdLimit)).toEqual([
      '$20',
      '$0.50',
      '$0.125',
      '$1,250.50',
      '$1,000,000,000',
      '$12.40',
    ]);
    // a nano-dollar, the finest a limit is kept to, in digits rather than rounded to $0
    expect(formatUsdLimit(1e-9)).toBe('$0.000000001');
  });
});

describe('runCost', () => {
  it('reads a run that used tokens at no recorded cost as unpriced, not free', () => {
    expect(runCost({ cost_usd: 0, total_tokens: 5200 })).toEqual({ text: '—', unpriced: true });
    expect(runCost({ cost_usd: 0, total_tokens: 0 })).toEqual({ text: '$0', unpriced: false });
    expect(runCost({ cost_usd: 0.5, total_tokens: 10 })).toEqual({
      text: '$0.50',
      unpriced: false,
    });
  });
});

describe('notStartedYet', () => {
  const queued = {
    status: 'queued' as const,
    started_at: null,
    step_count: 0,
    total_tokens: 0,
    cost_usd: 0,
  };

  it('reads a queued run that recorded nothing as having nothing to count yet', () => {
    expect(notStartedYet(queued)).toBe(true);
  });

  it('counts what a run started, ended or recorded while queued', () => {
    expect(
      notStartedYet({ ...queued, status: 'running', started_at: '2026-03-01T10:00:00Z' }),
    ).toBe(false);
    // ended before it started: it used nothing (usedNothing), which is known, not to come
    expect(notStartedYet({ ...queued, status: 'cancelled' })).toBe(false);
    expect(notStartedYet({ ...queued, step_count: 2 })).toBe(false);
    expect(notStartedYet({ ...queued, total_tokens: 1500 })).toBe(false);
  });
});

describe('live durations', () => {
  const t0 = Date.parse('2026-03-01T10:00:00.000Z');
  const iso = (ms: number) => new Date(t0 + ms).toISOString();
  const run = {
    status: 'running' as const,
    started_at: iso(0),
    ended_at: null,
    duration_ms: null,
  };
  // the shared clock last ticked at +1 s; since then a step ended and another started
  const tick = t0 + 1000;
  const ended = {
    status: 'succeeded' as const,
    started_at: iso(200),
    ended_at: iso(1500),
    duration_ms: 1300,
  };
  const started = {
    status: 'running' as const,
    started_at: iso(1436),
    ended_at: null,
    duration_ms: null,
  };
  const steps = [ended, started];

  it('never gives a step that started after the last tick a negative duration', () => {
    const now = liveNow(tick, run, steps);
    expect(stepDuration(started, now)).toBeGreaterThanOrEqual(0);
    expect(formatDuration(stepDuration(started, now))).not.toMatch(/^-/);
  });

  it('never makes a running run shorter than what its steps recorded', () => {
    const now = liveNow(tick, run, steps);
    expect(runDuration(run, now)).toBeGreaterThanOrEqual(1500);
    expect(runDuration(run, now)).toBeGreaterThanOrEqual(ended.duration_ms);
  });

  it('follows the clock once it has passed every recorded moment', () => {
    expect(liveNow(t0 + 5000, run, steps)).toBe(t0 + 5000);
    expect(runDuration(run, liveNow(t0 + 5000, run, steps))).toBe(5000);
    expect(stepDuration(started, t0 + 5000)).toBe(5000 - 1436);
  });

  it('keeps a recorded step duration, and reads a step with no start as unknown', () => {
    expect(stepDuration(ended, t0)).toBe(1300);
    expect(stepDuration({ ...started, started_at: null }, tick)).toBeNull();
  });
});

describe('limitsText', () => {
  it("says an agent's limits on one run, or null without any", () => {
    const none = { max_cost_usd: null, max_tokens: null, max_steps: null };
    expect(limitsText(none)).toBeNull();
    expect(limitsText({ max_cost_usd: 1.5, max_tokens: 100_000, max_steps: 1200 })).toBe(
      `${formatCost(1.5)}, ${formatTokens(100_000)} tokens, 1,200 steps`,
    );
    expect(limitsText({ ...none, max_steps: 50 })).toBe('50 steps');
  });
});

describe('formatExact', () => {
  it('says which clock an exact time is on', () => {
    const at = '2026-12-05T20:19:13.423Z';
    expect(formatExact(at, 'en-US', 'Europe/Paris')).toBe('Dec 5, 2026, 9:19:13.423 PM GMT+1');
    expect(formatExact(at, 'en-US', 'UTC')).toBe('Dec 5, 2026, 8:19:13.423 PM UTC');
    expect(formatExact(null)).toBe('');
  });
});

describe('formatRelative', () => {
  const now = Date.parse('2026-03-10T12:00:00Z');
  it('says a time passed in whole units, and one to come to the nearest', () => {
    expect(formatRelative('2026-03-10T11:59:58Z', now)).toBe('just now');
    expect(formatRelative('2026-03-10T11:59:30Z', now)).toBe('30 s ago');
    expect(formatRelative('2026-03-10T09:01:00Z', now)).toBe('2 h ago');
    expect(formatRelative('2026-03-06T12:00:00Z', now)).toBe('4 d ago');
    expect(formatRelative('2026-03-10T12:05:00Z', now)).toBe('in 5 min');
    expect(formatRelative('2026-03-10T14:59:00Z', now)).toBe('in 3 h');
    expect(formatRelative('2026-03-10T12:59:40Z', now)).toBe('in 1 h');
    expect(formatRelative('2026-03-11T11:45:00Z', now)).toBe('in 1 d');
    expect(formatRelative('2026-03-10T12:00:59.6Z', now)).toBe('in 1 min');
  });
});

describe('searchEmptyText', () => {
  const users = { one: 'user', many: 'users' };

  it('names the search and the way out, not the empty-project onboarding', () => {
    expect(searchEmptyText(users, 'Dana@', false)).toEqual({
      title: 'No users match “Dana@”',
      body: 'No user id holds this text, in any case. Change or clear the search.',
    });
  });

  it('says the other filters may be why, when they narrow the runs too', () => {
    const text = searchEmptyText({ one: 'thread', many: 'threads' }, 'refund', true);
    expect(text.title).toBe('No threads match “refund”');
    expect(text.body).toBe(
      'No thread whose id holds this text has runs these filters keep. Change or clear the search or the filters.',
    );
  });
});
