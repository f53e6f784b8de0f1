import {
  isHeldBack,
  isTruncatedJson,
  metadataMatches,
  readableError,
  type AgentSummary,
  type Run,
  type RunList,
  type RunStatus,
  type RunTrigger,
} from '@runlog/core';

// Pure functions that fold a WebSocket run_update into cached query data. They never
// mutate their inputs and return the same object when nothing changed, so React Query
// skips re-renders for updates that do not concern a cached list.

const TERMINAL: ReadonlySet<RunStatus> = new Set(['succeeded', 'failed', 'cancelled', 'timed_out']);

/** How many recent runs an expanded agent keeps. */
export const AGENT_RUNS_LIMIT = 20;

/**
 * Which of two states of the same run to keep: a terminal state is never replaced by a
 * non-terminal one (updates can arrive after a refetch), otherwise the later `updated_at`.
 */
export function newerRun(current: Run, incoming: Run): Run {
  if (TERMINAL.has(current.status) && !TERMINAL.has(incoming.status)) return current;
  if (!TERMINAL.has(current.status) && TERMINAL.has(incoming.status)) return incoming;
  return Date.parse(incoming.updated_at) >= Date.parse(current.updated_at) ? incoming : current;
}

/**
 * The time a run is listed and filtered by, as the server's `sort_at`: when it was queued,
 * else when it started, else when it was recorded. A run recorded late (a backfill, a spool
 * sent after an outage) goes where its start puts it, not at the top.
 */
export function listedAt(run: Run): number {
  const at = Date.parse(run.queued_at ?? run.started_at ?? run.created_at);
  // a run queued to start later and ended before then (stopped): when it ended
  return run.queued_at !== null && run.started_at === null && run.ended_at !== null
    ? Math.min(at, Date.parse(run.ended_at))
    : at;
}

