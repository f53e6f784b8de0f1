import { Cron } from 'croner';

/**
 * The first slot of a cron schedule strictly after `after` (epoch ms), in `timezone`;
 * `null` when the expression never fires again. Throws on an invalid expression or zone.
 * @example nextSlot('0 9 * * 1-5', 'Europe/Paris', Date.now())
 */
export function nextSlot(cron: string, timezone: string | null, after: number): number | null {
  const job = new Cron(cron, { timezone: timezone ?? 'UTC', paused: true });
  try {
    return job.nextRun(new Date(after))?.getTime() ?? null;
  } finally {
    job.stop();
  }
}

/**
 * What is wrong with a schedule, naming its field, or `undefined` when it can be used: the
 * one check behind `PUT /agents` and `runlog import`.
 * @example scheduleProblem({ cron: 'every day', timezone: 'UTC' }) // { field: 'cron', ... }
 */
export function scheduleProblem(schedule: {
  cron: string;
  timezone: string;
}): { field: 'cron' | 'timezone'; message: string } | undefined {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: schedule.timezone });
  } catch {
    return { field: 'timezone', message: `unknown time zone ${schedule.timezone}` };
  }
  try {
    nextSlot(schedule.cron, schedule.timezone, Date.now());
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    return { field: 'cron', message: `not a valid cron expression (${reason})` };
  }
  return undefined;
}
