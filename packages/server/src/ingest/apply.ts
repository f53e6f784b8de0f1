import {
  STEP_TYPES,
  storedDepth,
  computeCostNanos,
  isTerminalStatus,
  usdToNanos,
  type Price,
  type RunFields,
  type RunStatus,
  type StepFields,
  type StepType,
  type Usage,
  isTruncatedJson,
  truncatedJson,
  canTransition,
} from '@runlog/core';
import type { RunRow, StepRow } from '../db/schema.js';
import { NO_MODELS } from '../stats/models.js';

/** The agent a run belongs to until an event names one. */
export const UNKNOWN_AGENT = 'unknown';

/**
 * Whether `agentId` would move a run stored under `storedAgent` to another agent: a run
 * belongs to its agent, but one first known from a step (agent `unknown`) takes the first it
 * is given. `/ingest` keeps the stored agent then; `POST /runs` and `PATCH` answer 409.
 */
export function movesRun(storedAgent: string, agentId: string | undefined): boolean {
  return agentId !== undefined && agentId !== storedAgent && storedAgent !== UNKNOWN_AGENT;
}

export interface ApplyEnv {
  now: number;
  maxFieldBytes: number;
  /** How long a running run may go without any event before it is timed out. */
  leaseMs: number;
  price: (model: string) => Price | undefined;
}

/**
 * JSON text for a payload field. Over `maxBytes`, the stored value is a marker object with
 * the original size and a prefix of the text, so the event is kept rather than refused.
 */
export function encodeJson(value: unknown, maxBytes: number): string | null {
  const text = payloadText(value);
  if (text === undefined) return null;
  const size = bytesOver(text, maxBytes);
  if (size === undefined) return text;
  return JSON.stringify(truncatedJson(text, size, Math.floor((maxBytes - 256) / 3)));
}

/** A payload's JSON text as stored, before any truncation; none for null or undefined. */
export function payloadText(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  // a part nested too deep to serialize safely is cut, the rest kept
  return JSON.stringify(storedDepth(value));
}

/** `text`'s size in UTF-8 bytes when that is over `maxBytes`; undefined within it. */
export function bytesOver(text: string, maxBytes: number): number | undefined {
  if (text.length * 3 <= maxBytes) return undefined; // cheap bound: UTF-8 is at most 3 bytes per UTF-16 unit
  const size = Buffer.byteLength(text, 'utf8');
  return size > maxBytes ? size : undefined;
}

/**
 * JSON text for a metadata object, held to `maxBytes` as `encodeJson` holds a payload: over
 * it, the stored metadata is the marker object (still an object, as metadata must be).
 */
export function encodeMetadata(value: Record<string, unknown>, maxBytes: number): string {
  return encodeJson(value, maxBytes) ?? '{}';
}

export function newRunRow(projectId: string, id: string, now: number): RunRow {
  return {
    project_id: projectId,
    id,
    agent_id: UNKNOWN_AGENT,
    status: 'running',
    trigger: 'api',
    source: null,
    triggered_by: null,
    user_id: null,
    thread_id: null,
    parent_run_id: null,
    retry_of: null,
    attempt: 1,
    input: null,
    output: null,
    error: null,
    model: null,
    tags: '[]',
    metadata: '{}',
    queued_at: null,
    started_at: null,
    ended_at: null,
    duration_ms: null,
    cancel_requested_at: null,
    lease_expires_at: null,
    worker_id: null,
    last_heartbeat_at: null,
    deadline_at: null,
    step_count: 0,
    error_count: 0,
    llm_calls: 0,
    tool_calls: 0,
    input_tokens: 0,
    output_tokens: 0,
    cost_nanos: 0,
    models: NO_MODELS,
    scores: '{}',
    sort_at: now,
    created_at: now,
    updated_at: now,
  };
}

type Mode = 'fill' | 'overwrite';

