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

/** A step placed in its tree: depth under its parent, in start order within each parent. */
export interface PlacedStep {
  step: Step;
  depth: number;
  hasChildren: boolean;
}

/**
 * Steps in tree order (each parent followed by its children), with depth. Steps whose
 * parent is unknown sit at the top level; a parent cycle in caller data cannot loop.
 */
export function orderStepTree(steps: readonly Step[]): PlacedStep[] {
  const ids = new Set(steps.map((s) => s.id));
  const children = new Map<string | null, Step[]>();
  for (const s of steps) {
    const parent =
      s.parent_step_id && ids.has(s.parent_step_id) && s.parent_step_id !== s.id
        ? s.parent_step_id
        : null;
    const list = children.get(parent) ?? [];
    list.push(s);
    children.set(parent, list);
  }
  const byStart = (a: Step, b: Step) => {
    const ta = a.started_at ? Date.parse(a.started_at) : Infinity;
    const tb = b.started_at ? Date.parse(b.started_at) : Infinity;
    return ta - tb || a.seq - b.seq;
  };
  const out: PlacedStep[] = [];
  const seen = new Set<string>();
  // iterative walk: deep nesting must not overflow the stack
  const stack: { step: Step; depth: number }[] = (children.get(null) ?? [])
    .sort(byStart)
    .reverse()
    .map((step) => ({ step, depth: 0 }));
  while (stack.length > 0) {
    const { step, depth } = stack.pop()!;
    if (seen.has(step.id)) continue;
    seen.add(step.id);
    const kids = (children.get(step.id) ?? []).sort(byStart);
    out.push({ step, depth, hasChildren: kids.length > 0 });
    for (let k = kids.length - 1; k >= 0; k--) stack.push({ step: kids[k]!, depth: depth + 1 });
  }
  // steps only reachable through a cycle are still shown, at the top level
  for (const s of steps) if (!seen.has(s.id)) out.push({ step: s, depth: 0, hasChildren: false });
  return out;
}
