import type { Run, RunWithSteps, Step } from '@runlog/core';
import { newerRun } from '../runs/runs.cache';

function stepOrder(a: Step, b: Step): number {
  if (a.seq !== b.seq) return a.seq - b.seq;
  const ta = a.started_at ? Date.parse(a.started_at) : Infinity;
  const tb = b.started_at ? Date.parse(b.started_at) : Infinity;
  return ta - tb;
}

/**
 * Folds a step_update into a run's steps: replaces it by id (an ended step is never
 * reopened by a late `running` update) or inserts it in `seq` order.
 */
export function applyStepUpdate(steps: readonly Step[], step: Step): Step[] {
  const i = steps.findIndex((s) => s.id === step.id);
  if (i >= 0) {
    const current = steps[i]!;
    if (current.status !== 'running' && step.status === 'running') return steps as Step[];
    const next = steps.slice();
    next[i] = step;
    return next;
  }
  const next = steps.slice();
  let at = next.findIndex((s) => stepOrder(step, s) < 0);
  if (at < 0) at = next.length;
  next.splice(at, 0, step);
  return next;
}

export function applyStepToRun(detail: RunWithSteps, step: Step): RunWithSteps {
  if (step.run_id !== detail.id) return detail;
  const steps = applyStepUpdate(detail.steps, step);
  return steps === detail.steps ? detail : { ...detail, steps };
}

export function applyRunToDetail(detail: RunWithSteps, run: Run): RunWithSteps {
  if (run.id !== detail.id) return detail;
  const { steps, ...current } = detail;
  const kept = newerRun(current, run);
  return kept === run ? { ...run, steps } : detail;
}
