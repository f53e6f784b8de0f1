import { sql, type Kysely } from 'kysely';
import {
  toIso,
  type Score,
  type ScoreFields,
  type ScoreSummary,
  type ScoreType,
  type StatsScore,
} from '@runlog/core';
import type { Db } from '../db/database.js';
import type { Database, ScoreRow } from '../db/schema.js';
import { encodeMetadata } from '../ingest/apply.js';
import { prepared } from '../db/prepared.js';
import { readOffLoop } from '../db/readers.js';
import { objectOr } from '../runs/runs.mapper.js';

/** How a score's value is stored: its type, the number (1 / 0 for a boolean) or the label. */
export function storedValue(
  value: ScoreFields['value'],
): Pick<ScoreRow, 'type' | 'value' | 'label'> {
  if (typeof value === 'boolean') return { type: 'boolean', value: value ? 1 : 0, label: null };
  if (typeof value === 'number') return { type: 'numeric', value, label: null };
  return { type: 'categorical', value: null, label: value };
}

/**
 * The row a score event writes: the whole score, replacing the one of its id on its run
 * (when it was given before, it keeps when it was first given).
 */
export function scoreRow(
  projectId: string,
  fields: ScoreFields & { id: string },
  current: ScoreRow | undefined,
  env: { now: number; maxFieldBytes: number },
): ScoreRow {
  return {
    project_id: projectId,
    run_id: fields.run_id,
    id: fields.id,
    step_id: fields.step_id ?? null,
    name: fields.name,
    ...storedValue(fields.value),
    comment: fields.comment ?? null,
    source: fields.source ?? null,
    metadata: encodeMetadata(fields.metadata ?? {}, env.maxFieldBytes),
    created_at: current?.created_at ?? env.now,
    // listeners compare times: a change is never older than what it replaces
    updated_at: current ? Math.max(env.now, current.updated_at + 1) : env.now,
  };
}

/** The one mapping from a stored score row to the API's `Score`. */
export function toScore(row: ScoreRow): Score {
  const type = row.type as ScoreType;
  return {
    id: row.id,
    run_id: row.run_id,
    step_id: row.step_id,
    name: row.name,
    type,
    value:
      type === 'boolean'
        ? Number(row.value) !== 0
        : type === 'numeric'
          ? Number(row.value)
          : (row.label ?? ''),
    comment: row.comment,
    source: row.source,
    metadata: objectOr(row.metadata),
    created_at: toIso(row.created_at),
    updated_at: toIso(row.updated_at),
  };
}

/** One group of a run's scores: a name, a type, a label (categorical only), how many, their sum. */
export interface ScoreGroup {
  name: string;
  type: string;
  label: string | null;
  n: number | string;
  total: number | string | null;
}

/** The types' order when two are as common under one name: the first wins. */
const TYPE_ORDER: readonly ScoreType[] = ['numeric', 'boolean', 'categorical'];

/**
 * What a set of scores comes to by name (`Run.scores`, `StatsScore`): how many, the mean of
 * the numeric and boolean values, how many of each label, and the type most of them have.
 */
export function summarize(groups: readonly ScoreGroup[]): Record<string, ScoreSummary> {
  // Maps, not objects: a name or label may be `__proto__` or `constructor`
  const byName = new Map<
    string,
    {
      n: number;
      valued: number;
      total: number;
      labels: Map<string, number>;
      types: Map<string, number>;
    }
  >();
  for (const g of groups) {
    let acc = byName.get(g.name);
    if (!acc) {
      acc = { n: 0, valued: 0, total: 0, labels: new Map(), types: new Map() };
      byName.set(g.name, acc);
    }
    const n = Number(g.n);
    acc.n += n;
    acc.types.set(g.type, (acc.types.get(g.type) ?? 0) + n);
    if (g.type === 'categorical') {
      const label = g.label ?? '';
      acc.labels.set(label, (acc.labels.get(label) ?? 0) + n);
    } else {
      acc.valued += n;
      acc.total += Number(g.total ?? 0);
    }
  }
  const out: [string, ScoreSummary][] = [];
  for (const name of [...byName.keys()].sort()) {
    const acc = byName.get(name)!;
    let type: ScoreType = 'numeric';
    let most = -1;
    for (const t of TYPE_ORDER) {
      const n = acc.types.get(t) ?? 0;
      if (n > most) {
        most = n;
        type = t;
      }
    }
    out.push([
      name,
      {
        type,
        n: acc.n,
        avg: acc.valued > 0 ? roundMean(acc.total / acc.valued) : null,
        // own keys whatever their names (`Object.fromEntries` defines them)
        labels: Object.fromEntries(acc.labels),
      },
    ]);
  }
  return Object.fromEntries(out);
}

/** A mean as the API gives it: 12 significant digits, so a sum's float noise does not show. */
export function roundMean(x: number): number {
  return Number(x.toPrecision(12));
}

