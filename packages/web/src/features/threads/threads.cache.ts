import type { InfiniteData } from '@tanstack/react-query';
import type { Run, RunList } from '@runlog/core';
import {
  applyRunToList,
  compareNewestFirst,
  dropRunFromList,
  replaceRunInList,
} from '../runs/runs.cache';

// Pure functions over a thread's cached runs (pages of GET /runs?thread_id=, newest first),
// for the live updates and the conversation view. They never mutate their inputs and return
// the same object when nothing changed.

/** A thread's runs as the cache holds them: newest-first pages, the oldest page last. */
export type ThreadRuns = InfiniteData<RunList, string | undefined>;

/**
 * Folds a run of the thread into its pages: replaced in place when held, else inserted where
 * newest-first order puts it (the top of the first page, for a new run). A run older than
 * every page read so far is left to "Load earlier turns", which reads it in its place.
 * @example applyRunToThread(data, newRun).pages[0].runs[0] === newRun // true
 */
export function applyRunToThread(data: ThreadRuns, run: Run): ThreadRuns {
  const held = data.pages.findIndex((p) => p.runs.some((r) => r.id === run.id));
  if (held >= 0) {
    const page = replaceRunInList(data.pages[held]!, run);
    if (page === data.pages[held]) return data;
    const pages = data.pages.slice();
    pages[held] = page;
    return { ...data, pages };
  }
  const last = data.pages.length - 1;
  const at = data.pages.findIndex(
    (p, i) => p.runs.some((r) => compareNewestFirst(run, r) < 0) || (i === last && !p.has_more),
  );
  if (at < 0) return data;
  // every page counts the thread's runs: the new one counts on each
  const pages = data.pages.map((p, i) =>
    i === at ? applyRunToList(p, run, Number.MAX_SAFE_INTEGER) : { ...p, total: p.total + 1 },
  );
  return { ...data, pages };
}

/** A deleted run out of the thread's pages (the same data when it was not in them). */
export function dropRunFromThread(data: ThreadRuns, runId: string): ThreadRuns {
  const held = data.pages.findIndex((p) => p.runs.some((r) => r.id === runId));
  if (held < 0) return data;
  const pages = data.pages.map((p, i) =>
    i === held ? dropRunFromList(p, runId) : { ...p, total: Math.max(0, p.total - 1) },
  );
  return { ...data, pages };
}

/**
 * The thread's runs read so far as its turns: the oldest first, each run once (a run folded
 * in live may come again in a page read later).
 */
export function turnsOf(data: Pick<ThreadRuns, 'pages'> | undefined): Run[] {
  if (!data) return [];
  const seen = new Set<string>();
  const turns: Run[] = [];
  for (const page of data.pages)
    for (const run of page.runs) {
      if (seen.has(run.id)) continue;
      seen.add(run.id);
      turns.push(run);
    }
  return turns.reverse();
}
