import type { AppContext } from '../context.js';
import { RESTART_GRACE_MS, sweepOnce, type SweepRestart } from './sweeper.js';
import { scheduleOnce } from './scheduler.js';
import { watchBudgetsOnce } from './budget-watch.js';
import { startRetention } from '../retention/retention.js';
import { isDatabaseUnavailable, optimizeSqlite } from '../db/database.js';

/**
 * Runs `job` every `intervalMs` until the context closes. A tick is skipped while the last
 * run still goes (never two at once), a failed run (the database briefly away) is retried by
 * the next tick, the timer never keeps the process alive, and closing waits for the run in
 * progress.
 * @example repeatEvery(ctx, ctx.config.sweepIntervalMs, () => sweepOnce(ctx))
 */
export function repeatEvery(
  ctx: AppContext,
  intervalMs: number,
  job: () => Promise<unknown>,
): void {
  let running: Promise<unknown> | undefined;
  const timer = setInterval(() => {
    if (running) return;
    running = job()
      .catch(() => {
        // retried by the next tick
      })
      .finally(() => (running = undefined));
  }, intervalMs);
  timer.unref();
  ctx.onClose.push(async () => {
    clearInterval(timer);
    await running;
  });
}

/**
 * Starts the control plane's background jobs: the sweeper (lapsed leases, timeouts, forced
 * cancels), the scheduler, the budget watch (webhooks on agents' 24 h budgets), webhook
 * deliveries and retention. Each stops when the context closes.
 */
export function startBackground(ctx: AppContext): void {
  repeatEvery(ctx, ctx.config.sweepIntervalMs, sweeper(ctx));
  repeatEvery(ctx, ctx.config.schedulerIntervalMs, () => scheduleOnce(ctx));
  repeatEvery(ctx, ctx.config.schedulerIntervalMs, () => watchBudgetsOnce(ctx));
  startRetention(ctx);
  const stopDeliveries = ctx.deliverer.start(ctx.config.webhookPollMs);
  ctx.onClose.push(stopDeliveries);
  if (ctx.db.dialect === 'sqlite') {
    // the query planner's statistics, which PostgreSQL's autovacuum keeps by itself: without
    // them SQLite guessed some plans that walk every run of a project
    void optimizeSqlite(ctx.db, true).catch(() => {});
    repeatEvery(ctx, SQLITE_OPTIMIZE_MS, () => optimizeSqlite(ctx.db));
  }
}

/**
 * The sweeper's job: one `sweepOnce` per call. A lease that lapsed while no server was up
 * gets one more lease to be renewed; so does one that lapsed while the database was away
 * (restarting, unreachable, locked by another process): the worker's heartbeats were
 * answered 503 meanwhile, and are recorded again once it is back. The first sweep after the
 * write path or a sweep failed for the database counts as a start.
 */
export function sweeper(ctx: AppContext, now: () => number = Date.now): () => Promise<number> {
  let restart: SweepRestart = { at: now(), graceMs: RESTART_GRACE_MS };
  let away = false;
  let heard = ctx.writer.lastAwayAt;
  return async () => {
    const at = now();
    const awayAt = ctx.writer.lastAwayAt;
    if (away || awayAt !== heard) restart = { at, graceMs: RESTART_GRACE_MS };
    heard = awayAt;
    try {
      const ended = await sweepOnce(ctx, at, restart);
      away = false;
      return ended;
    } catch (err) {
      if (isDatabaseUnavailable(err)) away = true;
      throw err;
    }
  };
}

/** How often a SQLite server refreshes its query planner's statistics. */
const SQLITE_OPTIMIZE_MS = 3 * 3_600_000;
