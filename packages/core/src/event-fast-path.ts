import { MAX_STEP_COST_USD } from './cost.js';
import { RUN_TRIGGERS } from './enums.js';
import {
  ID_PATTERN,
  ISO_TIME_PATTERN,
  MAX_INT32,
  SECONDS_LIKE_MS,
  type IngestEvent,
  type RunFields,
  type StepFields,
} from './schemas.js';
import { normalizeRunStatus, normalizeStepStatus } from './status.js';
import { MAX_TIME_MS, PLAIN_YEARS_END_MS } from './time.js';

/**
 * `/ingest` checks thousands of events a second, nearly all of one shape: a step or a run
 * with ids, plain text, times and counts. `IngestEvent.safeParse` takes about 4.5 µs an
 * event there (a third of the server's own work on a batch besides writing it); this takes
 * a fraction of that for the events whose every field is of that plain kind, and answers
 * what the schema's parse would (the same object, unknown keys dropped). Anything else (an
 * emoji, a NUL, a score, a value out of bounds, an invalid event) answers undefined, and the
 * schema parses it and says what is wrong: this never refuses an event and never takes one
 * the schema refuses. Its rules are the schema's
 * (`RunFields`, `StepFields`); `event-fast-path.test.ts` holds the two to the same answers.
 * @example parseEventFast({ type: 'run.end', run: { id: 'r1', status: 'ok' } }) // { type: 'run.end', run: { id: 'r1', status: 'succeeded' } }
 * @example parseEventFast({ type: 'score', score: {} }) // undefined: IngestEvent.safeParse says what is wrong
 */
export function parseEventFast(raw: unknown): IngestEvent | undefined {
  if (!isPlainObject(raw)) return undefined;
  const type = raw.type;
  if (type === 'step.end' || type === 'step.start') {
    const step = fields(raw.step, STEP_FIELDS);
    return step && { type, step: step as unknown as StepFields };
  }
  if (type === 'run.start' || type === 'run.end' || type === 'run.update') {
    const run = fields(raw.run, RUN_FIELDS);
    return run && { type, run: run as unknown as RunFields };
  }
  return undefined;
}

