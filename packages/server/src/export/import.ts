import { constants } from 'node:buffer';
import type { Readable } from 'node:stream';
import type { z } from 'zod';
import { MAX_INT32 } from '@runlog/core';
import { DEFAULT_RETENTION_DAYS, MAX_RETENTION_DAYS } from '../config.js';
import type { Db } from '../db/database.js';
import type { AgentRow, ModelPriceRow, RunRow, ScoreRow, StepRow } from '../db/schema.js';
import { UnitOfWork, ensureAgents, lockRuns } from '../ingest/unit-of-work.js';
import { upsertRows } from '../db/bulk.js';
import { DAY_MS, RollupDeltas } from '../stats/rollup.js';
import { unattributedModels } from '../stats/models.js';
import { ImportRun, fromImportedRun } from './record.js';
import {
  ImportSetting,
  fromImportedAgent,
  fromImportedPrice,
  isSettingLine,
  type ImportedProject,
} from './settings.js';

export interface ImportOptions {
  /** Import every run into this project instead of the one its line names. */
  projectId?: string;
  /** Runs per transaction (default 500). */
  batchSize?: number;
  /**
   * Bytes a line may have (default: the longest text Node holds); a longer one is refused as
   * a bad line is, and the import goes on past it.
   */
  maxLineBytes?: number;
  /** A line that was not imported, with its 1-based number and why. */
  onReject?: (line: number, reason: string) => void;
  /** Called after each committed batch with the totals so far. */
  onProgress?: (progress: ImportResult) => void;
}

export interface ImportResult {
  lines: number;
  runs: number;
  steps: number;
  /** Agents and price overrides from the export's settings lines. */
  agents: number;
  prices: number;
  /** Of `runs`, those already in the database: now as the file has them. */
  existing: number;
  rejected: number;
  /**
   * Imported runs that ended longer ago than their project keeps finished runs (a project
   * that was there before the import): retention deletes them on its next pass.
   */
  expiring?: { projectId: string; runs: number; retentionDays: number }[];
  /** The projects the import wrote into, sorted. */
  projects: string[];
  /** Of `projects`, those the import created: no key reaches them yet. */
  created: string[];
}

interface Pending {
  run: RunRow;
  steps: StepRow[];
  /**
   * The line carried a whole `steps` list, which replaces the run's stored steps (a first
   * page of them, with `steps_next_cursor`, is written over the stored ones instead).
   */
  hasSteps: boolean;
  /** The line's `score_list`, which replaces the run's stored scores; absent, they stay. */
  scores: ScoreRow[] | undefined;
}

/** Settings lines read since the last batch was written, each in the project it goes to. */
interface PendingSettings {
  projects: Map<string, ImportedProject>;
  agents: Map<string, AgentRow>;
  prices: Map<string, ModelPriceRow>;
}

/** What the import knows of the projects it writes into, across batches. */
interface ProjectState {
  /** Projects this import created: their settings come from the file. */
  created: Set<string>;
  /** The file's settings line of a project, when it had one. */
  lines: Map<string, ImportedProject>;
  /** Every project a batch wrote into. */
  written: Set<string>;
}

const noSettings = (): PendingSettings => ({
  projects: new Map(),
  agents: new Map(),
  prices: new Map(),
});

/**
 * Imports a JSONL export line by line, in batches. Each line is checked on its own: a bad
 * one is reported through `onReject` and skipped, the valid ones are imported. Rows are
 * written exactly as given (ids, times, status, rollups, costs) by upsert, and the stats
 * rollup tables move by the difference, so importing the same file twice changes nothing.
 * Settings lines (`kind`: project, agent, price) restore agents and price overrides as the
 * file has them; a project's name and retention only into a project the import creates.
 * @example await importRuns(db, createReadStream('runs.jsonl'), { onReject: (n, why) => ... })
 */
