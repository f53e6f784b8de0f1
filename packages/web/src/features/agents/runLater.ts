import { MAX_RUN_DELAY_MS } from '@runlog/core';
import { localInput, urlInstant } from '../runs/runs.queries';

/**
 * When a run queued "later" starts: the local time a `datetime-local` input picked, as the
 * instant to send (`run_at`), refused when empty, passed or more than a year ahead.
 * @example parseStartAt('2026-12-04T09:00', Date.UTC(2026, 11, 4)) // { ok: true, runAt: '2026-12-04T08:00:00.000Z' } in Paris
 */
export function parseStartAt(
  local: string,
  now: number,
): { ok: true; runAt: string } | { ok: false; error: string } {
  const runAt = urlInstant(local);
  if (runAt === undefined) return { ok: false, error: 'Pick the date and time it starts at.' };
  const at = Date.parse(runAt);
  if (at <= now)
    return { ok: false, error: 'That time has passed: pick a later one, or start it now.' };
  if (at - now > MAX_RUN_DELAY_MS)
    return { ok: false, error: 'A run starts within a year at most.' };
  return { ok: true, runAt };
}

/**
 * What the "later" time input starts at: an hour from `now`, on the next five minutes, in
 * the viewer's local time.
 * @example laterDefault(Date.parse('2026-12-04T09:02:10Z')) // '2026-12-04T11:05' in Paris
 */
export function laterDefault(now: number): string {
  const step = 5 * 60_000;
  return localInput(new Date(Math.ceil((now + 3_600_000) / step) * step).toISOString());
}
