import { sql, type Kysely } from 'kysely';
import type { Db } from '../db/database.js';
import type { Database, RunRow, ScoreRow, StepRow } from '../db/schema.js';
import { saturated, upsertRows, writeRows } from '../db/bulk.js';
import { prepared } from '../db/prepared.js';
import { advisoryLocks, lockId, stepKeysIn } from '../db/dialect.js';
import { newAgentRow } from '../agents/agents.repository.js';
import type { RollupDeltas } from '../stats/rollup.js';
import {
  addModelUsage,
  decodeModels,
  encodeModels,
  sameModelUsage,
  stepModelUsage,
  type ModelUsage,
} from '../stats/models.js';
import { UNKNOWN_AGENT, stepContribution, stepEndedWithRun } from './apply.js';
import { MAX_SCORES_PER_RUN, isTerminalStatus, type RunStatus } from '@runlog/core';
import { countScores, findScore, runScoresSummary } from '../scores/scores.js';
import { endedForRetry, policyRetries } from '../control/auto-retry.js';

interface Tracked<T> {
  before: T | undefined;
  current: T | undefined;
}

const runById = prepared((db, $) =>
  db.selectFrom('runs').selectAll().where('project_id', '=', $(0)).where('id', '=', $(1)),
);
const stepById = prepared((db, $) =>
  db
    .selectFrom('steps')
    .selectAll()
    .where('project_id', '=', $(0))
    .where('run_id', '=', $(1))
    .where('id', '=', $(2)),
);
const createAgent = prepared((db, $) =>
  db
    .insertInto('agents')
    .values(newAgentRow($(0), $(1), $(2), $(3)))
    .onConflict((oc) => oc.columns(['project_id', 'id']).doNothing()),
);

const runningStepIds = prepared((db, $) =>
  db
    .selectFrom('steps')
    .select(['run_id', 'id'])
    .where('project_id', '=', $(0))
    .where('run_id', '=', $(1))
    .where('status', '=', 'running'),
);

const agentTimeout = prepared((db, $) =>
  db
    .selectFrom('agents')
    .select('timeout_ms')
    .where('project_id', '=', $(0))
    .where('id', '=', $(1)),
);

const deletedSince = prepared((db, $) =>
  db
    .selectFrom('deleted_runs')
    .select('run_id')
    .where('project_id', '=', $(0))
    .where('run_id', '=', $(1))
    .where('deleted_at', '>=', $(2)),
);

/**
 * How long a deleted run's id refuses events: an agent still running the run goes on sending
 * its steps and its end (from a spool, after an outage), and they must not bring it back.
 */
export const DELETED_RUN_MEMORY_MS = 24 * 60 * 60_000;

const runKey = (projectId: string, id: string) => `${projectId}\u0000${id}`;
const stepKey = (projectId: string, runId: string, id: string) =>
  `${projectId}\u0000${runId}\u0000${id}`;

/**
 * The runs and steps one transaction reads and changes, held in memory and written once at
 * the end. Step writes update their run's rollups (counts, tokens, cost) here, in the same
 * transaction; run writes update the stats rollup tables.
 *
 * On PostgreSQL, `loadRuns` takes a transaction-scoped advisory lock per run id, which also
 * covers runs that do not exist yet. Each call locks its ids in a fixed order, and a group
 * commit first locks every run its recording events name, in that order (`lockRuns`), so
 * two server instances lock them in the same order. A control change locks its runs when it
 * loads them; should that make a deadlock (40P01), the writer runs the group again.
 */
const lockKey = (projectId: string, id: string) => `${projectId}/${id}`;

/**
 * Which of these runs were deleted lately (`DELETED_RUN_MEMORY_MS`), by their `lockRuns`
 * keys: one query for a whole group commit instead of one per unit of work.
 */
export async function deletedAmong(
  trx: Kysely<Database>,
  runs: readonly { projectId: string; id: string }[],
): Promise<Set<string>> {
  const deleted = new Set<string>();
  const since = Date.now() - DELETED_RUN_MEMORY_MS;
  const byProject = new Map<string, string[]>();
  for (const r of runs) {
    const ids = byProject.get(r.projectId);
    if (ids) ids.push(r.id);
    else byProject.set(r.projectId, [r.id]);
  }
  for (const [projectId, ids] of byProject) {
    for (let i = 0; i < ids.length; i += 500) {
      const rows = await trx
        .selectFrom('deleted_runs')
        .select('run_id')
        .where('project_id', '=', projectId)
        .where('run_id', 'in', ids.slice(i, i + 500))
        .where('deleted_at', '>=', since)
        .execute();
      for (const r of rows) deleted.add(lockKey(projectId, r.run_id));
    }
  }
  return deleted;
}