export async function importRuns(
  db: Db,
  input: Readable,
  opts: ImportOptions = {},
): Promise<ImportResult> {
  const batchSize = opts.batchSize ?? 500;
  const result: ImportResult = {
    lines: 0,
    runs: 0,
    steps: 0,
    agents: 0,
    prices: 0,
    existing: 0,
    rejected: 0,
    projects: [],
    created: [],
  };
  // projects this import creates: their retention grows to keep every run imported into them
  const projects: ProjectState = { created: new Set(), lines: new Map(), written: new Set() };
  // runs imported, by project and the day they ended: what retention would delete is told
  const endedByDay = new Map<string, Map<number, number>>();
  let batch = new Map<string, Pending>();
  let settings = noSettings();
  const pendingSettings = () =>
    settings.projects.size + settings.agents.size + settings.prices.size;
  const flush = async () => {
    if (batch.size === 0 && pendingSettings() === 0) return;
    const items = [...batch.values()];
    for (const { run } of items) {
      if (run.ended_at === null) continue;
      let days = endedByDay.get(run.project_id);
      if (!days) endedByDay.set(run.project_id, (days = new Map()));
      const day = Math.floor(run.ended_at / DAY_MS);
      days.set(day, (days.get(day) ?? 0) + 1);
    }
    const written = settings;
    batch = new Map();
    settings = noSettings();
    result.existing += await writeBatch(db, items, written, projects);
    result.agents += written.agents.size;
    result.prices += written.prices.size;
    result.runs += items.length;
    result.steps += items.reduce((n, p) => n + p.steps.length, 0);
    opts.onProgress?.({ ...result });
  };
  for await (const line of linesOf(input, opts.maxLineBytes ?? constants.MAX_STRING_LENGTH)) {
    result.lines += 1;
    if (typeof line !== 'string') {
      result.rejected += 1;
      opts.onReject?.(
        result.lines,
        `${line.bytes} bytes, longer than a line can be read (${line.head}...)`,
      );
      continue;
    }
    // a file saved by an editor that marks its text as UTF-8 (Notepad) starts with a BOM
    const text = result.lines === 1 ? line.replace(/^\uFEFF/, '') : line;
    if (text.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      result.rejected += 1;
      opts.onReject?.(result.lines, 'not valid JSON');
      continue;
    }
    if (isSettingLine(value)) {
      const setting = ImportSetting.safeParse(value);
      if (!setting.success) {
        result.rejected += 1;
        opts.onReject?.(result.lines, describeIssue(setting.error));
        continue;
      }
      addSetting(settings, setting.data, opts.projectId);
      if (batch.size + pendingSettings() >= batchSize) await flush();
      continue;
    }
    const parsed = ImportRun.safeParse(value);
    if (!parsed.success) {
      result.rejected += 1;
      opts.onReject?.(result.lines, describeIssue(parsed.error));
      continue;
    }
    const tooLarge = db.dialect === 'postgres' ? pastInt32(parsed.data) : undefined;
    if (tooLarge) {
      result.rejected += 1;
      opts.onReject?.(result.lines, `${tooLarge}: at most ${MAX_INT32} on PostgreSQL`);
      continue;
    }
    const rows = fromImportedRun(parsed.data, opts.projectId);
    // the same run twice in one batch: the later line wins, as it would across batches
    batch.set(`${rows.run.project_id}\u0000${rows.run.id}`, rows);
    if (batch.size + pendingSettings() >= batchSize) await flush();
  }
  await flush();
  const expiring = await expiringRuns(db, endedByDay, projects.created);
  if (expiring.length > 0) result.expiring = expiring;
  result.projects = [...projects.written].sort();
  result.created = [...projects.created].sort();
  return result;
}

/** A line too long to be read as text: its size and its first characters. */
interface LongLine {
  bytes: number;
  head: string;
}

/**
 * The lines of `input` (`\n` or `\r\n` ends one), each as text, or as a `LongLine` when it
 * has more than `maxBytes`: one run's line may be larger than the longest string there can
 * be (readline then threw, ending the import at it), and the lines after it still count.
 */
