import { localDayStart } from '@runlog/core';
import { DAY_MS, HOUR_MS } from './rollup.js';

/**
 * A run of a zone's calendar days, as stats read them from the rollups: each day
 * holds the UTC hours that start within it (all of its hours in a zone off UTC by whole
 * hours; in Asia/Kolkata, the hours starting from 00:30 local time to 23:30).
 */
export interface LocalDays {
  zone: string;
  /** The first day, as days since 1970-01-01 of its calendar date. */
  firstDay: number;
  /** Each day's first instant, then the end of the last: one more than there are days. */
  starts: number[];
}

/** The days `firstDay` (inclusive) to `endDay` (exclusive) of `zone`. */
export function localDays(zone: string, firstDay: number, endDay: number): LocalDays {
  const starts: number[] = [];
  for (let day = firstDay; day <= endDay; day++) starts.push(localDayStart(zone, day));
  return { zone, firstDay, starts };
}

/** Hours `[lo, hi)` of the hourly rollups counted into day `t` (`sign` 1) or out of it (-1). */
export interface HourWindow {
  lo: number;
  hi: number;
  t: number;
  sign: 1 | -1;
}

/**
 * Where the rollups of days `first` to `end` (exclusive; indexes into `days`) are: each day
 * is the daily rollup of the UTC day nearest its first hour, less the hours from that UTC
 * day's start to the day's first hour, plus the hours from the next UTC day's start to the
 * day's end (a negative span the other way round). Sums of hours telescope, so the result is
 * the day's own hours, each UTC hour in the day it starts in; a Los Angeles day then reads one
 * daily row and 16 hourly ones, a Berlin day one and 2, against 24 hourly rows summed.
 */
export function daySources(
  days: LocalDays,
  first = 0,
  end = days.starts.length - 1,
): { daily: { day: number; t: number }[]; hourly: HourWindow[] } {
  const firstHour = (i: number) => Math.ceil(days.starts[i]! / HOUR_MS) * HOUR_MS;
  const daily: { day: number; t: number }[] = [];
  const hourly: HourWindow[] = [];
  /** Adds the hours from `from` to `to` to day t with `sign`, or takes them away if before. */
  const span = (from: number, to: number, t: number, sign: 1 | -1) => {
    if (to > from) hourly.push({ lo: from, hi: to, t, sign });
    else if (to < from) hourly.push({ lo: to, hi: from, t, sign: sign === 1 ? -1 : 1 });
  };
  for (let t = first; t < end; t++) {
    const start = firstHour(t);
    const day = Math.round(start / DAY_MS) * DAY_MS;
    daily.push({ day, t });
    span(day, start, t, -1);
    span(day + DAY_MS, firstHour(t + 1), t, 1);
  }
  return { daily, hourly };
}