/**
 * PostgreSQL: takes the transaction-scoped advisory locks of these runs in one fixed order,
 * and answers their keys, for the units of work of the transaction (`locked`), which then
 * do not ask for them again.
 */
export async function lockRuns(
  trx: Kysely<Database>,
  runs: readonly { projectId: string; id: string }[],
): Promise<ReadonlySet<string>> {
  const keys = new Set(runs.map((r) => lockKey(r.projectId, r.id)));
  await advisoryLocks(trx, keys);
  return keys;
}

/**
 * PostgreSQL: takes, without waiting, the advisory locks of the first `want` of these runs
 * (in the order given) that no other transaction holds, trying no further than it needs:
 * answers their ids and how many of `ids` it went through. A claim picks its runs this way:
 * locking the rows first (FOR UPDATE) and the advisory locks after, the reverse of every
 * other writer, deadlocked against them on several instances; and locking more than it
 * takes would turn other instances' claims away empty-handed until it commits.
 */
export async function tryLockRuns(
  trx: Kysely<Database>,
  projectId: string,
  ids: readonly string[],
  want: number,
): Promise<{ locked: string[]; tried: number }> {
  if (ids.length === 0 || want <= 0) return { locked: [], tried: 0 };
  const keys = ids.map((id) => lockKey(projectId, id));
  // a plain scan of unnest, no sort: rows come (and locks are tried) in order, and the LIMIT
  // stops trying once it has `want` of them
  const res = await sql<{
    n: number | string;
  }>`SELECT n FROM unnest(${keys}::text[]) WITH ORDINALITY AS t(k, n) WHERE pg_try_advisory_xact_lock(${lockId(sql.ref('k'))}) LIMIT ${want}`.execute(
    trx,
  );
  const at = res.rows.map((r) => Number(r.n) - 1).sort((a, b) => a - b);
  const locked = at.map((i) => ids[i]!);
  return { locked, tried: locked.length < want ? ids.length : at[at.length - 1]! + 1 };
}

export class UnitOfWork {
  private readonly runs = new Map<string, Tracked<RunRow>>();
  private readonly steps = new Map<string, Tracked<StepRow>>();
  private readonly deletedRuns: RunRow[] = [];
  /** Usage by model of runs whose steps changed it, decoded until `flush` (`stats/models.ts`). */
  private readonly usage = new Map<string, ModelUsage>();
  /** Ended runs whose stored steps `closeStepsOfEndedRuns` already looked up. */
  private readonly sweptRuns = new Set<string>();
  private readonly scores = new Map<string, Tracked<ScoreRow>>();
  /** Per run: how many scores it holds as stored (read once), and what this unit adds. */
  private readonly storedScoreCounts = new Map<string, number>();
  private readonly scoreDeltas = new Map<string, number>();
  /** Runs whose scores changed: their summary (`runs.scores`) is read again at flush. */
  private readonly scoredRuns = new Set<string>();

  constructor(
    readonly trx: Kysely<Database>,
    readonly db: Db,
    /** Runs this transaction locked already, outside any savepoint (`lockRuns`). */
    private readonly locked: ReadonlySet<string> = new Set(),
    /**
     * Which of the locked runs were deleted lately, looked up for all of them at once
     * (`deletedAmong`) the first time one is asked about: `deletedLately` then asks nothing
     * more about those.
     */
    private readonly lockedDeleted?: () => Promise<ReadonlySet<string>>,
  ) {}

