import { stepPlace, type Run, type RunWithSteps, type Step } from '@runlog/core';
import { newerRun } from '../runs/runs.cache';

/** The server's order of a run's steps: by time, then `seq`, then id. */
export function stepOrder(a: Step, b: Step): number {
  const ta = stepPlace(a);
  const tb = stepPlace(b);
  if (ta !== tb) return ta < tb ? -1 : 1;
  if (a.seq !== b.seq) return a.seq - b.seq;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/**
 * Folds a frame's step_updates of one run into its steps: each replaces its step by id (an
 * ended step is never reopened by a late `running` update) or goes where the server lists
 * it. One copy of the list and one index of it, not one of each per update, so a run
 * recording hundreds of steps a second with tens of thousands recorded keeps up. New steps
 * usually come last and are appended; others find their place by binary search.
 */
export function applyStepUpdates(steps: readonly Step[], updates: readonly Step[]): Step[] {
  let next: Step[] | undefined;
  let index: Map<string, number> | undefined;
  for (const step of updates) {
    const list: readonly Step[] = next ?? steps;
    index ??= new Map(list.map((s, i) => [s.id, i]));
    const i = index.get(step.id);
    if (i !== undefined) {
      if (list[i]!.status !== 'running' && step.status === 'running') continue;
      next ??= steps.slice();
      next[i] = step;
      continue;
    }
    next ??= steps.slice();
    const last = next[next.length - 1];
    if (!last || stepOrder(step, last) >= 0) {
      index.set(step.id, next.length);
      next.push(step);
      continue;
    }
    // the first step that sorts after it
    let lo = 0;
    let hi = next.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (stepOrder(step, next[mid]!) < 0) hi = mid;
      else lo = mid + 1;
    }
    next.splice(lo, 0, step);
    // the steps after it moved: the index is made again when next needed
    index = undefined;
  }
  return next ?? (steps as Step[]);
}

/** A run's page with a frame's step_updates of that run folded in. */
export function applyStepsToRun(detail: RunWithSteps, updates: readonly Step[]): RunWithSteps {
  const steps = applyStepUpdates(detail.steps, updates);
  return steps === detail.steps ? detail : { ...detail, steps };
}

export function applyRunToDetail(detail: RunWithSteps, run: Run): RunWithSteps {
  if (run.id !== detail.id) return detail;
  const { steps, ...current } = detail;
  const kept = newerRun(current, run);
  return kept === run ? { ...run, steps } : detail;
}