/** What a field check answers for a value it cannot vouch for. */
const NO: unique symbol = Symbol('no');
type Check = (value: unknown) => unknown;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The object of `spec`'s fields `raw` gives, each as its check answers it, in `spec`'s order
 * (zod's); undefined when one answers `NO` or a required one is missing. Keys outside `spec`
 * are dropped, as zod's objects drop them.
 */
function fields(
  raw: unknown,
  spec: { checks: Record<string, Check>; required: readonly string[] },
): Record<string, unknown> | undefined {
  if (!isPlainObject(raw)) return undefined;
  for (const key of spec.required) if (raw[key] === undefined) return undefined;
  const out: Record<string, unknown> = {};
  for (const key in spec.checks) {
    const value = raw[key];
    if (value === undefined) {
      // an event built in code (OTLP's) may hold a key set to undefined: zod keeps it
      if (Object.hasOwn(raw, key)) out[key] = undefined;
      continue;
    }
    const checked = spec.checks[key]!(value);
    if (checked === NO) return undefined;
    out[key] = checked;
  }
  return out;
}

// one test for what `Text` refuses (a NUL) or rewrites (a surrogate, paired or not)
// eslint-disable-next-line no-control-regex -- NUL is what is looked for
const NOT_PLAIN = /[\u0000\ud800-\udfff]/;

/** `Text(max)` (with `.min(min)`), for text it leaves as it is. */
const text =
  (max: number, min = 0): Check =>
  (v) =>
    typeof v === 'string' && v.length <= max && v.length >= min && !NOT_PLAIN.test(v) ? v : NO;

const id: Check = (v) => (typeof v === 'string' && ID_PATTERN.test(v) ? v : NO);
const runId: Check = (v) => (v === 'stats' ? NO : id(v));

/** `check` or null, as `.nullish()` takes it. */
const nullable =
  (check: Check): Check =>
  (v) =>
    v === null ? null : check(v);

const int =
  (min: number, max: number): Check =>
  (v) =>
    typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max ? v : NO;

/** `TimeInput`: epoch milliseconds, or ISO-8601 or digits as text, as epoch milliseconds. */
const time: Check = (v) => {
  const ms = typeof v === 'number' ? v : typeof v === 'string' ? textTime(v) : NaN;
  return Number.isSafeInteger(ms) &&
    ms >= 0 &&
    ms <= MAX_TIME_MS &&
    ms < PLAIN_YEARS_END_MS &&
    (ms < SECONDS_LIKE_MS.min || ms >= SECONDS_LIKE_MS.max)
    ? ms
    : NO;
};

const DIGITS = /^\d{1,16}$/;

/** A time given as text, as `TimeInput`'s union reads it: ISO-8601 first, then digits. */
function textTime(v: string): number {
  if (ISO_TIME_PATTERN?.test(v)) return Date.parse(v);
  return DIGITS.test(v) ? Number(v) : NaN;
}

const count = int(0, 1e12);
const usd: Check = (v) =>
  typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= MAX_STEP_COST_USD ? v : NO;
const any: Check = (v) => v;

/** `Metadata`: a copy of a plain object (zod's record drops a `__proto__` key: left to it). */
const metadata: Check = (v) => (isPlainObject(v) && !Object.hasOwn(v, '__proto__') ? { ...v } : NO);

/** `RunErrorInput` in its object form, with text `CapturedText` keeps as it is. */
const captured = (max: number) => (v: unknown) =>
  typeof v === 'string' && v.length <= max && !v.includes('\u0000');
const longText = captured(100_000);
const shortText = captured(500);
const error: Check = (v) => {
  if (v === null) return null;
  if (!isPlainObject(v) || !longText(v.message)) return NO;
  const out: { message: unknown; type?: unknown; stack?: unknown } = { message: v.message };
  if (v.type !== undefined) {
    if (!shortText(v.type)) return NO;
    out.type = v.type;
  }
  if (v.stack !== undefined) {
    if (!longText(v.stack)) return NO;
    out.stack = v.stack;
  }
  return out;
};

const TRIGGERS: readonly unknown[] = RUN_TRIGGERS;

const STEP_FIELDS = {
  required: ['id', 'run_id'],
  checks: {
    id,
    run_id: runId,
    parent_step_id: nullable(id),
    seq: int(0, MAX_INT32),
    type: text(64, 1),
    name: nullable(text(500)),
    status: (v) => (typeof v === 'string' ? (normalizeStepStatus(v) ?? NO) : NO),
    started_at: time,
    ended_at: time,
    input: any,
    output: any,
    error,
    model: nullable(text(200)),
    provider: nullable(text(200)),
    input_tokens: nullable(count),
    output_tokens: nullable(count),
    cached_input_tokens: nullable(count),
    reasoning_tokens: nullable(count),
    cost_usd: nullable(usd),
    first_token_at: nullable(time),
    metadata,
  } satisfies Record<keyof StepFields, Check>,
};

const tag = text(200, 1);

const RUN_FIELDS = {
  required: ['id'],
  checks: {
    id: runId,
    agent_id: id,
    status: (v) => (typeof v === 'string' ? (normalizeRunStatus(v) ?? NO) : NO),
    trigger: (v) => (TRIGGERS.includes(v) ? v : NO),
    source: nullable(text(200)),
    triggered_by: nullable(text(200)),
    user_id: nullable(text(200)),
    thread_id: nullable(text(200)),
    parent_run_id: nullable(runId),
    retry_of: nullable(runId),
    attempt: int(1, 1000),
    input: any,
    output: any,
    error,
    model: nullable(text(200)),
    tags: (v) =>
      Array.isArray(v) && v.length <= 100 && v.every((t) => tag(t) !== NO) ? [...v] : NO,
    metadata,
    queued_at: time,
    started_at: time,
    ended_at: time,
  } satisfies Record<keyof RunFields, Check>,
};