  /** Locks (PostgreSQL) and loads the given runs of a project. */
  async loadRuns(projectId: string, ids: Iterable<string>): Promise<void> {
    const missing = [...new Set(ids)].filter((id) => !this.runs.has(runKey(projectId, id))).sort();
    if (missing.length === 0) return;
    if (this.db.dialect === 'postgres') {
      const unlocked = missing.filter((id) => !this.locked.has(lockKey(projectId, id)));
      await lockRuns(
        this.trx,
        unlocked.map((id) => ({ projectId, id })),
      );
    }
    if (missing.length === 1 || this.db.sqlite) {
      // one indexed lookup per run: on SQLite a reused statement, no round trips to save
      for (const id of missing) {
        const [row] = await runById(this.db, this.trx, projectId, id);
        this.runs.set(runKey(projectId, id), { before: row, current: row });
      }
      return;
    }
    for (let i = 0; i < missing.length; i += 500) {
      const chunk = missing.slice(i, i + 500);
      const rows = await this.trx
        .selectFrom('runs')
        .selectAll()
        .where('project_id', '=', projectId)
        .where('id', 'in', chunk)
        .execute();
      const found = new Map(rows.map((r) => [r.id, r]));
      for (const id of chunk) {
        const row = found.get(id);
        this.runs.set(runKey(projectId, id), { before: row, current: row });
      }
    }
  }

  /**
   * Which of these loaded runs are absent because they were deleted lately
   * (`DELETED_RUN_MEMORY_MS`): events naming them must not create them again.
   */
  async deletedLately(projectId: string, ids: Iterable<string>): Promise<Set<string>> {
    const deleted = new Set<string>();
    const absent: string[] = [];
    for (const id of new Set(ids)) {
      const t = this.runs.get(runKey(projectId, id));
      if (!t || t.current !== undefined) continue;
      // deleted in this unit of work, or never stored: then maybe deleted earlier
      if (t.before !== undefined) deleted.add(id);
      else if (this.lockedDeleted && this.locked.has(lockKey(projectId, id))) {
        if ((await this.lockedDeleted()).has(lockKey(projectId, id))) deleted.add(id);
      } else absent.push(id);
    }
    if (absent.length === 0) return deleted;
    if (absent.length === 1 || this.db.sqlite) {
      // one indexed lookup per run: on SQLite a reused statement, no round trips to save
      const since = Date.now() - DELETED_RUN_MEMORY_MS;
      for (const id of absent) {
        const rows = await deletedSince(this.db, this.trx, projectId, id, since);
        if (rows.length > 0) deleted.add(id);
      }
      return deleted;
    }
    const found = await deletedAmong(
      this.trx,
      absent.map((id) => ({ projectId, id })),
    );
    for (const id of absent) if (found.has(lockKey(projectId, id))) deleted.add(id);
    return deleted;
  }

  /** Loads the given steps (runs must be loaded first). */
  async loadSteps(
    projectId: string,
    keys: Iterable<{ run_id: string; id: string }>,
  ): Promise<void> {
    const wanted = new Map<string, { run_id: string; id: string }>();
    for (const k of keys) {
      const key = stepKey(projectId, k.run_id, k.id);
      if (this.steps.has(key) || wanted.has(key)) continue;
      // a run not yet stored has no stored steps: a step arriving first creates its run
      if (this.runs.get(runKey(projectId, k.run_id))?.before === undefined) {
        this.steps.set(key, { before: undefined, current: undefined });
      } else {
        wanted.set(key, k);
      }
    }
    if (wanted.size === 0) return;
    if (this.db.sqlite) {
      // one indexed lookup per step through a reused statement: no round trips to save
      for (const [key, k] of wanted) {
        const [row] = await stepById(this.db, this.trx, projectId, k.run_id, k.id);
        this.steps.set(key, { before: row, current: row });
      }
      return;
    }
    // one query per 500 steps, whatever runs they belong to
    const all = [...wanted.values()];
    for (let i = 0; i < all.length; i += 500) {
      const chunk = all.slice(i, i + 500);
      const rows = await this.trx
        .selectFrom('steps')
        .selectAll()
        .where('project_id', '=', projectId)
        .where(stepKeysIn(chunk))
        .execute();
      const found = new Map(rows.map((r) => [stepKey(projectId, r.run_id, r.id), r]));
      for (const k of chunk) {
        const key = stepKey(projectId, k.run_id, k.id);
        const row = found.get(key);
        this.steps.set(key, { before: row, current: row });
      }
    }
  }

