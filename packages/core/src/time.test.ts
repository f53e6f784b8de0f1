import { describe, expect, it } from 'vitest';
import { endedBeforeDue, isHeldBack, lastBucketsFrom, runMoment, toIso } from './time.js';

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

describe('runMoment', () => {
  const run = {
    started_at: null as string | null,
    queued_at: null as string | null,
    ended_at: null as string | null,
    created_at: '2026-01-01T00:00:00.000Z',
  };
  it('says when a run started, else when it was queued, ended or recorded', () => {
    const t = (h: number) => `2026-01-01T0${h}:00:00.000Z`;
    expect(runMoment({ ...run, queued_at: t(1), started_at: t(2), ended_at: t(3) })).toEqual({
      at: t(2),
    });
    expect(runMoment({ ...run, queued_at: t(1) })).toEqual({ at: t(1), label: 'queued' });
    // recorded only by its end: it never waited in a queue
    expect(runMoment({ ...run, ended_at: t(3) })).toEqual({ at: t(3), label: 'ended' });
    expect(runMoment(run)).toEqual({ at: run.created_at, label: 'recorded' });
  });

  it('says when a run queued to start later ended, when it was stopped before its start', () => {
    const t = (h: number) => `2026-01-01T0${h}:00:00.000Z`;
    // queued at 1 to start at 5, cancelled at 3: it was never queued "in 2 hours"
    expect(runMoment({ ...run, queued_at: t(5), ended_at: t(3) })).toEqual({
      at: t(3),
      label: 'ended',
    });
    expect(endedBeforeDue({ queued_at: t(5), ended_at: t(3) })).toBe(true);
    // cancelled while it waited for a worker, after it was due
    expect(runMoment({ ...run, queued_at: t(1), ended_at: t(3) })).toEqual({
      at: t(1),
      label: 'queued',
    });
    expect(endedBeforeDue({ queued_at: t(1), ended_at: t(3) })).toBe(false);
    expect(endedBeforeDue({ queued_at: t(5), ended_at: null })).toBe(false);
  });
});

describe('toIso', () => {
  it('names every time, the ones past what a Date reaches as the nearest it does', () => {
    expect(toIso(0)).toBe('1970-01-01T00:00:00.000Z');
    expect(toIso(1e16)).toBe('+275760-09-13T00:00:00.000Z');
    expect(toIso(-1e16)).toBe('-271821-04-20T00:00:00.000Z');
    expect(toIso(null)).toBeNull();
  });
});

describe('isHeldBack', () => {
  const now = Date.parse('2026-12-06T12:00:00.000Z');
  it('holds a queued run until its queued_at, and nothing else', () => {
    const later = '2026-12-06T13:00:00.000Z';
    expect(isHeldBack({ status: 'queued', queued_at: later }, now)).toBe(true);
    expect(isHeldBack({ status: 'queued', queued_at: later }, Date.parse(later))).toBe(false);
    expect(isHeldBack({ status: 'queued', queued_at: '2026-12-06T11:00:00.000Z' }, now)).toBe(
      false,
    );
    expect(isHeldBack({ status: 'queued', queued_at: null }, now)).toBe(false);
    // stopped before its time: no longer waiting
    expect(isHeldBack({ status: 'cancelled', queued_at: later }, now)).toBe(false);
  });
});