async function* linesOf(input: Readable, maxBytes: number): AsyncGenerator<string | LongLine> {
  let parts: Buffer[] = [];
  let bytes = 0;
  let head = '';
  let last = 0;
  const add = (part: Buffer) => {
    if (part.length === 0) return;
    // shown in a terminal: a damaged file's control characters are not sent to it
    if (bytes === 0)
      head = part
        .subarray(0, 100)
        .toString('utf8')
        .replace(/\p{Cc}/gu, '?');
    bytes += part.length;
    last = part[part.length - 1]!;
    if (bytes <= maxBytes) parts.push(part);
    else parts = [];
  };
  const take = (): string | LongLine => {
    const line =
      bytes > maxBytes
        ? { bytes: last === 0x0d ? bytes - 1 : bytes, head }
        : Buffer.concat(parts).toString('utf8').replace(/\r$/, '');
    parts = [];
    bytes = 0;
    return line;
  };
  for await (const chunk of input) {
    let rest = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    // a UTF-8 character never holds the byte of \n: a line ends on one byte, whatever its text
    for (let at = rest.indexOf(0x0a); at !== -1; at = rest.indexOf(0x0a)) {
      add(rest.subarray(0, at));
      yield take();
      rest = rest.subarray(at + 1);
    }
    add(rest);
  }
  if (bytes > 0) yield take();
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
    // retention cuts at an instant: whole days before its day are counted here, and the part
    // of that day before it is read back (the runs there are the imported ones, as runs past
    // retention that were already stored are gone at its next pass)
    const cutoff = Date.now() - project.retention_days * DAY_MS;
    const cutoffDay = Math.floor(cutoff / DAY_MS);
    let runs = 0;
    for (const [day, n] of days) if (day < cutoffDay) runs += n;
    if (days.has(cutoffDay)) {
      const { n } = await db.kysely
        .selectFrom('runs')
        .select((eb) => eb.fn.countAll<number | string>().as('n'))
        .where('project_id', '=', projectId)
        .where('ended_at', '>=', cutoffDay * DAY_MS)
        .where('ended_at', '<', cutoff)
        .executeTakeFirstOrThrow();
      runs += Math.min(Number(n), days.get(cutoffDay)!);
    }
    if (runs > 0) expiring.push({ projectId, runs, retentionDays: project.retention_days });
  }
  return expiring;
}

/** Files a settings line under the project it goes to; a later line of the same thing wins. */
function addSetting(into: PendingSettings, line: ImportSetting, projectId?: string): void {
  const now = Date.now();
  if (line.kind === 'project') {
    into.projects.set(projectId ?? line.id, line);
  } else if (line.kind === 'agent') {
    const row = fromImportedAgent(line, projectId ?? line.project_id);
    into.agents.set(`${row.project_id}\u0000${row.id}`, row);
  } else {
    const row = fromImportedPrice(line, projectId ?? line.project_id, now);
    into.prices.set(`${row.project_id}\u0000${row.model}`, row);
  }
}

/** The field of an imported run past PostgreSQL's `integer` columns, if one is. */
function pastInt32(run: ImportRun): string | undefined {
  if (run.attempt > MAX_INT32) return 'attempt';
  const i = run.steps?.findIndex((s) => s.seq > MAX_INT32) ?? -1;
  return i >= 0 ? `steps.${i}.seq` : undefined;
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
async function writeBatch(
  db: Db,
  items: Pending[],
  settings: PendingSettings,
  projects: ProjectState,
): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await writeBatchOnce(db, items, settings, projects);
    } catch (err) {
      const code = (err as { code?: string } | null)?.code;
      if (attempt < 4 && (code === '40P01' || code === '40001')) continue;
      throw err;
    }
  }
}