  /**
   * Loads the given scores (runs must be loaded first). A `fresh` one has an id this server
   * just made (`newId`), which nothing stored holds: it is not looked up.
   */
  async loadScores(
    projectId: string,
    keys: Iterable<{ run_id: string; id: string; fresh?: boolean }>,
  ): Promise<void> {
    for (const k of keys) {
      const key = stepKey(projectId, k.run_id, k.id);
      if (this.scores.has(key)) continue;
      // a run not yet stored has no stored scores
      const row =
        k.fresh || this.runs.get(runKey(projectId, k.run_id))?.before === undefined
          ? undefined
          : await findScore(this.db, this.trx, projectId, k.run_id, k.id);
      this.scores.set(key, { before: row, current: row });
    }
  }

  getScore(projectId: string, runId: string, id: string): ScoreRow | undefined {
    const t = this.scores.get(stepKey(projectId, runId, id));
    if (!t) throw new Error(`score ${id} was not loaded in this unit of work`);
    return t.current;
  }

  /**
   * Stores a score (new, or replacing the one of its id), its run's summary following at
   * flush. A new score of a run holding `MAX_SCORES_PER_RUN` already is not stored: `false`.
   */
  async putScore(row: ScoreRow): Promise<boolean> {
    const t = this.scores.get(stepKey(row.project_id, row.run_id, row.id));
    if (!t) throw new Error(`score ${row.id} was not loaded in this unit of work`);
    const rk = runKey(row.project_id, row.run_id);
    if (!t.current) {
      if ((await this.scoreCount(row.project_id, row.run_id)) >= MAX_SCORES_PER_RUN) return false;
      this.scoreDeltas.set(rk, (this.scoreDeltas.get(rk) ?? 0) + 1);
    }
    t.current = row;
    this.scoredRuns.add(rk);
    return true;
  }

  /** Deletes a loaded score at flush; `false` when there is none. */
  deleteScore(projectId: string, runId: string, id: string): boolean {
    const t = this.scores.get(stepKey(projectId, runId, id));
    if (!t?.current) return false;
    t.current = undefined;
    const rk = runKey(projectId, runId);
    this.scoreDeltas.set(rk, (this.scoreDeltas.get(rk) ?? 0) - 1);
    this.scoredRuns.add(rk);
    return true;
  }

  /** How many scores a run holds, with this unit's changes. */
  private async scoreCount(projectId: string, runId: string): Promise<number> {
    const rk = runKey(projectId, runId);
    let stored = this.storedScoreCounts.get(rk);
    if (stored === undefined) {
      stored =
        this.runs.get(rk)?.before === undefined
          ? 0
          : await countScores(this.db, this.trx, projectId, runId);
      this.storedScoreCounts.set(rk, stored);
    }
    return stored + (this.scoreDeltas.get(rk) ?? 0);
  }

  /**
   * Writes the scores that changed, and the summary (`runs.scores`) of each run they belong
   * to, read back from the table: a score replaced or deleted moves it exactly. The scores of
   * a run deleted here go with it.
   */
  private async flushScores(): Promise<void> {
    if (this.scoredRuns.size === 0) return;
    const upserts: ScoreRow[] = [];
    const deletes: ScoreRow[] = [];
    for (const t of this.scores.values()) {
      if (t.current === t.before) continue;
      const row = (t.current ?? t.before)!;
      if (!this.runs.get(runKey(row.project_id, row.run_id))?.current) continue;
      if (t.current) upserts.push(t.current);
      else deletes.push(t.before!);
    }
    await upsertRows(this.db, this.trx, 'scores', upserts, ['project_id', 'run_id', 'id']);
    for (const row of deletes) {
      await this.trx
        .deleteFrom('scores')
        .where('project_id', '=', row.project_id)
        .where('run_id', '=', row.run_id)
        .where('id', '=', row.id)
        .execute();
    }
    const now = Date.now();
    for (const rk of this.scoredRuns) {
      const t = this.runs.get(rk);
      if (!t?.current) continue;
      const scores = await runScoresSummary(this.db, this.trx, t.current.project_id, t.current.id);
      // written even when the summary stays (a comment changed): a run_update tells pages
      // showing the run's scores to read them again
      if (t.current === t.before) t.current = { ...t.current };
      t.current.scores = scores;
      // a run_update listeners take: never older than the row it replaces
      t.current.updated_at = Math.max(t.current.updated_at, now, (t.before?.updated_at ?? 0) + 1);
    }
    for (const [rk, delta] of this.scoreDeltas) {
      const stored = this.storedScoreCounts.get(rk);
      if (stored !== undefined) this.storedScoreCounts.set(rk, stored + delta);
    }
    this.scoreDeltas.clear();
    this.scoredRuns.clear();
    for (const t of this.scores.values()) t.before = t.current;
  }

