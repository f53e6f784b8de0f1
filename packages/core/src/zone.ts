const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

/** One formatter per zone: building one costs far more than formatting with it. */
const offsetFormats = new Map<string, Intl.DateTimeFormat>();

function offsetFormat(zone: string): Intl.DateTimeFormat {
  let format = offsetFormats.get(zone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', { timeZone: zone, timeZoneName: 'longOffset' });
    offsetFormats.set(zone, format);
  }
  return format;
}

/**
 * Whether `zone` names a time zone this runtime knows (an IANA name such as
 * `America/Los_Angeles`, or `UTC`), as `Intl.DateTimeFormat` takes it.
 * @example isTimeZone('Asia/Kolkata') // true; isTimeZone('Mars/Olympus') // false
 */
export function isTimeZone(zone: string): boolean {
  if (zone === '' || zone.length > 100) return false;
  try {
    offsetFormat(zone);
    return true;
  } catch {
    return false;
  }
}

/**
 * The zone's offset from UTC at `at`, in ms: what its clocks read minus UTC
 * (America/Los_Angeles in winter: -28,800,000; Asia/Kathmandu: 20,700,000).
 */
export function zoneOffset(zone: string, at: number): number {
  if (zone === 'UTC') return 0;
  // "GMT-08:00", "GMT+05:45", "GMT" (no offset), "GMT-07:52:58" (local mean time of old)
  const text = offsetFormat(zone).format(at);
  const m = /GMT(?:([+-])(\d{2}):(\d{2})(?::(\d{2}))?)?$/.exec(text);
  if (!m || m[1] === undefined) return 0;
  const ms = (Number(m[2]) * 3600 + Number(m[3]) * 60 + Number(m[4] ?? 0)) * 1000;
  return m[1] === '-' ? -ms : ms;
}

/**
 * The calendar date the zone's clocks show at `at`, as days since 1970-01-01.
 * @example localDayOf('America/Los_Angeles', Date.parse('2026-03-08T07:59:00Z')) // 20519 (March 7)
 */
export function localDayOf(zone: string, at: number): number {
  return Math.floor((at + zoneOffset(zone, at)) / DAY_MS);
}

/**
 * The first instant of a calendar date (days since 1970-01-01) in the zone: its local
 * midnight, or where a zone skips midnight (clocks moved forward at 00:00), the first time
 * its clocks show that date.
 * @example localDayStart('America/Los_Angeles', 20520) // Date.parse('2026-03-08T08:00:00Z')
 */
export function localDayStart(zone: string, day: number): number {
  const wall = day * DAY_MS;
  if (zone === 'UTC') return wall;
  const guess = wall - zoneOffset(zone, wall);
  const offset = zoneOffset(zone, guess);
  const start = wall - offset;
  if (zoneOffset(zone, start) === offset && localDayOf(zone, start - 1) < day) return start;
  // midnight skipped or shown twice: the first instant whose date is `day`, found by halving
  // (offsets lie within ±15 h, so the date before is shown at wall - 15 h and `day` at + 15 h)
  let lo = wall - 15 * HOUR_MS;
  let hi = wall + 15 * HOUR_MS;
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2);
    if (localDayOf(zone, mid) >= day) hi = mid;
    else lo = mid;
  }
  return hi;
}

/**
 * The calendar date the zone's clocks show at `at`, as `YYYY-MM-DD`.
 * @example localDate('Asia/Tokyo', Date.parse('2026-03-08T16:00:00Z')) // '2026-03-09'
 */
export function localDate(zone: string, at: number): string {
  return new Date(localDayOf(zone, at) * DAY_MS).toISOString().slice(0, 10);
}

/** The first instant of the local day `at` falls in. */
export function startOfLocalDay(zone: string, at: number): number {
  return localDayStart(zone, localDayOf(zone, at));
}

/** The zone's name as the runtime spells it (`utc` → `UTC`, `Etc/UTC` → `UTC`). */
export function canonicalZone(zone: string): string {
  return offsetFormat(zone).resolvedOptions().timeZone;
}

/** The browser's or the machine's time zone; UTC when the runtime cannot tell. */
export function systemZone(): string {
  try {
    // (a browser that cannot tell its zone may name one it does not take: Etc/Unknown)
    const zone = new Intl.DateTimeFormat().resolvedOptions().timeZone;
    return zone && isTimeZone(zone) ? zone : 'UTC';
  } catch {
    return 'UTC';
  }
}