async function writeBatchOnce(
  db: Db,
  items: Pending[],
  settings: PendingSettings,
  projects: ProjectState,
): Promise<number> {
  let existing = 0;
  const { created } = projects;
  for (const [id, line] of settings.projects) projects.lines.set(id, line);
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
    const projectIds = new Set([
      ...byProject.keys(),
      ...settings.projects.keys(),
      ...[...settings.agents.values()].map((a) => a.project_id),
      ...[...settings.prices.values()].map((p) => p.project_id),
    ]);
    for (const id of projectIds) projects.written.add(id);
    // a restore must not delete itself: a project the import creates keeps its runs at least
    // as long as the oldest imported into it needs (a project already there keeps its setting)
    const keeps = new Map(
      [...projectIds].map(
        (id) =>
          [
            id,
            retentionToKeep(
              byProject.get(id) ?? [],
              now,
              projects.lines.get(id)?.retention_days ?? DEFAULT_RETENTION_DAYS,
            ),
          ] as const,
      ),
    );
    const inserted = await trx
      .insertInto('projects')
      .values(
        [...projectIds].sort().map((id) => {
          const line = projects.lines.get(id);
          return {
            id,
            name: line?.name ?? (id === 'default' ? 'Default' : id),
            retention_days: keeps.get(id)!,
            created_at: line?.created_at ?? now,
          };
        }),
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
    // a settings line after the runs that created its project (not how exports are written)
    for (const [id, line] of settings.projects) {
      if (!created.has(id)) continue;
      await trx.updateTable('projects').set({ name: line.name }).where('id', '=', id).execute();
    }
    // agents and price overrides as the file has them, in a stable order (no deadlock with a
    // live server's writes on PostgreSQL)
    const byKey = <T extends { project_id: string }>(rows: Map<string, T>) =>
      [...rows].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, row]) => row);
    await upsertRows(db, trx, 'agents', byKey(settings.agents), ['project_id', 'id']);
    await upsertRows(db, trx, 'model_prices', byKey(settings.prices), ['project_id', 'model']);
    // locks the runs the way the write path does, so a live server never interleaves
    const uow = new UnitOfWork(trx, db, locked);
    const rollups = new RollupDeltas();
    for (const [projectId, list] of byProject) {
      const ids = list.map((p) => p.run.id);
      await uow.loadRuns(projectId, ids);
      for (const p of list) {
        const before = uow.getRun(projectId, p.run.id);
        if (before) existing += 1;
        // a line without steps keeps the stored ones, and what they used
        // (with none stored, its totals count under no model: the models sum to the totals)
        if (!p.hasSteps) p.run.models = before?.models ?? unattributedModels(p.run);
        // a line without its scores keeps the stored ones
        if (!p.scores) p.run.scores = before?.scores ?? '{}';
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
      // the same for scores: a line with them replaces the stored ones
      const rescored = list.filter((p) => p.scores).map((p) => p.run.id);
      for (let i = 0; i < rescored.length; i += 500) {
        await trx
          .deleteFrom('scores')
          .where('project_id', '=', projectId)
          .where('run_id', 'in', rescored.slice(i, i + 500))
          .execute();
      }
      const scores = list.flatMap((p) => p.scores ?? []);
      await upsertRows(db, trx, 'scores', scores, ['project_id', 'run_id', 'id']);
    }
    if (!rollups.empty) await rollups.flush(trx, db);
  });
  return existing;
}

/**
 * The days a new project must keep finished runs for these runs to stay: `floor` (the
 * file's setting, or the default), or more when the oldest ended earlier (a day to spare), at
 * most the longest retention there is.
 */
function retentionToKeep(list: readonly Pending[], now: number, floor: number): number {
  let oldest = now;
  for (const p of list)
    if (p.run.ended_at !== null && p.run.ended_at < oldest) oldest = p.run.ended_at;
  const days = list.length > 0 ? Math.ceil((now - oldest) / DAY_MS) + 1 : 0;
  return Math.min(MAX_RETENTION_DAYS, Math.max(floor, days));
}