  /**
   * The retries agents' retry policies queue for the runs this unit failed or timed out
   * (`endedForRetry`): in the same transaction as the end, so an acknowledged failure never
   * loses its retry, and a run that ends once (a terminal state stays) is retried once.
   */
  private async queuePolicyRetries(): Promise<void> {
    const ended: RunRow[] = [];
    for (const t of this.runs.values())
      if (t.current !== t.before && endedForRetry(t.before, t.current)) ended.push(t.current!);
    if (ended.length === 0) return;
    for (const row of await policyRetries(this.trx, ended, Date.now())) {
      this.putNewRun(row);
      this.policyRetried.set(runKey(row.project_id, row.retry_of!), row);
    }
  }

  /** The retries `queuePolicyRetries` queued, by the run each retries (`runKey`). */
  private readonly policyRetried = new Map<string, RunRow>();

  getRun(projectId: string, id: string): RunRow | undefined {
    const t = this.runs.get(runKey(projectId, id));
    if (!t) throw new Error(`run ${id} was not loaded in this unit of work`);
    return t.current;
  }

  /**
   * Adds a run under an id this server just generated (`newId`), which nothing stored can
   * hold: no lookup, no lock.
   */
  putNewRun(row: RunRow): void {
    const key = runKey(row.project_id, row.id);
    if (this.runs.has(key)) throw new Error(`run ${row.id} is already in this unit of work`);
    this.runs.set(key, { before: undefined, current: row });
  }

  putRun(row: RunRow): void {
    const key = runKey(row.project_id, row.id);
    const t = this.runs.get(key);
    if (!t) throw new Error(`run ${row.id} was not loaded in this unit of work`);
    t.current = row;
  }

  /**
   * Deletes a loaded run and its steps at flush, taking it out of the rollups. Its id then
   * refuses events for `DELETED_RUN_MEMORY_MS` (`deletedLately`), unless it ended longer ago
   * than that: nothing is still recording it.
   */
  deleteRun(projectId: string, id: string): void {
    const t = this.runs.get(runKey(projectId, id));
    if (!t?.current) return;
    // the rollups hold the stored row; a run never stored has nothing to take out or delete
    if (t.before) this.deletedRuns.push(t.before);
    t.current = undefined;
    this.usage.delete(runKey(projectId, id));
  }

  getStep(projectId: string, runId: string, id: string): StepRow | undefined {
    const t = this.steps.get(stepKey(projectId, runId, id));
    if (!t) throw new Error(`step ${id} was not loaded in this unit of work`);
    return t.current;
  }

  /**
   * Stores a step and moves its run's rollups by the difference between the step's old
   * and new contribution, so replays and updates never count twice.
   */
  putStep(row: StepRow, run: RunRow): RunRow {
    const key = stepKey(row.project_id, row.run_id, row.id);
    const t = this.steps.get(key);
    if (!t) throw new Error(`step ${row.id} was not loaded in this unit of work`);
    const old = stepContribution(t.current);
    const now = stepContribution(row);
    const oldUsage = stepModelUsage(t.current);
    const newUsage = stepModelUsage(row);
    const usageMoves = !sameModelUsage(oldUsage, newUsage);
    t.current = row;
    const setsModel = run.model === null && row.type === 'llm' && row.model !== null;
    if (
      !setsModel &&
      !usageMoves &&
      now.step_count === old.step_count &&
      now.error_count === old.error_count &&
      now.llm_calls === old.llm_calls &&
      now.tool_calls === old.tool_calls &&
      now.input_tokens === old.input_tokens &&
      now.output_tokens === old.output_tokens &&
      now.cost_nanos === old.cost_nanos
    ) {
      return run;
    }
    const tracked = this.runs.get(runKey(row.project_id, row.run_id));
    if (!tracked?.current) throw new Error(`run ${row.run_id} was not loaded in this unit of work`);
    // copy on the first write only: a run with many steps in one batch is copied once
    let draft = tracked.current;
    if (draft === tracked.before) tracked.current = draft = { ...draft };
    draft.step_count += now.step_count - old.step_count;
    draft.error_count += now.error_count - old.error_count;
    draft.llm_calls += now.llm_calls - old.llm_calls;
    draft.tool_calls += now.tool_calls - old.tool_calls;
    // held within the columns' bounds: only made-up figures reach them, and they must not
    // fail the write
    draft.input_tokens = saturated(draft.input_tokens + now.input_tokens - old.input_tokens);
    draft.output_tokens = saturated(draft.output_tokens + now.output_tokens - old.output_tokens);
    draft.cost_nanos = saturated(draft.cost_nanos + now.cost_nanos - old.cost_nanos);
    if (setsModel) draft.model = row.model;
    if (usageMoves) {
      // held decoded until flush writes it back: a run with many steps is encoded once
      const rk = runKey(row.project_id, row.run_id);
      let usage = this.usage.get(rk);
      if (!usage) this.usage.set(rk, (usage = decodeModels(draft.models)));
      addModelUsage(usage, oldUsage, -1);
      addModelUsage(usage, newUsage, 1);
    }
    draft.updated_at = Math.max(draft.updated_at, row.updated_at);
    return draft;
  }

