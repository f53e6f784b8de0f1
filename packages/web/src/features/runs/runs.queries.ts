import { keepPreviousData, queryOptions } from '@tanstack/react-query';
import {
  MAX_EXPORTED_RUNS,
  metadataQuery,
  type RunExportFormat,
  type Run,
  type RunList,
  type RunSort,
  type RunStatus,
  type RunTrigger,
} from '@runlog/core';
import { api, apiExchange, apiUrl } from '../../lib/api';
import type { RunFilters } from './runs.cache';

export const PAGE_SIZE = 50;

/** The Runs page's view as kept in the URL. */
export interface RunsView {
  agent: string[];
  status: RunStatus[];
  trigger: RunTrigger[];
  source: string;
  /** An instant, as the URL has it: ISO-8601 in UTC (a link without a zone reads as local time). */
  from: string;
  to: string;
  q: string;
  /** Exact matches, each shown as a removable chip: a run page's Thread, User, Tag, Sub-runs link. */
  thread: string;
  user: string;
  tag: string;
  parent: string;
  /** Runs with a step that names this model (a Stats page "By model" row's link). */
  model: string;
  /**
   * Runs with a score of this name (a Stats page "Scores" row's link), narrowed by a value
   * range (`score_max=0`: the thumbs down) or a label. The bounds are numbers as the URL
   * writes them ('' when not given).
   */
  score: string;
  scoreMin: string;
  scoreMax: string;
  scoreLabel: string;
  /** Runs retried already ('true'), or not yet ('false'), or either (''). */
  retried: '' | 'true' | 'false';
  /**
   * Runs whose metadata holds each key with its value (`metadata[env]=prod` in the URL, as
   * `GET /runs` takes it), each a removable chip; `{}` for none.
   */
  metadata: Readonly<Record<string, string>>;
  /** Newest first, or the most cost, longest duration, most tokens first. */
  sort: RunSort;
  page: number;
}

/** The orders the Runs page offers, as its Sort menu, the table's caption and an export name them. */
export const SORT_LABELS: Record<RunSort, string> = {
  newest: 'Newest first',
  cost: 'Most cost first',
  duration: 'Longest first',
  tokens: 'Most tokens first',
};

export const runListKey = (view: RunsView) => ['runs', 'list', view] as const;

/** `metadata[key]=value` as the URL names it: what the API reads, and `metadataQuery` writes. */
const METADATA_PARAM = /^metadata\[(.+)\]$/s;

/**
 * The metadata filter a URL holds, read as the server reads `metadata[key]`: the key between
 * the first `[` and the last `]` (`metadata[x]y]` is the key `x]y`). An empty value is no
 * filter, as for any parameter; a key given twice counts once, its first value.
 * @example metadataFromParams(new URLSearchParams('metadata[env]=prod')) // { env: 'prod' }
 */
export function metadataFromParams(p: URLSearchParams): Record<string, string> {
  const pairs: [string, string][] = [];
  for (const [name, value] of p) {
    const key = METADATA_PARAM.exec(name)?.[1];
    // the API refuses `__proto__` (a 400 for the whole list): it never filters
    if (key === undefined || key === '__proto__' || value === '') continue;
    if (!pairs.some(([k]) => k === key)) pairs.push([key, value]);
  }
  // own properties, whatever the key (`constructor`, `toString`)
  return Object.fromEntries(pairs);
}

/** A date filter from the URL (an instant, or local time when it has no zone) in epoch ms. */
export function localToMs(value: string): number | undefined {
  if (!value) return undefined;
  const ms = new Date(value).getTime();
  return Number.isNaN(ms) ? undefined : ms;
}

/**
 * A date filter as the URL keeps it: the instant in UTC, so a shared link means the same
 * runs in every time zone. `undefined` for an empty or unreadable input.
 * @example urlInstant('2026-12-04T09:00') // '2026-12-04T08:00:00.000Z' in Paris
 */
export function urlInstant(localInput: string): string | undefined {
  const ms = localToMs(localInput);
  return ms === undefined ? undefined : new Date(ms).toISOString();
}

/** A URL date filter as a `datetime-local` input shows it: the viewer's local time. */
export function localInput(value: string): string {
  const ms = localToMs(value);
  if (ms === undefined) return '';
  const d = new Date(ms);
  const two = (n: number) => String(n).padStart(2, '0');
  const seconds = d.getSeconds() !== 0 ? `:${two(d.getSeconds())}` : '';
  // a year typed digit by digit passes through 0002, 0020...: four digits, or the input clears
  const year = String(d.getFullYear()).padStart(4, '0');
  return `${year}-${two(d.getMonth() + 1)}-${two(d.getDate())}T${two(d.getHours())}:${two(d.getMinutes())}${seconds}`;
}