/** Newest first, as the server lists runs: `listedAt`, then id. */
export function compareNewestFirst(a: Run, b: Run): number {
  const d = listedAt(b) - listedAt(a);
  if (d !== 0) return d;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

/**
 * Folds a run into a newest-first list: replaces it in place when present, inserts a new
 * run at its place (the top, for a new run), and keeps at most `max` runs.
 * @example applyRunUpdate([older], newer, 20) // [newer, older]
 */
export function applyRunUpdate(list: readonly Run[], run: Run, max = AGENT_RUNS_LIMIT): Run[] {
  const i = list.findIndex((r) => r.id === run.id);
  if (i >= 0) {
    const kept = newerRun(list[i]!, run);
    if (kept === list[i]) return list as Run[];
    const next = list.slice();
    next[i] = kept;
    return next;
  }
  let at = list.findIndex((r) => compareNewestFirst(run, r) < 0);
  if (at < 0) at = list.length;
  if (at >= max) return list as Run[];
  const next = list.slice();
  next.splice(at, 0, run);
  return next.length > max ? next.slice(0, max) : next;
}

/** `applyRunUpdate` on a paged list answer, counting a new run in `total`. */
export function applyRunToList(data: RunList, run: Run, max: number): RunList {
  const runs = applyRunUpdate(data.runs, run, max);
  if (runs === data.runs) return data;
  const added = !data.runs.some((r) => r.id === run.id);
  const dropped = added && data.runs.length >= max;
  return {
    ...data,
    runs,
    total: data.total + (added ? 1 : 0),
    has_more: data.has_more || dropped,
  };
}

/** Replaces a run already on a page (a page other than the first never gains rows live). */
export function replaceRunInList(data: RunList, run: Run): RunList {
  const i = data.runs.findIndex((r) => r.id === run.id);
  if (i < 0) return data;
  const kept = newerRun(data.runs[i]!, run);
  if (kept === data.runs[i]) return data;
  const runs = data.runs.slice();
  runs[i] = kept;
  return { ...data, runs };
}

/**
 * Takes out a run that no longer matches its list's filters (a run leaving `running` in a
 * list of running runs), uncounting it; an update older than the state held is ignored.
 */
export function removeRunFromList(data: RunList, run: Run): RunList {
  const held = data.runs.find((r) => r.id === run.id);
  if (!held || newerRun(held, run) !== run) return data;
  return dropRunFromList(data, run.id);
}

/** A deleted run out of a cached list (the same list when it was not in it). */
export function dropRunFromList(data: RunList, runId: string): RunList {
  if (!data.runs.some((r) => r.id === runId)) return data;
  return {
    ...data,
    runs: data.runs.filter((r) => r.id !== runId),
    total: Math.max(0, data.total - 1),
  };
}

/** The Runs page filters a run can be checked against without the server. */
export interface RunFilters {
  agent_id?: string[] | undefined;
  status?: RunStatus[] | undefined;
  trigger?: RunTrigger[] | undefined;
  source?: string | undefined;
  from?: number | undefined;
  to?: number | undefined;
  q?: string | undefined;
  thread_id?: string | undefined;
  user_id?: string | undefined;
  tag?: string | undefined;
  parent_run_id?: string | undefined;
  model?: string | undefined;
  score?: string | undefined;
  score_min?: number | undefined;
  score_max?: number | undefined;
  score_label?: string | undefined;
  /** Runs some run retries (`retry_of`), or none does: the server's to tell. */
  retried?: boolean | undefined;
  /** Runs whose metadata holds each key with its value, as `GET /runs?metadata[key]=value`. */
  metadata?: Readonly<Record<string, string>> | undefined;
}

/**
 * Whether a run has a score the filter asks for, from the run's summary of its scores: its
 * names and labels tell, and so does the mean of a single score; the values of several are
 * the server's to tell (`undefined`).
 */
function scoreMatches(run: Run, f: RunFilters): boolean | undefined {
  const bounded = f.score_min !== undefined || f.score_max !== undefined;
  if (f.score === undefined) return bounded || f.score_label !== undefined ? undefined : true;
  const s = Object.hasOwn(run.scores, f.score) ? run.scores[f.score] : undefined;
  if (!s) return false;
  if (f.score_label !== undefined && !Object.hasOwn(s.labels, f.score_label)) return false;
  if (!bounded) return true;
  if (s.n !== 1) return undefined;
  // one score: the mean is its value (true 1, false 0); a label has none to bound
  if (s.avg === null) return false;
  return !(
    (f.score_min !== undefined && s.avg < f.score_min) ||
    (f.score_max !== undefined && s.avg > f.score_max)
  );
}

/**
 * Whether a run belongs in a filtered list; `undefined` when only the server can tell
 * (text search), so the caller refetches instead.
 */
export function runMatches(run: Run, f: RunFilters): boolean | undefined {
  // a retry, in the list or not, moves the run it retries in or out of a Retried filter's
  if (f.retried !== undefined && run.retry_of) return undefined;
  if (f.agent_id?.length && !f.agent_id.includes(run.agent_id)) return false;
  if (f.status?.length && !f.status.includes(run.status)) return false;
  if (f.trigger?.length && !f.trigger.includes(run.trigger)) return false;
  if (f.source && run.source !== f.source) return false;
  if (f.thread_id && run.thread_id !== f.thread_id) return false;
  if (f.user_id && run.user_id !== f.user_id) return false;
  if (f.tag && !run.tags.includes(f.tag)) return false;
  if (f.parent_run_id && run.parent_run_id !== f.parent_run_id) return false;
  const t = listedAt(run);
  if (f.from !== undefined && t < f.from) return false;
  if (f.to !== undefined && t > f.to) return false;
  const scored = scoreMatches(run, f);
  if (scored === false) return false;
  // the server's own predicate; but the list topics send large metadata as a preview, which
  // only the server can look into
  const described =
    f.metadata === undefined
      ? true
      : isTruncatedJson(run.metadata)
        ? undefined
        : metadataMatches(run.metadata, f.metadata);
  if (described === false) return false;
  // the models a run's steps name are the server's to tell (a run carries its first only),
  // and whether a run was retried (a new retry changes no field of the run it retries)
  if (f.q || f.model || f.retried !== undefined || scored === undefined || described === undefined)
    return undefined;
  return true;
}

/**
 * Folds a run into the agents list: it becomes its agent's latest run when it is that run
 * or newer, unless queued to start later (as the server picks it: it has not happened yet),
 * and a failure becomes the agent's last error. Unknown agents are left to a
 * refetch.
 */
export function applyRunToAgents(
  agents: AgentSummary[],
  run: Run,
  now = Date.now(),
): AgentSummary[] {
  const i = agents.findIndex((a) => a.id === run.agent_id);
  if (i < 0) return agents;
  const agent = agents[i]!;
  const latest = agent.latest_run;
  let nextLatest = latest;
  if (!isHeldBack(run, now) && (!latest || compareNewestFirst(run, latest) <= 0)) {
    nextLatest = latest && latest.id === run.id ? newerRun(latest, run) : run;
  }
  let lastError = agent.last_error;
  if (
    (run.status === 'failed' || run.status === 'timed_out') &&
    run.error &&
    (!lastError ||
      lastError.run_id === run.id ||
      Date.parse(run.updated_at) >= Date.parse(lastError.at ?? '0'))
  ) {
    lastError = {
      run_id: run.id,
      message: readableError(run.error).message,
      at: run.ended_at ?? run.updated_at,
    };
  }
  if (nextLatest === latest && lastError === agent.last_error) return agents;
  const next = agents.slice();
  next[i] = { ...agent, latest_run: nextLatest, last_error: lastError };
  return next;
}