  /**
   * Ends the steps of `run` still `running` as `failed` with `error` at `at`: the agent that
   * ran them is gone (a lapsed lease, a timeout, a forced Stop, a release) and will not end
   * them. A late `step.end` only fills what they lack. (Steps of a run that ended are ended by
   * `closeStepsOfEndedRuns`, whose end their own `step.end` replaces.)
   */
  async closeRunningSteps(
    run: RunRow,
    at: number,
    error: { message: string; type: string },
  ): Promise<void> {
    const open = await this.trx
      .selectFrom('steps')
      .select(['run_id', 'id'])
      .where('project_id', '=', run.project_id)
      .where('run_id', '=', run.id)
      .where('status', '=', 'running')
      .execute();
    if (open.length === 0) return;
    await this.loadSteps(run.project_id, open);
    let current = this.getRun(run.project_id, run.id) ?? run;
    for (const { id } of open) {
      const step = this.getStep(run.project_id, run.id, id);
      if (step?.status !== 'running') continue;
      current = this.putStep(
        {
          ...step,
          status: 'failed',
          error: JSON.stringify(error),
          ended_at: at,
          duration_ms: step.started_at !== null ? Math.max(0, at - step.started_at) : null,
          updated_at: at,
        },
        current,
      );
    }
  }

  /**
   * Ends the steps left running under runs that have ended (`stepEndedWithRun`), so no step of
   * an ended run stays running for ever: the stored steps of the runs that were stored
   * unfinished and are finished now, and every step held here whose run is over (a run first
   * stored now has no other steps). The agent's own `step.end`, if it still comes, replaces
   * the stand-in end. `flush` calls it, one pass over the steps whatever the events; the
   * control plane calls it too when its answer must count the steps it ends.
   */
  async closeStepsOfEndedRuns(): Promise<void> {
    const ended = new Map<string, string[]>();
    for (const [key, { before, current }] of this.runs) {
      if (!before || !current || this.sweptRuns.has(key)) continue;
      if (isTerminalStatus(before.status as RunStatus)) continue;
      if (!isTerminalStatus(current.status as RunStatus)) continue;
      this.sweptRuns.add(key);
      const ids = ended.get(current.project_id);
      if (ids) ids.push(current.id);
      else ended.set(current.project_id, [current.id]);
    }
    for (const [projectId, ids] of ended) {
      const stored: { run_id: string; id: string }[] = [];
      if (this.db.sqlite) {
        // one indexed lookup per run through a reused statement: no round trips to save
        for (const id of ids)
          stored.push(...(await runningStepIds(this.db, this.trx, projectId, id)));
      } else {
        for (let i = 0; i < ids.length; i += 500) {
          stored.push(
            ...(await this.trx
              .selectFrom('steps')
              .select(['run_id', 'id'])
              .where('project_id', '=', projectId)
              .where('run_id', 'in', ids.slice(i, i + 500))
              .where('status', '=', 'running')
              .execute()),
          );
        }
      }
      if (stored.length > 0) await this.loadSteps(projectId, stored);
    }
    for (const t of this.steps.values()) {
      const step = t.current;
      if (step?.status !== 'running') continue;
      const run = this.runs.get(runKey(step.project_id, step.run_id))?.current;
      if (!run || !isTerminalStatus(run.status as RunStatus)) continue;
      this.putStep(stepEndedWithRun(step, run), run);
    }
  }