/**
 * The end of a `To` filter: the input picks a minute, and a run at 09:30:40 is one "to
 * 09:30"; an instant with seconds (a link written by hand) stays as it is.
 * @example throughMinute(Date.UTC(2026, 11, 4, 9, 30)) === Date.UTC(2026, 11, 4, 9, 30, 59, 999)
 */
export function throughMinute(ms: number | undefined): number | undefined {
  return ms !== undefined && ms % 60_000 === 0 ? ms + 59_999 : ms;
}

export function viewFilters(view: RunsView): RunFilters {
  return {
    agent_id: view.agent,
    status: view.status,
    trigger: view.trigger,
    source: view.source || undefined,
    from: localToMs(view.from),
    to: throughMinute(localToMs(view.to)),
    q: view.q || undefined,
    thread_id: view.thread || undefined,
    user_id: view.user || undefined,
    tag: view.tag || undefined,
    parent_run_id: view.parent || undefined,
    model: view.model || undefined,
    score: view.score || undefined,
    score_min: view.scoreMin ? Number(view.scoreMin) : undefined,
    score_max: view.scoreMax ? Number(view.scoreMax) : undefined,
    score_label: view.scoreLabel || undefined,
    retried: view.retried ? view.retried === 'true' : undefined,
    metadata: Object.keys(view.metadata).length > 0 ? view.metadata : undefined,
  };
}

/**
 * The `GET /runs` parameters of a view's filters and order, without its page: what the Runs
 * page lists and what "select all matching" reads page by page.
 * @example api<RunList>('GET', '/runs', { query: { ...runListParams(view), limit: 200 } })
 */
export function runListParams(view: RunsView) {
  const f = viewFilters(view);
  return {
    agent_id: f.agent_id?.join(','),
    status: f.status?.join(','),
    trigger: f.trigger?.join(','),
    source: f.source,
    from: f.from,
    to: f.to,
    q: f.q,
    thread_id: f.thread_id,
    user_id: f.user_id,
    tag: f.tag,
    parent_run_id: f.parent_run_id,
    model: f.model,
    score: f.score,
    score_min: f.score_min,
    score_max: f.score_max,
    score_label: f.score_label,
    retried: f.retried === undefined ? undefined : String(f.retried),
    sort: view.sort === 'newest' ? undefined : view.sort,
    // `metadata[env]`: no name above can clash with one
    ...metadataQuery(f.metadata),
  };
}

/**
 * The download of the runs a view lists, in its order: its filters and sort as the list sends
 * them, no page. It asks for the most an export holds (`MAX_EXPORTED_RUNS`), not the server's
 * smaller default, so the file has every run the list counts up to that.
 * @example <a href={runsExportPath(view, 'csv')} download>CSV</a>
 */
export function runsExportPath(view: RunsView, format: RunExportFormat): string {
  return apiUrl(`/runs.${format}`, { ...runListParams(view), limit: MAX_EXPORTED_RUNS });
}

export const runListQuery = (view: RunsView) =>
  queryOptions({
    queryKey: runListKey(view),
    queryFn: ({ signal }) =>
      api<RunList>('GET', '/runs', {
        query: { ...runListParams(view), limit: PAGE_SIZE, offset: view.page * PAGE_SIZE },
        signal,
      }),
    placeholderData: keepPreviousData,
  });

/** The runs that retried `runId` (`seen`: the retries the agent's recent runs show, to refetch when one appears). */
export const retriesQuery = (runId: string, seen: string) =>
  queryOptions({
    queryKey: ['runs', 'retries', runId, seen] as const,
    queryFn: ({ signal }) =>
      api<RunList>('GET', '/runs', { query: { retry_of: runId, limit: 20 }, signal }),
    placeholderData: keepPreviousData,
  });

/** How many runs of one thread an agent runs now: what holds a thread's next run back. */
export const threadRunningQuery = (agentId: string, threadId: string) =>
  queryOptions({
    queryKey: ['runs', 'thread-running', agentId, threadId] as const,
    queryFn: ({ signal }) =>
      api<RunList>('GET', '/runs', {
        query: { agent_id: agentId, thread_id: threadId, status: 'running', limit: 1 },
        signal,
      }).then((list) => list.total),
  });

export const cancelRun = (runId: string) =>
  api<Run>('POST', `/runs/${encodeURIComponent(runId)}/cancel`);
/** Start now: a queued run held back until later may be taken by a worker at once. */
export const startRunNow = (runId: string) =>
  api<Run>('POST', `/runs/${encodeURIComponent(runId)}/start-now`);
/**
 * Retries a run unless it was retried already (`once`): then the answer is its newest retry,
 * `queued: false`. The server looks and queues in one step, so two clicks (or a teammate's)
 * queue one retry.
 */
export const retryRunOnce = (runId: string): Promise<{ run: Run; queued: boolean }> =>
  apiExchange<Run>('POST', `/runs/${encodeURIComponent(runId)}/retry`, {
    body: { once: true },
  }).then(({ status, body }) => ({ run: body, queued: status === 201 }));
