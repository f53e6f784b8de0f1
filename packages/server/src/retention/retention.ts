import type { AppContext } from '../context.js';
import { DAY_MS } from '../stats/rollup.js';
import { purgeEndedBefore, type PurgeResult } from './purge.js';
import { DELETED_RUN_MEMORY_MS } from '../ingest/unit-of-work.js';
import { WORKER_MEMORY_MS } from '../control/workers.service.js';

export interface RetentionOptions {
  /** Time between passes (default 5 minutes). */
  intervalMs?: number;
  /** Delay before the first pass (default 30 s, so a start is not slowed down). */
  firstDelayMs?: number;
  batchSize?: number;
}

const DEFAULT_INTERVAL_MS = 5 * 60_000;
const DEFAULT_FIRST_DELAY_MS = 30_000;
const RETENTION_BATCH = 500;

/** A retention pass over every project; what `startRetention` runs on its timer. */
export class Retention {
  private readonly countRuns: (by?: number) => void;
  private readonly countSteps: (by?: number) => void;
  private readonly abort = new AbortController();
  private current: Promise<PurgeResult> | undefined;

  constructor(
    private readonly ctx: AppContext,
    private readonly batchSize = RETENTION_BATCH,
  ) {
    this.countRuns = ctx.metrics.counter(
      'runlog_retention_deleted_runs_total',
      'Runs deleted by retention (ended more than the project retention_days ago)',
    );
    this.countSteps = ctx.metrics.counter(
      'runlog_retention_deleted_steps_total',
      'Steps deleted with the runs retention deleted',
    );
  }

  /** Deletes each project's expired runs; one pass at a time. */
  runOnce(now = Date.now()): Promise<PurgeResult> {
    this.current ??= this.pass(now).finally(() => (this.current = undefined));
    return this.current;
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.current?.catch(() => {});
  }

  private async pass(now: number): Promise<PurgeResult> {
    const projects = await this.ctx.db.kysely
      .selectFrom('projects')
      .select(['id', 'retention_days'])
      .orderBy('id')
      .execute();
    const total: PurgeResult = { runs: 0, steps: 0, batches: 0 };
    for (const p of projects) {
      if (this.abort.signal.aborted) break;
      let counted = { runs: 0, steps: 0 };
      const result = await purgeEndedBefore(this.ctx.db, {
        projectId: p.id,
        before: now - p.retention_days * DAY_MS,
        batchSize: this.batchSize,
        signal: this.abort.signal,
        // count per batch, so /metrics moves while a long pass is going on
        onBatch: (progress) => {
          this.countRuns(progress.runs - counted.runs);
          this.countSteps(progress.steps - counted.steps);
          counted = { runs: progress.runs, steps: progress.steps };
        },
        // open dashboards drop what retention deleted, as for a DELETE
        onDeleted: (runs) => {
          for (const r of runs)
            this.ctx.hub.publish({
              kind: 'run_deleted',
              projectId: r.projectId,
              runId: r.id,
              agentId: r.agentId,
            });
        },
        // leave the database to requests and the write path between batches
        pause: () => new Promise((resolve) => setTimeout(resolve, 20)),
      });
      // webhook deliveries go with the runs they told of (pings and agent events by their age)
      await this.ctx.db.kysely
        .deleteFrom('webhook_deliveries')
        .where('project_id', '=', p.id)
        .where('created_at', '<', now - p.retention_days * DAY_MS)
        .execute();
      total.runs += result.runs;
      total.steps += result.steps;
      total.batches += result.batches;
    }
    // deleted runs' ids take events again once nothing can still be recording them
    await this.ctx.db.kysely
      .deleteFrom('deleted_runs')
      .where('deleted_at', '<', now - DELETED_RUN_MEMORY_MS)
      .execute();
    // and workers not seen for a week are forgotten (each process start is a new one)
    await this.ctx.db.kysely
      .deleteFrom('workers')
      .where('last_seen_at', '<', now - WORKER_MEMORY_MS)
      .execute();
    return total;
  }
}

/** Deletes runs that ended more than the project's `retention_days` ago, in small batches. */
export function startRetention(ctx: AppContext, options: RetentionOptions = {}): Retention {
  const retention = new Retention(ctx, options.batchSize);
  const interval = options.intervalMs ?? DEFAULT_INTERVAL_MS;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const schedule = (delay: number) => {
    timer = setTimeout(() => {
      retention.runOnce().then(
        () => !stopped && schedule(interval),
        () => !stopped && schedule(interval),
      );
    }, delay);
    timer.unref();
  };
  schedule(options.firstDelayMs ?? DEFAULT_FIRST_DELAY_MS);
  ctx.onClose.push(async () => {
    stopped = true;
    clearTimeout(timer);
    await retention.stop();
  });
  return retention;
}
