import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import type { z } from 'zod';
import { DEFAULT_RETENTION_DAYS, MAX_RETENTION_DAYS } from '../config.js';
import type { Db } from '../db/database.js';
import type { RunRow, StepRow } from '../db/schema.js';
import { UnitOfWork, ensureAgents, lockRuns } from '../ingest/unit-of-work.js';
import { upsertRows } from '../db/bulk.js';
import { DAY_MS, RollupDeltas } from '../stats/rollup.js';
import { ImportRun, fromImportedRun } from './record.js';

export interface ImportOptions {
  /** Import every run into this project instead of the one its line names. */
  projectId?: string;
  /** Runs per transaction (default 500). */
  batchSize?: number;
  /** A line that was not imported, with its 1-based number and why. */
  onReject?: (line: number, reason: string) => void;
  /** Called after each committed batch with the totals so far. */
  onProgress?: (progress: ImportResult) => void;
}

export interface ImportResult {
  lines: number;
  runs: number;
  steps: number;
  /** Of `runs`, those already in the database: now as the file has them. */
  existing: number;
  rejected: number;
  /**
   * Imported runs that ended longer ago than their project keeps finished runs (a project
   * that was there before the import): retention deletes them on its next pass.
   */
  expiring?: { projectId: string; runs: number; retentionDays: number }[];
}

interface Pending {
  run: RunRow;
  steps: StepRow[];
  /** The line carried a `steps` list, which replaces the run's stored steps. */
  hasSteps: boolean;
}

/**
 * Imports a JSONL export line by line, in batches. Each line is checked on its own: a bad
 * one is reported through `onReject` and skipped, the valid ones are imported. Rows are
 * written exactly as given (ids, times, status, rollups, costs) by upsert, and the stats
 * rollup tables move by the difference, so importing the same file twice changes nothing.
 * @example await importRuns(db, createReadStream('runs.jsonl'), { onReject: (n, why) => ... })
 */
export async function importRuns(
  db: Db,
  input: Readable,
  opts: ImportOptions = {},
): Promise<ImportResult> {
  const batchSize = opts.batchSize ?? 500;
  const result: ImportResult = { lines: 0, runs: 0, steps: 0, existing: 0, rejected: 0 };
  // projects this import creates: their retention grows to keep every run imported into them
  const created = new Set<string>();
  // runs imported, by project and the day they ended: what retention would delete is told
  const endedByDay = new Map<string, Map<number, number>>();
  let batch = new Map<string, Pending>();
  const flush = async () => {
    if (batch.size === 0) return;
    const items = [...batch.values()];
    for (const { run } of items) {
      if (run.ended_at === null) continue;
      let days = endedByDay.get(run.project_id);
      if (!days) endedByDay.set(run.project_id, (days = new Map()));
      const day = Math.floor(run.ended_at / DAY_MS);
      days.set(day, (days.get(day) ?? 0) + 1);
    }
    batch = new Map();
    result.existing += await writeBatch(db, items, created);
    result.runs += items.length;
    result.steps += items.reduce((n, p) => n + p.steps.length, 0);
    opts.onProgress?.({ ...result });
  };
  const lines = createInterface({ input, crlfDelay: Infinity });
  for await (const line of lines) {
    result.lines += 1;
    if (line.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      result.rejected += 1;
      opts.onReject?.(result.lines, 'not valid JSON');
      continue;
    }
    const parsed = ImportRun.safeParse(value);
    if (!parsed.success) {
      result.rejected += 1;
      opts.onReject?.(result.lines, describeIssue(parsed.error));
      continue;
    }
    const rows = fromImportedRun(parsed.data, opts.projectId);
    // the same run twice in one batch: the later line wins, as it would across batches
    batch.set(`${rows.run.project_id}\u0000${rows.run.id}`, rows);
    if (batch.size >= batchSize) await flush();
  }
  await flush();
  const expiring = await expiringRuns(db, endedByDay, created);
  if (expiring.length > 0) result.expiring = expiring;
  return result;
}

/** Per project that was there before, the imported runs its retention will delete. */
async function expiringRuns(
  db: Db,
  endedByDay: Map<string, Map<number, number>>,
  created: ReadonlySet<string>,
): Promise<NonNullable<ImportResult['expiring']>> {
  const expiring: NonNullable<ImportResult['expiring']> = [];
  for (const [projectId, days] of endedByDay) {
    if (created.has(projectId)) continue;
    const project = await db.kysely
      .selectFrom('projects')
      .select('retention_days')
      .where('id', '=', projectId)
      .executeTakeFirst();
    if (!project) continue;
    const cutoff = Math.floor((Date.now() - project.retention_days * DAY_MS) / DAY_MS);
    let runs = 0;
    for (const [day, n] of days) if (day < cutoff) runs += n;
    if (runs > 0) expiring.push({ projectId, runs, retentionDays: project.retention_days });
  }
  return expiring;
}

function describeIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid run';
  const path = issue.path.map(String).join('.');
  return path ? `${path}: ${issue.message}` : issue.message;
}

/**
 * Writes a batch of runs with their steps; answers how many of them were already there. On
 * PostgreSQL a live server may be writing the same runs: the batch locks them all first, in
 * the write path's order, and a deadlock or serialization failure runs it again.
 */
async function writeBatch(db: Db, items: Pending[], created: Set<string>): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await writeBatchOnce(db, items, created);
    } catch (err) {
      const code = (err as { code?: string } | null)?.code;
      if (attempt < 4 && (code === '40P01' || code === '40001')) continue;
      throw err;
    }
  }
}

async function writeBatchOnce(db: Db, items: Pending[], created: Set<string>): Promise<number> {
  let existing = 0;
  await db.kysely.transaction().execute(async (trx) => {
    const locked =
      db.dialect === 'postgres'
        ? await lockRuns(
            trx,
            items.map((p) => ({ projectId: p.run.project_id, id: p.run.id })),
          )
        : undefined;
    const byProject = new Map<string, Pending[]>();
    for (const p of items) {
      const list = byProject.get(p.run.project_id) ?? [];
      list.push(p);
      byProject.set(p.run.project_id, list);
    }
    const now = Date.now();
    // a restore must not delete itself: a project the import creates keeps its runs at least
    // as long as the oldest imported into it needs (a project already there keeps its setting)
    const keeps = new Map(
      [...byProject].map(([id, list]) => [id, retentionToKeep(list, now)] as const),
    );
    const inserted = await trx
      .insertInto('projects')
      .values(
        [...byProject.keys()].sort().map((id) => ({
          id,
          name: id === 'default' ? 'Default' : id,
          retention_days: keeps.get(id)!,
          created_at: now,
        })),
      )
      .onConflict((oc) => oc.column('id').doNothing())
      .returning('id')
      .execute();
    for (const { id } of inserted) created.add(id);
    for (const [id, days] of keeps) {
      if (!created.has(id)) continue;
      await trx
        .updateTable('projects')
        .set({ retention_days: days })
        .where('id', '=', id)
        .where('retention_days', '<', days)
        .execute();
    }
    // locks the runs the way the write path does, so a live server never interleaves
    const uow = new UnitOfWork(trx, db, locked);
    const rollups = new RollupDeltas();
    for (const [projectId, list] of byProject) {
      const ids = list.map((p) => p.run.id);
      await uow.loadRuns(projectId, ids);
      for (const p of list) {
        const before = uow.getRun(projectId, p.run.id);
        if (before) existing += 1;
        rollups.change(before, p.run);
      }
      // an import restores: a run deleted lately takes events again
      for (let i = 0; i < ids.length; i += 500) {
        await trx
          .deleteFrom('deleted_runs')
          .where('project_id', '=', projectId)
          .where('run_id', 'in', ids.slice(i, i + 500))
          .execute();
      }
      await ensureAgents(
        db,
        trx,
        list.map((p) => p.run),
      );
      await upsertRows(
        db,
        trx,
        'runs',
        list.map((p) => p.run),
        ['project_id', 'id'],
      );
      // a line with its steps replaces them; one without (as the API answers a run) keeps them
      const replaced = list.filter((p) => p.hasSteps).map((p) => p.run.id);
      for (let i = 0; i < replaced.length; i += 500) {
        await trx
          .deleteFrom('steps')
          .where('project_id', '=', projectId)
          .where('run_id', 'in', replaced.slice(i, i + 500))
          .execute();
      }
      const steps = list.flatMap((p) => p.steps);
      await upsertRows(db, trx, 'steps', steps, ['project_id', 'run_id', 'id']);
    }
    if (!rollups.empty) await rollups.flush(trx, db);
  });
  return existing;
}

/**
 * The days a new project must keep finished runs for these runs to stay: the default, or
 * more when the oldest ended earlier (a day to spare), at most the longest retention there is.
 */
function retentionToKeep(list: readonly Pending[], now: number): number {
  let oldest = now;
  for (const p of list)
    if (p.run.ended_at !== null && p.run.ended_at < oldest) oldest = p.run.ended_at;
  const days = Math.ceil((now - oldest) / DAY_MS) + 1;
  return Math.min(MAX_RETENTION_DAYS, Math.max(DEFAULT_RETENTION_DAYS, days));
}
