import { useEffect, useMemo, useRef, useState } from 'react';
import type { Run } from '@runlog/core';
import { newerRun } from './runs.cache';
import type { HeadSelect, RowSelect } from './RunRows';

/** The runs picked in a list for Stop or Retry, and what its checkboxes do. */
export interface RunSelection {
  /** The selected runs, in the order picked, each as the list last showed it. */
  runs: Run[];
  has: (runId: string) => boolean;
  /** Picks or drops a run; `range` (Shift) does the same to the rows since the last one picked. */
  toggle: (run: Run, on: boolean, range: boolean) => void;
  /** Picks or drops the rows on screen (the header checkbox). */
  setShown: (on: boolean) => void;
  /** Selects exactly these runs ("select all matching"). */
  replace: (runs: readonly Run[]) => void;
  /** Selects exactly these runs if the list still shows what it showed at `scope` (a pass's end). */
  replaceIn: (scope: string, runs: readonly Run[]) => void;
  clear: () => void;
  /** The rows on screen. */
  shown: readonly Run[];
  /** What the list is filtered by: the selection belongs to it. */
  scope: string;
  /** The header checkbox, where the keyboard goes when the selection bar closes. */
  headRef: React.RefObject<HTMLInputElement | null>;
  /** A row's checkbox. */
  row: (run: Run) => RowSelect;
  /** The header checkbox, `label` naming what it selects ("Select the 50 runs on this page"). */
  head: (label: string) => HeadSelect;
}

/** What a list has selected, by id, and for which filters. */
export interface SelectionState {
  scope: string;
  runs: Map<string, Run>;
  /** The run last picked by hand, by id: rows arriving above it do not move it. */
  anchor: string | undefined;
}

/** Nothing selected in the list filtered by `scope`. */
export const noSelection = (scope: string): SelectionState => ({
  scope,
  runs: new Map(),
  anchor: undefined,
});

/** Picks (`on`) or drops runs, each as `list` shows it now. */
function put(runs: Map<string, Run>, list: readonly Run[], on: boolean): void {
  for (const run of list) {
    if (on) runs.set(run.id, run);
    else runs.delete(run.id);
  }
}

/**
 * A checkbox's click: picks or drops `run`, and with `range` (Shift) the rows between it and
 * the run last picked, as `shown` lists them now (by id: rows that arrived since count where
 * they are).
 * @example toggleRun(state, shown, shown[4], true, true) // rows 0..4 after a click on row 0
 */
export function toggleRun(
  s: SelectionState,
  shown: readonly Run[],
  run: Run,
  on: boolean,
  range: boolean,
): SelectionState {
  const runs = new Map(s.runs);
  const at = shown.findIndex((r) => r.id === run.id);
  const from = range && s.anchor ? shown.findIndex((r) => r.id === s.anchor) : -1;
  if (from >= 0 && at >= 0) put(runs, shown.slice(Math.min(from, at), Math.max(from, at) + 1), on);
  else put(runs, [run], on);
  return { ...s, runs, anchor: run.id };
}

/** The header checkbox's click: picks or drops every row shown. */
export function toggleShown(s: SelectionState, shown: readonly Run[], on: boolean): SelectionState {
  const runs = new Map(s.runs);
  put(runs, shown, on);
  return { ...s, runs };
}

/**
 * The selected runs in the newer state the list shows of them (a live update): the same
 * state when none changed. Runs the list does not show are kept as they were.
 */
export function refreshSelected(s: SelectionState, shown: readonly Run[]): SelectionState {
  let runs: Map<string, Run> | undefined;
  for (const run of shown) {
    const held = s.runs.get(run.id);
    if (!held || held === run || newerRun(held, run) !== run) continue;
    runs ??= new Map(s.runs);
    runs.set(run.id, run);
  }
  return runs ? { ...s, runs } : s;
}

/**
 * The selection of a list of runs. Runs are held by id, so rows arriving live (a new run at
 * the top) never change what is selected; a new `scope` (another filter) starts it empty. A
 * selected run's state follows `known` (the runs the page holds live, `shown` by default)
 * while it is there: a list that shows a part of what it holds (an agent's panel, folded to
 * its newest runs) still knows that a selected run out of view has ended.
 * @example const selection = useRunSelection(JSON.stringify(filters), data.runs)
 */
export function useRunSelection(
  scope: string,
  shown: readonly Run[],
  known: readonly Run[] = shown,
): RunSelection {
  const [state, setState] = useState<SelectionState>(() => noSelection(scope));
  const headRef = useRef<HTMLInputElement>(null);
  // another filter: what was selected is not in view, nor what the user means any more
  const current = state.scope === scope ? state : noSelection(scope);
  if (current !== state) setState(current);

  useEffect(() => setState((s) => refreshSelected(s, known)), [known]);

  return useMemo(() => {
    const update = (fn: (s: SelectionState) => SelectionState) =>
      setState((s) => fn(s.scope === scope ? s : noSelection(scope)));
    const only = (s: SelectionState, list: readonly Run[]): SelectionState => ({
      ...s,
      runs: new Map(list.map((r) => [r.id, r])),
      anchor: undefined,
    });
    const toggle: RunSelection['toggle'] = (run, on, range) =>
      update((s) => toggleRun(s, shown, run, on, range));
    const setShown = (on: boolean) => update((s) => toggleShown(s, shown, on));
    const picked = shown.filter((r) => current.runs.has(r.id)).length;
    return {
      runs: [...current.runs.values()],
      has: (id) => current.runs.has(id),
      toggle,
      setShown,
      replace: (list) => update((s) => only(s, list)),
      replaceIn: (at, list) => setState((s) => (s.scope === at ? only(s, list) : s)),
      clear: () => update(() => noSelection(scope)),
      shown,
      scope,
      headRef,
      row: (run) => ({
        checked: current.runs.has(run.id),
        onChange: (on, range) => toggle(run, on, range),
      }),
      head: (label) => ({
        checked: picked > 0 && picked === shown.length,
        mixed: picked > 0 && picked < shown.length,
        onChange: setShown,
        label,
        ref: headRef,
      }),
    };
  }, [current, scope, shown]);
}