  /** The agent's `timeout_ms`, read in this transaction; null without one (or no agent). */
  async agentTimeoutMs(projectId: string, agentId: string): Promise<number | null> {
    const [agent] = await agentTimeout(this.db, this.trx, projectId, agentId);
    return agent?.timeout_ms ?? null;
  }

  /**
   * A run recorded without a worker ends `timed_out` once it passes its agent's `timeout_ms`,
   * counted from its start, as a claimed run does from its claim. Set where a run first runs
   * under its agent (a step may have started it under `unknown`); mutates this unit's drafts.
   */
  private async setDeadlines(): Promise<void> {
    const timeouts = new Map<string, number | null>();
    for (const { before, current: run } of this.runs.values()) {
      if (!run || run === before || run.status !== 'running') continue;
      if (run.worker_id !== null || run.deadline_at !== null || run.started_at === null) continue;
      // only where it starts running under this agent, not on each of its later events
      if (before?.status === 'running' && before.agent_id === run.agent_id) continue;
      if (run.agent_id === UNKNOWN_AGENT) continue;
      const key = `${run.project_id}\u0000${run.agent_id}`;
      let timeout = timeouts.get(key);
      if (timeout === undefined) {
        timeout = await this.agentTimeoutMs(run.project_id, run.agent_id);
        timeouts.set(key, timeout);
      }
      // the start is on the agent's clock, the deadline is checked on this one: counted from
      // no earlier than this server first heard of the run (created_at), or an agent host an
      // hour behind would start its runs past their timeout, and no later than now, or one an
      // hour ahead would run an hour past it (a start in 9999, never)
      const start = Math.min(Math.max(run.started_at, run.created_at), Date.now());
      if (timeout) run.deadline_at = start + timeout;
    }
  }

  /** Writes every changed row; returns what changed, for publishing after commit. */
  async flush(
    /** Where the rollup changes go: the group commit writes them once for all its work. */
    rollups: RollupDeltas,
  ): Promise<{
    runs: RunRow[];
    steps: StepRow[];
    deleted: RunRow[];
    ended: RunRow[];
    /** The automatic retry each of `ended` got from its agent's retry policy, if any. */
    retryOf: (run: RunRow) => RunRow | undefined;
  }> {
    // before anything is read off the runs: ending a step moves its run's rollups
    await this.closeStepsOfEndedRuns();
    await this.queuePolicyRetries();
    await this.flushScores();
    for (const [key, usage] of this.usage) {
      const t = this.runs.get(key);
      const models = encodeModels(usage);
      if (!t?.current || t.current.models === models) continue;
      if (t.current === t.before) t.current = { ...t.current };
      t.current.models = models;
    }
    this.usage.clear();
    const changedRuns: RunRow[] = [];
    const changedSteps: StepRow[] = [];
    // runs this flush makes terminal (new, or stored unfinished): what webhooks are told of.
    // Terminal states are final, so a replayed end, which changes nothing, is not among them
    const ended: RunRow[] = [];
    // agents are created on first use: only a new run, or one that changed agent, can need one
    const needAgents: RunRow[] = [];
    for (const t of this.runs.values()) {
      if (t.current && t.current !== t.before) {
        // a change is never older than what it replaces, whatever the clock said when it
        // began (it may have waited for the run's lock, or come from a host whose clock is
        // behind): realtime listeners on other instances drop what is older than they have
        // seen. A write that leaves updated_at alone (a heartbeat's lease) keeps it.
        if (t.before && t.current.updated_at < t.before.updated_at)
          t.current = { ...t.current, updated_at: t.before.updated_at + 1 };
        changedRuns.push(t.current);
        if (
          isTerminalStatus(t.current.status as RunStatus) &&
          !(t.before && isTerminalStatus(t.before.status as RunStatus))
        )
          ended.push(t.current);
        rollups.change(t.before, t.current);
        if (t.before?.agent_id !== t.current.agent_id) needAgents.push(t.current);
      }
    }
    for (const t of this.steps.values()) {
      if (t.current && t.current !== t.before) {
        // as for runs: listeners on other instances drop a step older than they have seen
        if (t.before && t.current.updated_at <= t.before.updated_at)
          t.current = { ...t.current, updated_at: t.before.updated_at + 1 };
        changedSteps.push(t.current);
      }
    }
    for (const run of this.deletedRuns) rollups.change(run, undefined);

    await this.setDeadlines();
    await ensureAgents(this.db, this.trx, needAgents);
    await writeRows(this.db, this.trx, 'steps', this.steps.values(), [
      'project_id',
      'run_id',
      'id',
    ]);
    await writeRows(this.db, this.trx, 'runs', this.runs.values(), ['project_id', 'id']);
    // deleted runs go in batches per project: an agent's deletion can hold thousands
    const deleted = new Map<string, string[]>();
    for (const run of this.deletedRuns) {
      const ids = deleted.get(run.project_id);
      if (ids) ids.push(run.id);
      else deleted.set(run.project_id, [run.id]);
    }
    const now = Date.now();
    const remembered = this.deletedRuns.filter(
      (r) => r.ended_at === null || r.ended_at >= now - DELETED_RUN_MEMORY_MS,
    );
    for (let i = 0; i < remembered.length; i += 500) {
      await this.trx
        .insertInto('deleted_runs')
        .values(
          remembered.slice(i, i + 500).map((r) => ({
            project_id: r.project_id,
            run_id: r.id,
            deleted_at: now,
            agent_id: r.agent_id,
          })),
        )
        .onConflict((oc) =>
          oc
            .columns(['project_id', 'run_id'])
            .doUpdateSet((eb) => ({ deleted_at: now, agent_id: eb.ref('excluded.agent_id') })),
        )
        .execute();
    }
    for (const [projectId, ids] of deleted) await deleteRunRows(this.trx, projectId, ids);
    for (const t of this.runs.values()) t.before = t.current;
    for (const t of this.steps.values()) t.before = t.current;
    const deletedRuns = this.deletedRuns.splice(0);
    const retried = new Map(this.policyRetried);
    this.policyRetried.clear();
    return {
      runs: changedRuns,
      steps: changedSteps,
      deleted: deletedRuns,
      ended,
      retryOf: (run) => retried.get(runKey(run.project_id, run.id)),
    };
  }
}