// each score its own group, summed up here (a run holds at most MAX_SCORES_PER_RUN): grouped
// by name in SQL, SQLite, which keeps no statistics here, read the groups off scores_name and
// so walked every score of the project for each run scored (16 ms a run at 100,000 scores)
const runScoreGroups = prepared((db, $) =>
  db
    .selectFrom('scores')
    .select(['name', 'type', 'label', sql<number>`1`.as('n'), 'value as total'])
    .where('project_id', '=', $(0))
    .where('run_id', '=', $(1)),
);

/** A run's scores summed up by name (`Run.scores`), as JSON text for `runs.scores`. */
export async function runScoresSummary(
  db: Db,
  trx: Kysely<Database>,
  projectId: string,
  runId: string,
): Promise<string> {
  const groups = await runScoreGroups(db, trx, projectId, runId);
  return JSON.stringify(summarize(groups));
}

/** A run's scores, oldest first (a read outside the write path, through Kysely's connection). */
export async function listScores(db: Db, projectId: string, runId: string): Promise<ScoreRow[]> {
  // ordered by an expression, so the run's scores are read off the key and sorted (at most
  // 1,000): in created_at's own order SQLite walked the project's scores_created for them
  return db.kysely
    .selectFrom('scores')
    .selectAll()
    .where('project_id', '=', projectId)
    .where('run_id', '=', runId)
    .orderBy(sql`created_at + 0`)
    .orderBy('id')
    .execute();
}

const scoreById = prepared((db, $) =>
  db
    .selectFrom('scores')
    .selectAll()
    .where('project_id', '=', $(0))
    .where('run_id', '=', $(1))
    .where('id', '=', $(2)),
);

/** One score of a run, in the write path's transaction `trx`. */
export async function findScore(
  db: Db,
  trx: Kysely<Database>,
  projectId: string,
  runId: string,
  id: string,
): Promise<ScoreRow | undefined> {
  const [row] = await scoreById(db, trx, projectId, runId, id);
  return row;
}

const scoreCount = prepared((db, $) =>
  db
    .selectFrom('scores')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('project_id', '=', $(0))
    .where('run_id', '=', $(1)),
);

/** How many scores a run holds. */
export async function countScores(
  db: Db,
  trx: Kysely<Database>,
  projectId: string,
  runId: string,
): Promise<number> {
  const [row] = await scoreCount(db, trx, projectId, runId);
  return Number(row?.n ?? 0);
}

/**
 * The scores given in `[from, to)` (by when they were given) to runs of `agentIds` (all
 * without), by name, most given first (`StatsResponse.by_score`). Two reads beside the event
 * loop: the groups of name, type and label, and how many runs each name scored.
 */
export async function scoreStats(
  db: Db,
  projectId: string,
  agentIds: readonly string[] | undefined,
  from: number,
  to: number,
): Promise<StatsScore[]> {
  const given = () => {
    let q = db.kysely
      .selectFrom('scores as s')
      .where('s.project_id', '=', projectId)
      .where('s.created_at', '>=', from)
      .where('s.created_at', '<', to);
    if (agentIds?.length)
      q = q.where((eb) =>
        eb.exists(
          eb
            .selectFrom('runs as r')
            .select('r.id')
            .whereRef('r.project_id', '=', 's.project_id')
            .whereRef('r.id', '=', 's.run_id')
            .where('r.agent_id', 'in', [...agentIds]),
        ),
      );
    return q;
  };
  const [groups, runs] = await Promise.all([
    readOffLoop(
      db,
      given()
        .select((eb) => [
          's.name',
          's.type',
          's.label',
          eb.fn.countAll<number | string>().as('n'),
          eb.fn.sum<number | string | null>('s.value').as('total'),
          eb.fn.min<number | string | null>('s.value').as('lo'),
          eb.fn.max<number | string | null>('s.value').as('hi'),
        ])
        .groupBy(['s.name', 's.type', 's.label']),
    ),
    readOffLoop(
      db,
      given()
        .select((eb) => ['s.name', eb.fn.count<number | string>('s.run_id').distinct().as('runs')])
        .groupBy('s.name'),
    ),
  ]);
  const summary = summarize(groups);
  const bounds = new Map<string, { min: number | null; max: number | null }>();
  for (const g of groups) {
    if (g.lo === null || g.hi === null) continue;
    const b = bounds.get(g.name) ?? { min: null, max: null };
    b.min = b.min === null ? Number(g.lo) : Math.min(b.min, Number(g.lo));
    b.max = b.max === null ? Number(g.hi) : Math.max(b.max, Number(g.hi));
    bounds.set(g.name, b);
  }
  const runsOf = new Map(runs.map((r) => [r.name, Number(r.runs)]));
  return Object.entries(summary)
    .map(([name, s]) => ({
      name,
      type: s.type,
      n: s.n,
      runs: runsOf.get(name) ?? 0,
      avg: s.avg,
      min: bounds.get(name)?.min ?? null,
      max: bounds.get(name)?.max ?? null,
      labels: s.labels,
    }))
    .sort((a, b) => b.n - a.n || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
