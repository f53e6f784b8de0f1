import type { RunRow, StepRow } from '../db/schema.js';
import { modelCall, wellFormed } from '@runlog/core';
import { saturated } from '../db/bulk.js';

/**
 * What a run's steps used, per model: `[calls, input_tokens, output_tokens, cost_nanos]`.
 * Stored on the run (`runs.models`, JSON) so the model rollups move with the run's own
 * rollups (a late start that moves its hour, a deletion, a retention purge, an import) without
 * reading its steps again. Steps without a model count under `''`, so the models' sums are
 * the run's totals. A Map, not an object: a model may be called `constructor` or `__proto__`.
 */
export type ModelUsage = Map<string, ModelTotals>;
export type ModelTotals = [
  calls: number,
  inputTokens: number,
  outputTokens: number,
  costNanos: number,
];

/** The stored form of a run that used no model. */
export const NO_MODELS = '{}';

/**
 * What one step adds to its run's usage by model, by core's `modelCall` (as the migration's
 * backfill counts them); undefined for a step that does not count.
 */
export function stepModelUsage(
  step:
    Pick<StepRow, 'type' | 'model' | 'input_tokens' | 'output_tokens' | 'cost_nanos'> | undefined,
): { model: string; totals: ModelTotals } | undefined {
  if (!step) return undefined;
  const call = modelCall(step, step.cost_nanos);
  if (call === undefined) return undefined;
  return {
    // as the database stores it: a lone surrogate is U+FFFD there, and so in the key
    model: step.model === null ? '' : wellFormed(step.model),
    totals: [call, step.input_tokens ?? 0, step.output_tokens ?? 0, step.cost_nanos ?? 0],
  };
}

/** Whether two steps add the same usage under the same model. */
export function sameModelUsage(
  a: ReturnType<typeof stepModelUsage>,
  b: ReturnType<typeof stepModelUsage>,
): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.model === b.model && a.totals.every((v, i) => v === b.totals[i]);
}

/** A run's stored usage; a value that is not such a map (never written so) reads as none. */
export function decodeModels(text: string | null | undefined): ModelUsage {
  const out: ModelUsage = new Map();
  if (!text || text === NO_MODELS) return out;
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return out;
    // JSON.parse and Object.entries keep every key as the object's own, `__proto__` too
    for (const [model, v] of Object.entries(parsed as Record<string, unknown>)) {
      if (!Array.isArray(v) || v.length !== 4 || !v.every((n) => typeof n === 'number')) continue;
      out.set(model, v as ModelTotals);
    }
    return out;
  } catch {
    return out;
  }
}

/** The stored form: models in byte order, so equal usage is equal text. */
export function encodeModels(usage: ModelUsage): string {
  if (usage.size === 0) return NO_MODELS;
  const models = [...usage].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  // Object.fromEntries defines each key as its own, whatever its name
  return JSON.stringify(Object.fromEntries(models));
}

/** Adds (`sign` 1) or takes out (-1) one step's usage; a model left with nothing is dropped. */
export function addModelUsage(
  usage: ModelUsage,
  step: { model: string; totals: ModelTotals } | undefined,
  sign: 1 | -1,
): void {
  if (!step) return;
  const prior = usage.get(step.model) ?? [0, 0, 0, 0];
  const next = prior.map((v, i) => saturated(v + sign * step.totals[i]!)) as ModelTotals;
  if (next.every((v) => v === 0)) usage.delete(step.model);
  else usage.set(step.model, next);
}

/** The stored usage of a run made of these steps. */
export function modelsOfSteps(
  steps: Iterable<
    Pick<StepRow, 'type' | 'model' | 'input_tokens' | 'output_tokens' | 'cost_nanos'>
  >,
): string {
  const usage: ModelUsage = new Map();
  for (const step of steps) addModelUsage(usage, stepModelUsage(step), 1);
  return encodeModels(usage);
}

/** The usage of a run known only by its totals: all of it under no model (''). */
export function unattributedModels(
  run: Pick<RunRow, 'llm_calls' | 'input_tokens' | 'output_tokens' | 'cost_nanos'>,
): string {
  const usage: ModelUsage = new Map();
  addModelUsage(
    usage,
    { model: '', totals: [run.llm_calls, run.input_tokens, run.output_tokens, run.cost_nanos] },
    1,
  );
  return encodeModels(usage);
}
