import { localDayOf, localDayStart } from './zone.js';

const DAY_MS = 86_400_000;
/** Years 0000–9999, where `toISOString` has the plain `YYYY-MM-DD` form. */
export const PLAIN_YEARS_END_MS = 253_402_300_800_000;
/** The furthest a Date (and so the API's ISO form) reaches either side of 1970. */
export const MAX_TIME_MS = 8.64e15;
let cachedDay = NaN;
let cachedDayPrefix = '';

/**
 * Epoch milliseconds to the API's ISO-8601 UTC form; `null` stays `null`. The same text as
 * `Date.prototype.toISOString`, without a Date per call: a list of runs formats hundreds of
 * timestamps, mostly of one day, so the date part is kept from the previous call.
 * @example toIso(0) // '1970-01-01T00:00:00.000Z'
 */
export function toIso(ms: number): string;
export function toIso(ms: number | null | undefined): string | null;
export function toIso(ms: number | null | undefined): string | null {
  if (ms === null || ms === undefined) return null;
  if (!(ms >= 0 && ms < PLAIN_YEARS_END_MS) || !Number.isInteger(ms)) {
    // past what a Date can name (stored before the API bounded times): the nearest it can,
    // not an exception that fails every list holding the row
    const named = Number.isFinite(ms) ? Math.max(-MAX_TIME_MS, Math.min(MAX_TIME_MS, ms)) : 0;
    return new Date(named).toISOString();
  }
  const day = Math.floor(ms / DAY_MS);
  if (day !== cachedDay) {
    cachedDayPrefix = new Date(day * DAY_MS).toISOString().slice(0, 11);
    cachedDay = day;
  }
  let rest = ms - day * DAY_MS;
  const h = Math.floor(rest / 3_600_000);
  rest -= h * 3_600_000;
  const m = Math.floor(rest / 60_000);
  rest -= m * 60_000;
  const sec = Math.floor(rest / 1000);
  const milli = rest - sec * 1000;
  return `${cachedDayPrefix}${h < 10 ? '0' : ''}${h}:${m < 10 ? '0' : ''}${m}:${sec < 10 ? '0' : ''}${sec}.${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z`;
}

/** Parses a relative span such as `30s`, `15m`, `24h`, `7d` to milliseconds. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)$/.exec(text.trim());
  if (!m) return undefined;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[
    m[2] as 'ms' | 's' | 'm' | 'h' | 'd' | 'w'
  ];
  return Math.round(Number(m[1]) * unit);
}

/** The grains stats are read at: an hour and a UTC day, in milliseconds. */
export const BUCKET_MS = { hour: 3_600_000, day: DAY_MS } as const;

/**
 * The start of the last `count` whole buckets, the one `now` is in the last of them: "the
 * last 7 days" is seven day buckets with today, as the dashboard and the CLI both read it
 * (the server reads stats in whole buckets, so `now - 7 days` would take in an eighth).
 * Days are the zone's calendar days (UTC by default), 23 or 25 hours long across a change
 * of its clocks; hours are UTC hours whatever the zone.
 * @example lastBucketsFrom(7, 'day', Date.parse('2026-12-04T15:00:00Z')) // 2026-11-28T00:00Z
 * @example lastBucketsFrom(1, 'day', Date.parse('2026-12-04T15:00:00Z'), 'America/Los_Angeles') // 2026-12-04T08:00Z
 */
export function lastBucketsFrom(
  count: number,
  bucket: keyof typeof BUCKET_MS,
  now: number,
  zone = 'UTC',
): number {
  if (bucket === 'day' && zone !== 'UTC')
    return localDayStart(zone, localDayOf(zone, now) - (count - 1));
  const unit = BUCKET_MS[bucket];
  return Math.floor(now / unit) * unit - (count - 1) * unit;
}

/**
 * Whether a run waits queued until a time to come (queued with `delay_ms` or `run_at`, or an
 * automatic retry waiting its delay): no worker takes it before its `queued_at`.
 * @example isHeldBack({ status: 'queued', queued_at: '2999-01-01T00:00:00.000Z' }) === true
 */
export function isHeldBack(
  run: { status: string; queued_at: string | null },
  now = Date.now(),
): boolean {
  return run.status === 'queued' && run.queued_at !== null && Date.parse(run.queued_at) > now;
}

/**
 * A run queued to start later (`queued_at` ahead) that ended before then, never started:
 * stopped while it waited, or timed out.
 * @example endedBeforeDue({ queued_at: '…T10:00…', ended_at: '…T09:15…' }) // true
 */
export function endedBeforeDue(run: {
  queued_at: string | null;
  ended_at: string | null;
}): boolean {
  return (
    run.queued_at !== null &&
    run.ended_at !== null &&
    Date.parse(run.ended_at) < Date.parse(run.queued_at)
  );
}

/**
 * When a run happened, for run lists: its start; for a run that never started, when it was
 * queued, else when it ended (a run recorded only by its end, or one queued to start later and
 * stopped before then: its `queued_at` is a start that never came), else when it was
 * recorded, with the word that says which.
 * @example runMoment(run) // { at: '2026-…', label: 'queued' }
 */
export function runMoment(run: {
  started_at: string | null;
  queued_at: string | null;
  ended_at: string | null;
  created_at: string;
}): { at: string; label?: 'queued' | 'ended' | 'recorded' } {
  if (run.started_at) return { at: run.started_at };
  if (run.queued_at && !endedBeforeDue(run)) return { at: run.queued_at, label: 'queued' };
  if (run.ended_at) return { at: run.ended_at, label: 'ended' };
  return { at: run.created_at, label: 'recorded' };
}
