import { localDayStart, zoneOffset } from '@runlog/core';
import { sql, type RawBuilder } from 'kysely';
import { DAY_MS, HOUR_MS } from './rollup.js';

/**
 * A run of a zone's calendar days, as stats read them from the hourly rollups: each day
 * holds the UTC hours that start within it (all of its hours in a zone off UTC by whole
 * hours; in Asia/Kolkata, the hours starting from 00:30 local time to 23:30).
 */
export interface LocalDays {
  zone: string;
  /** The first day, as days since 1970-01-01 of its calendar date. */
  firstDay: number;
  /** Each day's first instant, then the end of the last: one more than there are days. */
  starts: number[];
  /**
   * The zone's offsets over the hours of the range: `offset` from the hour `from` on (the
   * first from the range's start), in ms, one entry per change of clocks.
   */
  segments: { from: number; offset: number }[];
}

/** The days `firstDay` (inclusive) to `endDay` (exclusive) of `zone`, with its offsets. */
export function localDays(zone: string, firstDay: number, endDay: number): LocalDays {
  const starts: number[] = [];
  for (let day = firstDay; day <= endDay; day++) starts.push(localDayStart(zone, day));
  // the offset at each day's first whole hour; where two differ, the hour the clocks changed
  const hourIn = (at: number) => Math.ceil(at / HOUR_MS) * HOUR_MS;
  const hours = starts.map(hourIn);
  const offsets = hours.map((h) => zoneOffset(zone, h));
  const segments = [{ from: hours[0]!, offset: offsets[0]! }];
  for (let i = 1; i < hours.length; i++) {
    if (offsets[i] === offsets[i - 1]) continue;
    // the first hour in (hours[i-1], hours[i]] showing the new offset
    let lo = hours[i - 1]!;
    let hi = hours[i]!;
    while (hi - lo > HOUR_MS) {
      const mid = lo + Math.floor((hi - lo) / HOUR_MS / 2) * HOUR_MS;
      if (zoneOffset(zone, mid) === offsets[i - 1]) lo = mid;
      else hi = mid;
    }
    segments.push({ from: hi, offset: zoneOffset(zone, hi) });
  }
  return { zone, firstDay, starts, segments };
}

/**
 * Which of the days an hourly rollup row's `hour` falls in, as SQL: its local calendar date
 * (the hour plus the zone's offset then, over whole days) less the first day's, so 0 for the
 * first day. Integer arithmetic on both databases; the offsets are literals, one CASE branch
 * per change of clocks in the range.
 */
export function localDayIndex(days: LocalDays, column = 'hour'): RawBuilder<number> {
  const hour = sql.ref<number>(column);
  const base = days.firstDay * DAY_MS;
  const shift = (offset: number) => sql.lit(offset - base);
  const [first, ...rest] = days.segments;
  let shifted: RawBuilder<number>;
  if (rest.length === 0) shifted = sql<number>`${hour} + ${shift(first!.offset)}`;
  else {
    // branch k: hours before the (k+1)th change have the kth offset
    const branches = days.segments
      .slice(0, -1)
      .map(
        (s, k) =>
          sql`when ${hour} < ${sql.lit(days.segments[k + 1]!.from)} then ${shift(s.offset)}`,
      );
    const last = days.segments[days.segments.length - 1]!;
    shifted = sql<number>`${hour} + case ${sql.join(branches, sql` `)} else ${shift(last.offset)} end`;
  }
  return sql<number>`(${shifted}) / ${sql.lit(DAY_MS)}`;
}
