import { Cron } from 'croner';

/**
 * The first slot of a cron schedule strictly after `after` (epoch ms), in `timezone`;
 * `null` when the expression never fires again. Throws on an invalid expression or zone.
 * @example nextSlot('0 9 * * 1-5', 'Europe/Paris', Date.now())
 */
export function nextSlot(cron: string, timezone: string | null, after: number): number | null {
  const zone = timezone ?? 'UTC';
  const job = new Cron(cron, { timezone: zone, paused: true });
  try {
    const next = job.nextRun(new Date(after))?.getTime() ?? null;
    if (next === null || next > after) return next;
    // In the hour a zone west of UTC repeats when its clocks go back, croner maps the next
    // local time to its first pass, which has gone by: a slot in the past, that a scheduler
    // would fire again and again. Each local time fires once, so the next slot is the first
    // one after the repeated hour (jobs every few minutes pause for that hour).
    const end = repeatedUntil(zone, after);
    if (end === undefined) return null;
    // croner stays confused up to the end of that hour, so the search from it runs on the
    // fixed offset the zone has then, which holds for months
    const offset = offsetAt(zone, end);
    const fixed = new Cron(cron, { utcOffset: offset / 60_000, paused: true });
    let found: number | null;
    try {
      found = fixed.nextRun(new Date(end - 1))?.getTime() ?? null;
    } finally {
      fixed.stop();
    }
    // a slot past the zone's next change of offset: by then croner reads the zone right
    if (found !== null && offsetAt(zone, found) !== offset)
      found = job.nextRun(new Date(end + 3 * HOUR_MS))?.getTime() ?? null;
    return found !== null && found > after ? found : null;
  } finally {
    job.stop();
  }
}

const HOUR_MS = 3_600_000;
const formats = new Map<string, Intl.DateTimeFormat>();

/** The zone's offset from UTC at `at`, in ms (Europe/Paris in winter: 3,600,000). */
function offsetAt(zone: string, at: number): number {
  let format = formats.get(zone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formats.set(zone, format);
  }
  const parts = format.formatToParts(new Date(at));
  const n = (type: string) => Number(parts.find((p) => p.type === type)?.value);
  const local = Date.UTC(n('year'), n('month') - 1, n('day'), n('hour'), n('minute'), n('second'));
  return local - Math.floor(at / 1000) * 1000;
}

/**
 * When `at` falls in the second pass of local times a zone repeats (its clocks went back
 * within the last few hours), the instant that pass ends: the first local time not seen
 * before. `undefined` otherwise.
 */
function repeatedUntil(zone: string, at: number): number | undefined {
  const now = offsetAt(zone, at);
  let lo = at - 3 * HOUR_MS;
  const before = offsetAt(zone, lo);
  if (before <= now) return undefined;
  // the change of offset lies in (lo, at]: find it to the millisecond
  let hi = at;
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2);
    if (offsetAt(zone, mid) === before) lo = mid;
    else hi = mid;
  }
  const end = hi + (before - now);
  return end > at ? end : undefined;
}

/** What is wrong with a schedule's field. */
export interface ScheduleProblem {
  field: 'cron' | 'timezone';
  message: string;
}

/**
 * Everything wrong with a schedule, each naming its field, cron first; empty when it can be
 * used: the one check behind `PUT /agents` and `runlog import`. A cron is checked in UTC
 * when the zone is unknown, so a form with both wrong hears of both at once.
 * @example scheduleProblems({ cron: 'every day', timezone: 'Mars/Olympus' }) // [{ field: 'cron', ... }, { field: 'timezone', ... }]
 */
export function scheduleProblems(schedule: { cron: string; timezone: string }): ScheduleProblem[] {
  const problems: ScheduleProblem[] = [];
  let zone = schedule.timezone;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
  } catch {
    problems.push({ field: 'timezone', message: `unknown time zone ${schedule.timezone}` });
    zone = 'UTC';
  }
  let next: number | null;
  try {
    next = nextSlot(schedule.cron, zone, Date.now());
  } catch (err) {
    // croner counts days and months from 0 in its message: the value sent is not shown right
    const reason = (err instanceof Error ? err.message : String(err)).replace(
      /Invalid value for (\w+): -?\d+/,
      'a value out of range for $1',
    );
    return [{ field: 'cron', message: `not a valid cron expression (${reason})` }, ...problems];
  }
  // a schedule that can never fire (30 February) would wait in the scheduler for ever
  if (next === null)
    problems.unshift({ field: 'cron', message: `never fires: no date matches ${schedule.cron}` });
  return problems;
}

/**
 * The first of `scheduleProblems`, or `undefined` when the schedule can be used.
 * @example scheduleProblem({ cron: 'every day', timezone: 'UTC' }) // { field: 'cron', ... }
 */
export function scheduleProblem(schedule: {
  cron: string;
  timezone: string;
}): ScheduleProblem | undefined {
  return scheduleProblems(schedule)[0];
}
