import { z } from 'zod';
import {
  AgentUpsertBody,
  Id,
  ModelPrice,
  PatchProjectBody,
  Schedule,
  storedDepth,
  toIso,
  type Agent,
  type Project,
} from '@runlog/core';
import { encodeRetryPolicy, limitColumns, toAgent } from '../agents/agents.mapper.js';
import { MAX_RETENTION_DAYS } from '../config.js';
import { scheduleProblem } from '../control/schedule.js';
import type { Db } from '../db/database.js';
import type { AgentRow, ModelPriceRow } from '../db/schema.js';

/**
 * What a JSONL export carries besides runs, one line each before the first run: the
 * project's settings, its agents (names, schedules, timeouts, metadata) and its model price
 * overrides. Each line names its `kind`; a run's line has none, so an export written before
 * these lines existed imports as it did.
 */
export type ExportedProject = { kind: 'project' } & Project;
/** An agent's settings: not when a worker last asked for its runs, which is this server's. */
export type ExportedAgent = { kind: 'agent' } & Omit<Agent, 'worker_seen_at' | 'over_budget_since'>;
export interface ExportedPrice {
  kind: 'price';
  project_id: string;
  model: string;
  input_per_mtok: number;
  output_per_mtok: number;
  cached_input_per_mtok: number | null;
  updated_at: string;
}

/** The settings lines of an export of `projectId` (its agents: only `agentId` when given). */
export async function exportedSettings(
  db: Db,
  projectId: string,
  agentId?: string,
): Promise<{ lines: string; agents: number; prices: number }> {
  const project = await db.kysely
    .selectFrom('projects')
    .selectAll()
    .where('id', '=', projectId)
    .executeTakeFirst();
  if (!project) return { lines: '', agents: 0, prices: 0 };
  let agentsQuery = db.kysely.selectFrom('agents').selectAll().where('project_id', '=', projectId);
  if (agentId !== undefined) agentsQuery = agentsQuery.where('id', '=', agentId);
  const agents = await agentsQuery.orderBy('id').execute();
  const prices = await db.kysely
    .selectFrom('model_prices')
    .selectAll()
    .where('project_id', '=', projectId)
    .orderBy('model')
    .execute();
  const records: (ExportedProject | ExportedAgent | ExportedPrice)[] = [
    {
      kind: 'project',
      id: project.id,
      name: project.name,
      retention_days: project.retention_days,
      created_at: toIso(project.created_at),
    },
    ...agents.map((a): ExportedAgent => {
      // the server's own reading, not a setting: the server an export goes to reads its own
      const { worker_seen_at: _seen, over_budget_since: _over, ...agent } = toAgent(a);
      return { kind: 'agent', ...agent };
    }),
    ...prices.map((p): ExportedPrice => ({
      kind: 'price',
      project_id: p.project_id,
      model: p.model,
      input_per_mtok: p.input_per_mtok,
      output_per_mtok: p.output_per_mtok,
      cached_input_per_mtok: p.cached_input_per_mtok,
      updated_at: toIso(p.updated_at),
    })),
  ];
  return {
    lines: records.map((r) => JSON.stringify(r) + '\n').join(''),
    agents: agents.length,
    prices: prices.length,
  };
}

const Time = z.iso.datetime({ offset: true }).transform((s) => Date.parse(s));

const ImportProject = z.object({
  kind: z.literal('project'),
  id: Id,
  name: PatchProjectBody.shape.name.unwrap(),
  retention_days: z.number().int().min(1).max(MAX_RETENTION_DAYS),
  created_at: Time.optional(),
});

// an export line carries more than a PUT takes (its times, `kind`): not strict, as the body is
const ImportAgent = z.object(AgentUpsertBody.shape).extend({
  kind: z.literal('agent'),
  id: Id,
  project_id: Id,
  name: AgentUpsertBody.shape.name.unwrap(),
  // an export from before schedules could pause has no `paused`: such a schedule runs
  schedule: Schedule.extend({
    timezone: Schedule.shape.timezone.default('UTC'),
    paused: Schedule.shape.paused.default(false),
  })
    .nullish()
    .superRefine((schedule, ctx) => {
      const problem = schedule ? scheduleProblem(schedule) : undefined;
      if (problem)
        ctx.addIssue({ code: 'custom', path: [problem.field], message: problem.message });
    }),
  next_run_at: Time.nullish(),
  // an export from before agents could pause has none: its agent runs
  paused_at: Time.nullish(),
  created_at: Time,
  updated_at: Time,
});

const ImportPrice = ModelPrice.omit({ source: true }).extend({
  kind: z.literal('price'),
  project_id: Id,
  updated_at: Time.optional(),
});

/** A settings line of a JSONL export, as `runlog import` accepts it. */
export const ImportSetting = z.discriminatedUnion('kind', [
  ImportProject,
  ImportAgent,
  ImportPrice,
]);
export type ImportSetting = z.infer<typeof ImportSetting>;
export type ImportedProject = z.infer<typeof ImportProject>;

/** Whether a parsed line is a settings line (it names a `kind`) rather than a run. */
export function isSettingLine(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && 'kind' in value;
}

/** The stored agent row of an imported agent line, in `projectId`. */
export function fromImportedAgent(rec: z.infer<typeof ImportAgent>, projectId: string): AgentRow {
  const schedule = rec.schedule ?? null;
  return {
    project_id: projectId,
    id: rec.id,
    name: rec.name,
    description: rec.description ?? null,
    schedule_cron: schedule?.cron ?? null,
    schedule_tz: schedule?.timezone ?? null,
    // the slot the exporting server would have queued next: the scheduler goes on from it
    // (one catch-up run when it has passed), as that server would after a restart
    schedule_next_at: schedule ? (rec.next_run_at ?? null) : null,
    schedule_paused: schedule?.paused ? 1 : 0,
    timeout_ms: rec.timeout_ms ?? null,
    max_cost_nanos: null,
    max_tokens: null,
    max_steps: null,
    max_cost_nanos_24h: null,
    ...limitColumns(rec),
    // an export from before retry policies has none: its agent retries nothing on its own
    retry_policy: encodeRetryPolicy(rec.retry ?? null),
    // nor a cap before max_concurrency: its runs go to as many workers as ask
    max_concurrency: rec.max_concurrency ?? null,
    max_concurrency_per_thread: rec.max_concurrency_per_thread ?? null,
    paused_at: rec.paused_at ?? null,
    // the budget watch of the server it comes to tells of its budget afresh
    over_budget_at: null,
    metadata: JSON.stringify(storedDepth(rec.metadata ?? {})),
    created_at: rec.created_at,
    updated_at: rec.updated_at,
    worker_seen_at: null,
  };
}

/** The stored price override of an imported price line, in `projectId`. */
export function fromImportedPrice(
  rec: z.infer<typeof ImportPrice>,
  projectId: string,
  now: number,
): ModelPriceRow {
  return {
    project_id: projectId,
    model: rec.model,
    input_per_mtok: rec.input_per_mtok,
    output_per_mtok: rec.output_per_mtok,
    cached_input_per_mtok: rec.cached_input_per_mtok ?? null,
    updated_at: rec.updated_at ?? now,
  };
}