/** A JSON-object text column (metadata) as an object; anything else reads as `{}`. */
export function parseObject(text: string): Record<string, unknown> {
  try {
    const v = JSON.parse(text) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

function mergeMetadata(
  current: string,
  incoming: Record<string, unknown> | undefined,
  mode: Mode,
  maxBytes: number,
): string {
  if (!incoming || Object.keys(incoming).length === 0) return current;
  const base = parseObject(current);
  // metadata stored truncated has no keys left to merge with: an event that fills gaps
  // (a start sent again) leaves it as it is, one that overwrites replaces it
  if (isTruncatedJson(base))
    return mode === 'overwrite' ? encodeMetadata(incoming, maxBytes) : current;
  const merged = mode === 'overwrite' ? { ...base, ...incoming } : { ...incoming, ...base };
  return encodeMetadata(merged, maxBytes);
}

function mergeTags(current: string, incoming: string[] | undefined): string {
  if (!incoming || incoming.length === 0) return current;
  let base: string[] = [];
  try {
    base = JSON.parse(current) as string[];
  } catch {
    base = [];
  }
  const set = new Set(base);
  let changed = false;
  for (const t of incoming) {
    if (!set.has(t)) {
      set.add(t);
      changed = true;
    }
  }
  return changed ? JSON.stringify([...set]) : current;
}

/** Sets `key` from `value` when given: always in overwrite mode, only over an unset value in fill mode. */
function put<R, K extends keyof R>(
  row: R,
  key: K,
  value: R[K] | undefined,
  mode: Mode,
  unset: (v: R[K]) => boolean,
): void {
  if (value === undefined) return;
  if (mode === 'overwrite' || unset(row[key])) row[key] = value;
}

const isNull = (v: unknown) => v === null;

export type RunEventKind = 'start' | 'update' | 'end';

/**
 * Applies a run event to the stored row (absent for a new run) and returns the new row.
 * `run.start` and any event reaching a finished run only fill gaps, so events in any order
 * give the same run; terminal statuses are never left.
 */
export function applyRunEvent(
  kind: RunEventKind,
  current: RunRow | undefined,
  f: RunFields,
  projectId: string,
  env: ApplyEnv,
): RunRow {
  const row: RunRow = current ? { ...current } : newRunRow(projectId, f.id, env.now);
  const wasTerminal = isTerminalStatus(row.status as RunStatus);
  const mode: Mode = kind === 'start' || wasTerminal ? 'fill' : 'overwrite';
  const max = env.maxFieldBytes;

  // a run belongs to its agent: a later event only names it when it was unknown (PATCH and
  // POST /runs refuse another agent with a 409; /ingest keeps the first)
  put(row, 'agent_id', f.agent_id, 'fill', (v) => v === UNKNOWN_AGENT);
  put(row, 'trigger', f.trigger, mode, (v) => v === 'api');
  put(row, 'attempt', f.attempt, mode, (v) => v === 1);
  put(row, 'source', f.source ?? undefined, mode, isNull);
  put(row, 'triggered_by', f.triggered_by ?? undefined, mode, isNull);
  put(row, 'user_id', f.user_id ?? undefined, mode, isNull);
  put(row, 'thread_id', f.thread_id ?? undefined, mode, isNull);
  put(row, 'parent_run_id', f.parent_run_id ?? undefined, mode, isNull);
  put(row, 'retry_of', f.retry_of ?? undefined, mode, isNull);
  put(row, 'model', f.model ?? undefined, mode, isNull);
  if (f.input !== undefined) put(row, 'input', encodeJson(f.input, max), mode, isNull);
  // a late end with another outcome than the one recorded is not this run's result: a
  // succeeded run takes no error from it, a failed one no output
  const eventStatus = kind === 'end' ? (f.status ?? (f.error ? 'failed' : 'succeeded')) : f.status;
  const otherOutcome = wasTerminal && eventStatus !== undefined && eventStatus !== row.status;
  if (f.output !== undefined && !otherOutcome)
    put(row, 'output', encodeJson(f.output, max), mode, isNull);
  if (f.error !== undefined && !otherOutcome)
    put(row, 'error', f.error === null ? null : encodeJson(f.error, max), mode, isNull);
  put(row, 'queued_at', f.queued_at, mode, isNull);
  row.metadata = mergeMetadata(row.metadata, f.metadata, mode, max);
  row.tags = mergeTags(row.tags, f.tags);

  if (!wasTerminal) {
    let target: RunStatus | undefined;
    if (kind === 'start')
      target = current
        ? (f.status ?? (row.status === 'queued' ? 'running' : undefined))
        : (f.status ?? 'running');
    else if (kind === 'update') target = f.status;
    else target = f.status ?? (f.error ? 'failed' : 'succeeded');
    if (target && (!current || canTransition(row.status as RunStatus, target))) row.status = target;
  }
  // a start time is a fact about the run, whatever order it arrives in
  put(row, 'started_at', f.started_at, kind === 'start' ? 'fill' : mode, isNull);
  // the server's clock stands in for a start only while the run goes on: a start without a
  // time that arrives after the run's end leaves its duration unknown, not 0 ms
  if (kind === 'start' && row.started_at === null && row.status !== 'queued' && !wasTerminal)
    row.started_at = env.now;
  if (isTerminalStatus(row.status as RunStatus)) {
    if (!wasTerminal) row.ended_at = f.ended_at ?? env.now;
    else if (!otherOutcome) put(row, 'ended_at', f.ended_at, 'fill', isNull);
  }
  return finishRun(row, current, env);
}

/** The run a step creates when it arrives before its run: running, agent unknown until told. */
export function implicitRun(projectId: string, id: string, env: ApplyEnv): RunRow {
  return finishRun(newRunRow(projectId, id, env.now), undefined, env);
}

/**
 * Keeps a run alive: extends its lease, once less than half of it is left (as a step's event
 * and `POST /runs/:id/heartbeat` do), so an agent beating often does not write each beat.
 * Unknown runs are not created by a heartbeat.
 */
export function applyHeartbeat(current: RunRow, env: Pick<ApplyEnv, 'now' | 'leaseMs'>): RunRow {
  if (current.status !== 'running' || current.worker_id !== null) return current;
  if ((current.lease_expires_at ?? 0) - env.now >= env.leaseMs / 2) return current;
  return { ...renewLease({ ...current }, env), last_heartbeat_at: env.now };
}

/**
 * Any event of a running run recorded without a worker keeps it alive for `leaseMs` more.
 * A claimed run's lease belongs to its worker's heartbeats: events must not stretch it, or a
 * dead worker's run would live for the default lease instead of the one it claimed with.
 * Mutates and returns `row`.
 */
function renewLease(row: RunRow, env: Pick<ApplyEnv, 'now' | 'leaseMs'>): RunRow {
  if (row.status === 'running' && row.worker_id === null) {
    row.lease_expires_at = Math.max(row.lease_expires_at ?? 0, env.now + env.leaseMs);
  }
  return row;
}

/**
 * A step of `run` arrived: the run's lease is renewed, but only once less than half of it is
 * left, so a run recording many steps does not rewrite its lease index entry for each.
 * Returns `run` itself when nothing changes.
 */
export function renewLeaseForStep(run: RunRow, env: ApplyEnv): RunRow {
  const left = (run.lease_expires_at ?? 0) - env.now;
  if (run.status !== 'running' || run.worker_id !== null || left >= env.leaseMs / 2) return run;
  return renewLease({ ...run }, env);
}

/** Step type names other tools use, and the Runlog type each means. */
const STEP_TYPE_ALIASES = new Map<string, StepType>([
  ['chat', 'llm'],
  ['completion', 'llm'],
  ['generation', 'llm'],
  ['generate', 'llm'],
  ['model', 'llm'],
  ['function', 'tool'],
  ['tool_call', 'tool'],
  ['execute_tool', 'tool'],
  ['invoke_agent', 'agent'],
  ['subagent', 'agent'],
  ['chain', 'agent'],
  ['thinking', 'think'],
  ['reasoning', 'think'],
  ['eval', 'evaluator'],
  ['evaluation', 'evaluator'],
  ['embeddings', 'embedding'],
  ['embed', 'embedding'],
  ['retriever', 'retrieval'],
  ['search', 'retrieval'],
]);

/**
 * A start that comes after the stored end (its events sent by two hosts whose clocks differ,
 * the end arriving first) is taken as the end: nothing is stored ending before it starts.
 * One event giving both the other way round is refused where it is validated.
 */
function startNoLaterThanEnd(startedAt: number | null, endedAt: number | null): number | null {
  return startedAt !== null && endedAt !== null && startedAt > endedAt ? endedAt : startedAt;
}

/**
 * A step's first token held between its start and its end: its clock is the step's own, so
 * only a recording mistake puts it outside, and a time to first token past the step's whole
 * duration (or below zero) would read as data.
 */
function withinStep(at: number | null, startedAt: number | null, endedAt: number | null) {
  if (at === null) return null;
  if (startedAt !== null && at < startedAt) return startedAt;
  if (endedAt !== null && at > endedAt) return endedAt;
  return at;
}

/** Derived fields: duration, sort key, lease; `updated_at` moves only when something changed. */
function finishRun(row: RunRow, before: RunRow | undefined, env: ApplyEnv): RunRow {
  row.started_at = startNoLaterThanEnd(row.started_at, row.ended_at);
  row.duration_ms =
    row.ended_at !== null && row.started_at !== null
      ? Math.max(0, row.ended_at - row.started_at)
      : null;
  // a queued run waits in queued_at order for a worker: the server's clock stands in for a
  // time no event gave, and gives way to the run's own start or end, for a run is not
  // queued after it started (a backfill, a host's clock behind)
  if (row.status === 'queued' && row.queued_at === null) row.queued_at = env.now;
  const first = row.started_at ?? row.ended_at;
  if (row.queued_at !== null && first !== null && row.queued_at > first) row.queued_at = first;
  row.sort_at = row.queued_at ?? row.started_at ?? row.created_at;
  if (isTerminalStatus(row.status as RunStatus)) {
    row.lease_expires_at = null;
  }
  if (before && sameRun(before, row)) return before;
  renewLease(row, env);
  row.updated_at = env.now;
  return row;
}

const RUN_COMPARED: (keyof RunRow)[] = [
  'agent_id',
  'status',
  'trigger',
  'source',
  'triggered_by',
  'user_id',
  'thread_id',
  'parent_run_id',
  'retry_of',
  'attempt',
  'input',
  'output',
  'error',
  'model',
  'tags',
  'metadata',
  'queued_at',
  'started_at',
  'ended_at',
  'duration_ms',
  'sort_at',
  'cancel_requested_at',
];

function sameRun(a: RunRow, b: RunRow): boolean {
  return RUN_COMPARED.every((k) => a[k] === b[k]);
}

export function normalizeStepType(type: string | undefined): {
  type: StepType | undefined;
  original?: string;
} {
  if (type === undefined) return { type: undefined };
  const t = type.trim().toLowerCase();
  if ((STEP_TYPES as readonly string[]).includes(t)) return { type: t as StepType };
  // a Map: a name such as `constructor` must not find Object.prototype
  const mapped = STEP_TYPE_ALIASES.get(t);
  return mapped ? { type: mapped } : { type: 'custom', original: type };
}

export function newStepRow(
  projectId: string,
  runId: string,
  id: string,
  seq: number,
  now: number,
): StepRow {
  return {
    project_id: projectId,
    run_id: runId,
    id,
    parent_step_id: null,
    seq,
    type: 'custom',
    name: null,
    status: 'running',
    started_at: null,
    ended_at: null,
    duration_ms: null,
    input: null,
    output: null,
    error: null,
    model: null,
    provider: null,
    input_tokens: null,
    output_tokens: null,
    cached_input_tokens: null,
    reasoning_tokens: null,
    cost_nanos: null,
    cost_given: null,
    first_token_at: null,
    metadata: '{}',
    created_at: now,
    updated_at: now,
  };
}

export type StepEventKind = 'start' | 'end';

/**
 * The error `type` of a step the server ended because its run ended first: the agent never
 * sent the step's end (it did not await the step, or the end is still on its way). Such an
 * end is the server's stand-in: the step's own `step.end`, when it comes, replaces it.
 */
export const RUN_ENDED_STEP_ERROR = 'RunEnded';

/** Whether `step` was ended by the server when its run ended, not by its own end event. */
export function endedWithRun(step: StepRow): boolean {
  if (step.status !== 'failed' || step.error === null) return false;
  if (!step.error.includes(RUN_ENDED_STEP_ERROR)) return false;
  try {
    return (JSON.parse(step.error) as { type?: unknown }).type === RUN_ENDED_STEP_ERROR;
  } catch {
    return false;
  }
}

/** `step`, still running when `run` ended, ended with it: failed, saying so, at the run's end. */
export function stepEndedWithRun(step: StepRow, run: RunRow): StepRow {
  const now = Math.max(run.updated_at, step.updated_at);
  const at = Math.max(run.ended_at ?? now, step.started_at ?? 0);
  return {
    ...step,
    status: 'failed',
    error: JSON.stringify({
      message: `the run ended ${run.status} before this step reported its end`,
      type: RUN_ENDED_STEP_ERROR,
    }),
    ended_at: at,
    duration_ms: step.started_at !== null ? Math.max(0, at - step.started_at) : null,
    updated_at: now,
  };
}

/** Applies a step event; like runs, a start (or anything after the end) only fills gaps. */
export function applyStepEvent(
  kind: StepEventKind,
  current: StepRow | undefined,
  f: StepFields,
  projectId: string,
  seq: number,
  env: ApplyEnv,
): StepRow {
  const row: StepRow = current
    ? { ...current }
    : newStepRow(projectId, f.run_id, f.id, f.seq ?? seq, env.now);
  if (kind === 'end' && current && endedWithRun(current)) {
    // the server's stand-in end gives way to the step's own
    row.status = 'running';
    row.error = null;
    row.ended_at = null;
  }
  const wasEnded = row.status !== 'running';
  const mode: Mode = kind === 'start' || wasEnded ? 'fill' : 'overwrite';
  const max = env.maxFieldBytes;
  const { type, original } = normalizeStepType(f.type);

  put(row, 'type', type, mode, (v) => v === 'custom');
  put(row, 'parent_step_id', f.parent_step_id ?? undefined, mode, isNull);
  put(row, 'name', f.name ?? undefined, mode, isNull);
  put(row, 'model', f.model ?? undefined, mode, isNull);
  put(row, 'provider', f.provider ?? undefined, mode, isNull);
  put(row, 'input_tokens', f.input_tokens ?? undefined, mode, isNull);
  put(row, 'output_tokens', f.output_tokens ?? undefined, mode, isNull);
  put(row, 'cached_input_tokens', f.cached_input_tokens ?? undefined, mode, isNull);
  put(row, 'reasoning_tokens', f.reasoning_tokens ?? undefined, mode, isNull);
  if (f.input !== undefined) put(row, 'input', encodeJson(f.input, max), mode, isNull);
  // as for runs: a late end with another outcome than the one recorded is not this step's
  // result, so a succeeded step takes no error from it and a failed one no output
  const endStatus = kind === 'end' ? stepEndStatus(f) : undefined;
  const otherOutcome = wasEnded && endStatus !== undefined && endStatus !== row.status;
  if (f.output !== undefined && !otherOutcome)
    put(row, 'output', encodeJson(f.output, max), mode, isNull);
  if (f.error !== undefined && !otherOutcome)
    put(row, 'error', f.error === null ? null : encodeJson(f.error, max), mode, isNull);
  put(row, 'started_at', f.started_at, kind === 'start' ? 'fill' : mode, isNull);
  // a time of that other outcome's answer, as its end is: not this step's
  if (!otherOutcome) put(row, 'first_token_at', f.first_token_at ?? undefined, mode, isNull);
  row.metadata = mergeMetadata(
    row.metadata,
    original ? { ...f.metadata, type: original } : f.metadata,
    mode,
    max,
  );

  if (kind === 'start' && !current && row.started_at === null) row.started_at = env.now;
  if (kind === 'end' && !wasEnded) {
    row.status = endStatus!;
    row.ended_at = f.ended_at ?? env.now;
  } else if (wasEnded && !otherOutcome) {
    put(row, 'ended_at', f.ended_at, 'fill', isNull);
  }

  if (f.cost_usd !== undefined && f.cost_usd !== null) {
    if (mode === 'overwrite' || row.cost_nanos === null) {
      row.cost_nanos = usdToNanos(f.cost_usd);
      row.cost_given = 1;
    }
  } else if (row.model && (row.input_tokens !== null || row.output_tokens !== null)) {
    // a cost the step was given stays: only one computed from prices is computed again, when
    // the step is still running or a later event fills in usage it lacked
    const price = env.price(row.model);
    if (
      price &&
      (row.cost_nanos === null ||
        (current !== undefined &&
          (mode === 'overwrite' || usageFilled(current, row)) &&
          costComputed(current, env)))
    ) {
      row.cost_nanos = computeCostNanos(price, usageOf(row));
      row.cost_given = 0;
    }
  }
  row.started_at = startNoLaterThanEnd(row.started_at, row.ended_at);
  row.first_token_at = withinStep(row.first_token_at, row.started_at, row.ended_at);
  row.duration_ms =
    row.ended_at !== null && row.started_at !== null
      ? Math.max(0, row.ended_at - row.started_at)
      : null;
  if (current && sameStep(current, row)) return current;
  row.updated_at = env.now;
  return row;
}

const USAGE_COLUMNS = [
  'input_tokens',
  'output_tokens',
  'cached_input_tokens',
  'reasoning_tokens',
] as const;

function usageOf(step: StepRow): Usage {
  return {
    inputTokens: step.input_tokens,
    outputTokens: step.output_tokens,
    cachedInputTokens: step.cached_input_tokens,
    reasoningTokens: step.reasoning_tokens,
  };
}

/**
 * Whether `step`'s cost is what the price table gives for its model and usage: computed, not
 * given (a given cost is kept, whatever usage or model comes after it).
 */
function costComputed(step: StepRow, env: ApplyEnv): boolean {
  if (step.cost_nanos === null || step.model === null) return false;
  // known since migration 0017: computed at whatever price was then, the price may have
  // changed since (a step whose output tokens came after a price change was priced at its
  // input alone)
  if (step.cost_given !== null) return step.cost_given === 0;
  // a cost is computed only over tokens: one a step had before any was given
  if (step.input_tokens === null && step.output_tokens === null) return false;
  const price = env.price(step.model);
  return price !== undefined && step.cost_nanos === computeCostNanos(price, usageOf(step));
}

/**
 * Whether `row` (a later event over an ended step: it only fills gaps) filled in usage that
 * `current` lacked: a computed cost is then computed again over the whole usage. (Kept, it
 * priced a step whose output tokens came after its input tokens at its input alone.)
 */
function usageFilled(current: StepRow, row: StepRow): boolean {
  return USAGE_COLUMNS.some((k) => current[k] === null && row[k] !== null);
}

const STEP_COMPARED: (keyof StepRow)[] = [
  'parent_step_id',
  'type',
  'name',
  'status',
  'started_at',
  'ended_at',
  'input',
  'output',
  'error',
  'model',
  'provider',
  'input_tokens',
  'output_tokens',
  'cached_input_tokens',
  'reasoning_tokens',
  'cost_nanos',
  'cost_given',
  'first_token_at',
  'metadata',
];

function sameStep(a: StepRow, b: StepRow): boolean {
  return STEP_COMPARED.every((k) => a[k] === b[k]);
}

/** The status a `step.end` gives: its own final one, else failed when it carries an error. */
function stepEndStatus(f: StepFields): 'succeeded' | 'failed' {
  if (f.status === 'succeeded' || f.status === 'failed') return f.status;
  return f.error ? 'failed' : 'succeeded';
}

/** What one step adds to its run's rollups. */
export interface StepContribution {
  step_count: number;
  error_count: number;
  llm_calls: number;
  tool_calls: number;
  input_tokens: number;
  output_tokens: number;
  cost_nanos: number;
}

export function stepContribution(step: StepRow | undefined): StepContribution {
  if (!step)
    return {
      step_count: 0,
      error_count: 0,
      llm_calls: 0,
      tool_calls: 0,
      input_tokens: 0,
      output_tokens: 0,
      cost_nanos: 0,
    };
  return {
    step_count: 1,
    error_count: step.status === 'failed' ? 1 : 0,
    llm_calls: step.type === 'llm' ? 1 : 0,
    tool_calls: step.type === 'tool' ? 1 : 0,
    input_tokens: step.input_tokens ?? 0,
    output_tokens: step.output_tokens ?? 0,
    cost_nanos: step.cost_nanos ?? 0,
  };
}
