import type { AppContext } from '../context.js';
import { startSweeper } from './sweeper.js';
import { startScheduler } from './scheduler.js';
import { startRetention } from '../retention/retention.js';

/**
 * Starts the control plane's background jobs: the sweeper (lapsed leases, timeouts, forced
 * cancels), the scheduler and retention. Each registers its own stop in `ctx.onClose`.
 */
export function startBackground(ctx: AppContext): void {
  startSweeper(ctx);
  startScheduler(ctx);
  startRetention(ctx);
}
