import { sql } from 'kysely';
import type { Db } from '../db/database.js';
import { UnitOfWork, deleteRunRows } from '../ingest/unit-of-work.js';
import { RollupDeltas } from '../stats/rollup.js';

export interface PurgeOptions {
  /** Only this project's runs; every project when absent. */
  projectId?: string;
  /** Runs that ended strictly before this epoch ms are deleted. */
  before: number;
  /** Runs per transaction (default 500): small batches keep ingestion and reads going. */
  batchSize?: number;
  /** Count what would be deleted, delete nothing. */
  dryRun?: boolean;
  /** Called after each committed batch with the running totals. */
  onBatch?: (progress: PurgeResult) => void;
  /** Called after each committed batch with the runs it deleted (the server announces them). */
  onDeleted?: (runs: { projectId: string; id: string; agentId: string }[]) => void;
  /** Awaited between batches, so other work gets the database (default: one macrotask). */
  pause?: () => Promise<void>;
  /** Stops after the current batch. */
  signal?: AbortSignal;
}

export interface PurgeResult {
  runs: number;
  steps: number;
  batches: number;
}

export const DEFAULT_PURGE_BATCH = 500;

const nextTick = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Deletes finished runs (and their steps) that ended before `before`, in batches, each in
 * its own transaction that also takes the runs out of the rollup tables. Runs are locked
 * the way the write path locks them, and re-checked after locking, so a run that an event
 * touches meanwhile is never half deleted. Used by `runlog cleanup` and by the server's
 * background retention.
 * @example await purgeEndedBefore(db, { projectId: 'default', before: Date.now() - 30 * DAY_MS })
 */
export async function purgeEndedBefore(db: Db, opts: PurgeOptions): Promise<PurgeResult> {
  if (opts.dryRun) return countEndedBefore(db, opts);
  const batchSize = opts.batchSize ?? DEFAULT_PURGE_BATCH;
  const pause = opts.pause ?? nextTick;
  const total: PurgeResult = { runs: 0, steps: 0, batches: 0 };
  for (;;) {
    if (opts.signal?.aborted) break;
    const deleted = await db.kysely.transaction().execute(async (trx) => {
      let q = trx
        .selectFrom('runs')
        .select(['project_id', 'id'])
        .where('ended_at', 'is not', null)
        .where('ended_at', '<', opts.before);
      if (opts.projectId !== undefined) q = q.where('project_id', '=', opts.projectId);
      const candidates = await q.orderBy('ended_at').limit(batchSize).execute();
      if (candidates.length === 0) return undefined;
      const byProject = new Map<string, string[]>();
      for (const c of candidates) {
        const ids = byProject.get(c.project_id) ?? [];
        ids.push(c.id);
        byProject.set(c.project_id, ids);
      }
      const uow = new UnitOfWork(trx, db);
      const rollups = new RollupDeltas();
      let runs = 0;
      let steps = 0;
      const removed: { projectId: string; id: string; agentId: string }[] = [];
      for (const [projectId, ids] of byProject) {
        await uow.loadRuns(projectId, ids);
        const gone: string[] = [];
        for (const id of ids) {
          const row = uow.getRun(projectId, id);
          // an event may have reached the run between the scan and the lock
          if (!row || row.ended_at === null || row.ended_at >= opts.before) continue;
          rollups.change(row, undefined);
          gone.push(id);
          removed.push({ projectId, id, agentId: row.agent_id });
        }
        if (gone.length === 0) continue;
        const count = await deleteRunRows(trx, projectId, gone);
        steps += count.steps;
        runs += count.runs;
      }
      if (!rollups.empty) await rollups.flush(trx, db);
      return { runs, steps, scanned: candidates.length, removed };
    });
    if (!deleted) break;
    if (deleted.removed.length > 0) opts.onDeleted?.(deleted.removed);
    total.runs += deleted.runs;
    total.steps += deleted.steps;
    total.batches += 1;
    opts.onBatch?.({ ...total });
    // a full batch that deleted nothing would loop forever on the same candidates
    if (deleted.runs === 0 || deleted.scanned < batchSize) break;
    await pause();
  }
  if (total.runs > 0) await dropEmptyRollups(db, opts.before, opts.projectId);
  return total;
}

/** The rollup tables with the column of their time bucket. */
const ROLLUP_TABLES = [
  ['run_rollups', 'hour'],
  ['run_rollups_daily', 'day'],
  ['project_rollups', 'hour'],
  ['project_rollups_daily', 'day'],
] as const;
const HISTOGRAM_TABLES = [
  ['duration_histogram', 'hour'],
  ['duration_histogram_daily', 'day'],
  ['project_duration_histogram', 'hour'],
  ['project_duration_histogram_daily', 'day'],
] as const;

const MODEL_TABLES = [
  ['model_rollups', 'hour'],
  ['model_rollups_daily', 'day'],
] as const;

/**
 * Deletes the rollup rows a purge brought to zero: every run they counted is gone. Only
 * buckets that start before the cutoff can hold a purged run; a row that an event fills
 * again meanwhile is not zero, and one deleted just before an event is inserted again by
 * the event's upsert.
 */
async function dropEmptyRollups(db: Db, before: number, projectId?: string): Promise<void> {
  const inProject = projectId !== undefined ? sql`AND project_id = ${projectId}` : sql``;
  for (const [table, bucket] of ROLLUP_TABLES) {
    await sql`DELETE FROM ${sql.table(table)} WHERE ${sql.ref(bucket)} < ${before} ${inProject}
      AND runs = 0 AND duration_count = 0 AND duration_sum = 0 AND input_tokens = 0
      AND output_tokens = 0 AND cost_nanos = 0`.execute(db.kysely);
  }
  for (const [table, bucket] of HISTOGRAM_TABLES) {
    await sql`DELETE FROM ${sql.table(table)} WHERE ${sql.ref(bucket)} < ${before} ${inProject}
      AND runs = 0`.execute(db.kysely);
  }
  for (const [table, bucket] of MODEL_TABLES) {
    await sql`DELETE FROM ${sql.table(table)} WHERE ${sql.ref(bucket)} < ${before} ${inProject}
      AND runs = 0 AND calls = 0 AND input_tokens = 0 AND output_tokens = 0
      AND cost_nanos = 0`.execute(db.kysely);
  }
}

async function countEndedBefore(db: Db, opts: PurgeOptions): Promise<PurgeResult> {
  let runs = db.kysely
    .selectFrom('runs')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('ended_at', 'is not', null)
    .where('ended_at', '<', opts.before);
  let steps = db.kysely
    .selectFrom('steps')
    .innerJoin('runs', (j) =>
      j.onRef('runs.project_id', '=', 'steps.project_id').onRef('runs.id', '=', 'steps.run_id'),
    )
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('runs.ended_at', 'is not', null)
    .where('runs.ended_at', '<', opts.before);
  if (opts.projectId !== undefined) {
    runs = runs.where('project_id', '=', opts.projectId);
    steps = steps.where('runs.project_id', '=', opts.projectId);
  }
  const r = await runs.executeTakeFirstOrThrow();
  const s = await steps.executeTakeFirstOrThrow();
  return { runs: Number(r.n), steps: Number(s.n), batches: 0 };
}
