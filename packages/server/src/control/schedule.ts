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