/**
 * Deletes runs of a project with what belongs to them (steps, scores), 500 at a time, inside
 * the caller's transaction: the one place a table kept per run is deleted with it. Answers
 * how many runs and steps went. The rollups are the caller's to move.
 */
export async function deleteRunRows(
  trx: Kysely<Database>,
  projectId: string,
  ids: readonly string[],
): Promise<{ runs: number; steps: number }> {
  const gone = { runs: 0, steps: 0 };
  for (let i = 0; i < ids.length; i += 500) {
    const chunk = ids.slice(i, i + 500);
    const steps = await trx
      .deleteFrom('steps')
      .where('project_id', '=', projectId)
      .where('run_id', 'in', chunk)
      .executeTakeFirst();
    await trx
      .deleteFrom('scores')
      .where('project_id', '=', projectId)
      .where('run_id', 'in', chunk)
      .execute();
    const runs = await trx
      .deleteFrom('runs')
      .where('project_id', '=', projectId)
      .where('id', 'in', chunk)
      .executeTakeFirst();
    gone.steps += Number(steps.numDeletedRows);
    gone.runs += Number(runs.numDeletedRows);
  }
  return gone;
}

/** Agents are created on first use: one row per agent of `runs` that does not exist yet. */
export async function ensureAgents(
  db: Db,
  trx: Kysely<Database>,
  runs: readonly RunRow[],
): Promise<void> {
  const seen = new Map<string, RunRow>();
  for (const r of runs) {
    const key = `${r.project_id}\u0000${r.agent_id}`;
    if (!seen.has(key)) seen.set(key, r);
  }
  if (seen.size === 0) return;
  if (seen.size === 1) {
    const [r] = [...seen.values()] as [RunRow];
    await createAgent(db, trx, r.project_id, r.agent_id, agentName(r.agent_id), r.created_at);
    return;
  }
  const rows = [...seen.values()].map((r) =>
    newAgentRow(r.project_id, r.agent_id, agentName(r.agent_id), r.created_at),
  );
  // a stable order keeps concurrent writers on PostgreSQL from deadlocking on these rows
  rows.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  await trx
    .insertInto('agents')
    .values(rows)
    .onConflict((oc) => oc.columns(['project_id', 'id']).doNothing())
    .execute();
}

function agentName(agentId: string): string {
  return agentId === UNKNOWN_AGENT ? 'Unknown agent' : agentId;
}
