import { z } from 'zod';
import {
  ERROR_CODES,
  KeyScope,
  RUN_STATUSES,
  RUN_TRIGGERS,
  RUN_SORTS,
  RunStatus,
  RunTrigger,
  StepStatus,
  StepType,
  TIMELINE_EVENT_TYPES,
  WEBHOOK_DELIVERY_STATUSES,
  WEBHOOK_EVENTS,
} from './enums.js';
import { MAX_STEP_COST_USD } from './cost.js';
import { MAX_TIME_MS, PLAIN_YEARS_END_MS } from './time.js';
import { isTimeZone } from './zone.js';
import { METADATA_KEY_MAX, METADATA_VALUE_MAX } from './metadata.js';
import { TRUNCATED_MARKER, type TruncatedJson } from './truncated.js';
import {
  RUN_STATUS_HELP,
  STEP_STATUS_HELP,
  normalizeRunStatus,
  normalizeStepStatus,
} from './status.js';

// ---------------------------------------------------------------------------
// Primitives

/** Caller-chosen ids: 1-128 characters of `A-Za-z0-9._:-`. */
// not `.` or `..`: a URL path takes them as its own segments, so no browser, CLI or proxy
// could reach `/runs/..` (a run, agent or thread so named could be recorded, never opened)
export const ID_PATTERN = /^(?!\.\.?$)[A-Za-z0-9._:-]{1,128}$/;
export const ID_HELP = 'must be 1-128 characters of A-Za-z0-9._:-, other than . and ..';

/**
 * What an API key must be to travel in an `Authorization: Bearer` header: printable ASCII
 * without spaces (a header ends the key at a space and cannot carry other characters).
 */
export const SENDABLE_KEY = /^[\x21-\x7e]+$/;
export const Id = z.string().regex(ID_PATTERN, ID_HELP);
export type Id = z.infer<typeof Id>;

/** A run id: an `Id`, but not `stats`, which `GET /runs/stats` would answer instead of the run. */
export const RunId = Id.refine((v) => v !== 'stats', {
  message: '"stats" is reserved: GET /api/v1/runs/stats answers the stats, not a run',
});

const ISO_MS = z.iso.datetime({ offset: true });
/** What `TimeInput` takes as ISO-8601 text: the schema's own pattern, for `parseEventFast`. */
export const ISO_TIME_PATTERN: RegExp | undefined = ISO_MS._zod.pattern;

/** Epoch milliseconds that are epoch seconds of 2001 to 2286 taken as milliseconds. */
export const SECONDS_LIKE_MS = { min: 1e9, max: 1e10 };
/** Epoch milliseconds that are epoch microseconds of 2001 and later taken as milliseconds. */
const MICROSECONDS_LIKE_MS = 1e15;

/**
 * A point in time as the API accepts it: an ISO-8601 string or epoch milliseconds.
 * Parses to epoch milliseconds.
 */
export const TimeInput = z
  .union(
    [
      z.number().int().min(0).max(MAX_TIME_MS),
      ISO_MS.transform((s) => Date.parse(s)),
      // query strings carry numbers as text, within the same bounds
      z
        .string()
        .regex(/^\d{1,16}$/)
        .transform(Number)
        .pipe(z.number().max(MAX_TIME_MS)),
    ],
    // "Invalid input" alone does not say what would do
    {
      error:
        'must be an ISO-8601 time with a zone (2026-12-04T10:00:00Z, +01:00 written %2B01:00 in a URL) or epoch milliseconds',
    },
  )
  // a time before 1970 (Go's zero time, 0001-01-01T00:00:00Z) is refused as epoch ms below 0
  // are: stored, its run would sort where no list pages to (a cursor holds no negative time)
  .refine((ms) => ms >= 0, { error: 'must not be before 1970-01-01T00:00:00Z' })
  // seconds of 2001 to 2286 read as milliseconds land in January to April 1970: refused, as
  // no agent ran then, rather than stored where no list or chart would show them
  .refine((ms) => ms < SECONDS_LIKE_MS.min || ms >= SECONDS_LIKE_MS.max, {
    error: (issue) =>
      `${String(issue.input)} is ${new Date(issue.input as number).toISOString()} as milliseconds: it looks like epoch seconds (multiply by 1000)`,
  })
  // past the year 9999 the API would answer the time as +YYYYYY-..., which neither its own
  // inputs (from/to, an export's import) nor most clients read: the run, listed first for
  // ever, is lost by the next export and import. Epoch microseconds land there
  .refine((ms) => ms < PLAIN_YEARS_END_MS, {
    // (the refinements run on a union's failures too, whose input may be no time at all)
    error: (issue) =>
      typeof issue.input === 'number' &&
      issue.input >= MICROSECONDS_LIKE_MS &&
      issue.input <= MAX_TIME_MS
        ? `${String(issue.input)} is ${new Date(issue.input).toISOString()} as milliseconds: it looks like epoch microseconds (divide by 1000)`
        : 'must be before 10000-01-01T00:00:00Z',
  })
  .describe('ISO-8601 timestamp or epoch milliseconds');
export type TimeInput = z.input<typeof TimeInput>;

/** A time as the API answers: ISO-8601 UTC with milliseconds. */
export const IsoTime = z.string().describe('ISO-8601 UTC timestamp with milliseconds');

/** Any JSON value. */
export const Json: z.ZodType<unknown> = z.unknown();
export const Metadata = z.record(z.string(), z.unknown());

/**
 * Levels of arrays and objects a stored value keeps. Deeper parts are cut where values are
 * stored (`cutDepth`): serializing one (to store it, to answer with it) would run out of
 * stack, and one such value would make every listing that shows it fail.
 */
export const MAX_JSON_DEPTH = 128;

/** What stands in for a part of a value nested deeper than `MAX_JSON_DEPTH`. */
export const TOO_DEEP = `[nested deeper than ${MAX_JSON_DEPTH} levels]`;

/** Whether `value` nests at most `levels` arrays and objects deep. */
export function nestsWithin(value: unknown, levels: number): boolean {
  if (value === null || typeof value !== 'object') return true;
  if (levels === 0) return false;
  if (Array.isArray(value)) {
    for (const item of value) if (!nestsWithin(item, levels - 1)) return false;
    return true;
  }
  for (const key in value) {
    if (!nestsWithin((value as Record<string, unknown>)[key], levels - 1)) return false;
  }
  return true;
}

/**
 * A value as it is stored: itself when it nests at most `MAX_JSON_DEPTH` levels (no copy),
 * else `cutDepth` of it.
 */
export function storedDepth(value: unknown): unknown {
  return nestsWithin(value, MAX_JSON_DEPTH) ? value : cutDepth(value, MAX_JSON_DEPTH);
}

/** `value` with every array or object nested deeper than `levels` replaced by `TOO_DEEP`. */
export function cutDepth(value: unknown, levels: number): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (levels === 0) return TOO_DEEP;
  if (Array.isArray(value)) return value.map((item) => cutDepth(item, levels - 1));
  const out: Record<string, unknown> = {};
  for (const key in value) out[key] = cutDepth((value as Record<string, unknown>)[key], levels - 1);
  return out;
}

export type Metadata = z.infer<typeof Metadata>;

const NUL = '\u0000';

/**
 * `text` with each lone UTF-16 surrogate (half an emoji, as a cut string may end) as U+FFFD.
 * PostgreSQL stores one so; SQLite kept its own three bytes (not UTF-8), read back as three
 * U+FFFD, which then matched no filter (`?thread_id=` as the run showed it) and no thread.
 * @example wellFormed('hi \ud83d') // 'hi \ufffd'
 */
export function wellFormed(text: string): string {
  // most text holds no surrogate at all
  if (!/[\ud800-\udfff]/.test(text)) return text;
  return text.replace(
    /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g,
    '\ufffd',
  );
}

/**
 * Text kept in a text column, at most `max` characters. PostgreSQL cannot store a NUL in
 * text, so a NUL is refused here, on every database alike, instead of failing the write; a
 * lone surrogate is stored as U+FFFD on both (`wellFormed`).
 */
export const Text = (max: number) =>
  z
    .string()
    .max(max)
    .refine((s) => !s.includes(NUL), 'must not contain a NUL character (\\u0000)')
    .overwrite(wellFormed);

/**
 * A name people read (a project's, an agent's, a key's): text with something to show, not
 * spaces alone, which the dashboard's header and lists showed as nothing at all.
 */
export const Label = (max: number) =>
  Text(max)
    .min(1)
    .refine((s) => s.trim() !== '', 'must not be blank');

/**
 * `text` cut to at most `max` characters, ending with `…` when cut (never between the two
 * halves of a surrogate pair).
 */
export function cutText(text: string, max: number): string {
  if (text.length <= max) return text;
  const end = /[\uD800-\uDBFF]/.test(text[max - 2] ?? '') ? max - 2 : max - 1;
  return `${text.slice(0, end)}…`;
}

/**
 * Text captured from a program (an error's message or stack): kept, cut to `max` characters
 * and with each NUL replaced by U+FFFD, because refusing it would lose the run's end over a
 * long stack or a stray byte.
 */
const CapturedText = (max: number) =>
  z.string().transform((s) => cutText(s.includes(NUL) ? s.replaceAll(NUL, '\ufffd') : s, max));

export const Tags = z.array(Text(200).min(1)).max(100);

/** A run status or a common alias (`success`, `error`, `pending`, ...). */
export const RunStatusInput = z.string().transform((value, ctx) => {
  const status = normalizeRunStatus(value);
  if (!status) {
    ctx.addIssue({ code: 'custom', message: `must be ${RUN_STATUS_HELP}` });
    return z.NEVER;
  }
  return status;
});

export const StepStatusInput = z.string().transform((value, ctx) => {
  const status = normalizeStepStatus(value);
  if (!status) {
    ctx.addIssue({ code: 'custom', message: `must be ${STEP_STATUS_HELP}` });
    return z.NEVER;
  }
  return status;
});

/** Step types outside the known set are recorded as `custom`, keeping the original in metadata. */
export const StepTypeInput = Text(64).min(1);

export const RunError = z.object({
  message: z.string(),
  type: z.string().optional(),
  stack: z.string().optional(),
});
export type RunError = z.infer<typeof RunError>;

/**
 * A JSON field as the API gives it when it was stored truncated (over the size limit), or
 * when a list or a list topic carries it cut (`TruncatedJson`, whose module is free of zod
 * for the dashboard).
 */
export const TruncatedValue: z.ZodType<TruncatedJson> = z.object({
  [TRUNCATED_MARKER]: z.literal(true),
  original_size: z.number().int().describe('bytes of the JSON text as sent'),
  preview: z.string().describe('the first part of that text'),
});

/** A run's or a step's error as the API gives it: whole, or a truncated value. */
export const StoredError = z
  .union([RunError, TruncatedValue])
  .nullable()
  .describe('{message, type?, stack?}; a truncated value when over the size limit');
export type StoredError = z.infer<typeof StoredError>;

/** An error as callers send it: the object form or a bare message. */
export const RunErrorInput = z.union([
  z.object({
    message: CapturedText(100_000),
    type: CapturedText(500).optional(),
    stack: CapturedText(100_000).optional(),
  }),
  CapturedText(100_000).transform((message) => ({ message })),
]);

/** Tokens of one step: a trillion is far above any real call and keeps sums exact. */
const count = z.number().int().min(0).max(1e12);
const usd = z.number().min(0).max(MAX_STEP_COST_USD);

// ---------------------------------------------------------------------------
// Recording (POST /ingest and the REST sugar)

/**
 * The run fields an event may carry; only `id` is required. `parseEventFast` keeps the same
 * rules for the plain values most events carry: a rule changed here changes there too.
 */
export const RunFields = z.object({
  id: RunId,
  agent_id: Id.optional(),
  status: RunStatusInput.optional(),
  trigger: RunTrigger.optional(),
  source: Text(200).nullish(),
  triggered_by: Text(200).nullish(),
  user_id: Text(200).nullish(),
  thread_id: Text(200).nullish(),
  parent_run_id: RunId.nullish(),
  retry_of: RunId.nullish(),
  attempt: z.number().int().min(1).max(1000).optional(),
  input: Json.optional(),
  output: Json.optional(),
  error: RunErrorInput.nullish(),
  model: Text(200).nullish(),
  tags: Tags.optional(),
  metadata: Metadata.optional(),
  queued_at: TimeInput.optional(),
  started_at: TimeInput.optional(),
  ended_at: TimeInput.optional(),
});
export type RunFields = z.infer<typeof RunFields>;

/** The largest value of a 32-bit integer column (PostgreSQL `integer`), as a step's `seq`. */
export const MAX_INT32 = 2_147_483_647;

/** The step fields an event may carry; `id` and `run_id` are required (and see `RunFields`). */
export const StepFields = z.object({
  id: Id,
  run_id: RunId,
  parent_step_id: Id.nullish(),
  seq: z.number().int().min(0).max(MAX_INT32).optional(),
  type: StepTypeInput.optional(),
  name: Text(500).nullish(),
  status: StepStatusInput.optional(),
  started_at: TimeInput.optional(),
  ended_at: TimeInput.optional(),
  input: Json.optional(),
  output: Json.optional(),
  error: RunErrorInput.nullish(),
  model: Text(200).nullish(),
  provider: Text(200).nullish(),
  input_tokens: count.nullish(),
  output_tokens: count.nullish(),
  /** Part of `input_tokens` read from the provider's prompt cache. */
  cached_input_tokens: count.nullish(),
  /** Part of `output_tokens` spent on reasoning. */
  reasoning_tokens: count.nullish(),
  cost_usd: usd.nullish(),
  /**
   * When the first token of a streamed answer came (an LLM step's time to first token is
   * from `started_at` to it). Kept between the step's start and end.
   */
  first_token_at: TimeInput.nullish(),
  metadata: Metadata.optional(),
});
export type StepFields = z.infer<typeof StepFields>;

/** The kinds of value a score holds: a number, yes or no, or a label. */
export const SCORE_TYPES = ['numeric', 'boolean', 'categorical'] as const;
export type ScoreType = (typeof SCORE_TYPES)[number];

/** The most scores one run holds; a score past it is refused (a 409 naming the run). */
export const MAX_SCORES_PER_RUN = 1000;

/** A score's value: a finite number, true or false, or a label of 1-200 characters. */
// a value of none of these types says what a value may be (zod's own union error says
// "Invalid input"); one of the right type but out of bounds keeps its own message
export const ScoreValue = z.union(
  [z.number().min(-1e15).max(1e15), z.boolean(), Text(200).min(1)],
  {
    error: 'must be a number, true or false, or a label (text)',
  },
);

/**
 * A score of a run (or of one of its steps): an evaluator's verdict, a user's thumbs up, a
 * reviewer's label. `id` makes it idempotent: the same id on the same run replaces it.
 */
export const ScoreFields = z.object({
  id: Id.optional().describe('the same id on the same run replaces that score; else a new id'),
  run_id: RunId,
  step_id: Id.nullish(),
  name: Text(200).min(1),
  value: ScoreValue,
  comment: Text(10_000).nullish(),
  source: Text(200).nullish(),
  metadata: Metadata.optional(),
});
export type ScoreFields = z.infer<typeof ScoreFields>;

export const IngestEvent = z.discriminatedUnion('type', [
  z.object({ type: z.literal('run.start'), run: RunFields }),
  z.object({ type: z.literal('run.update'), run: RunFields }),
  z.object({ type: z.literal('run.end'), run: RunFields }),
  z.object({ type: z.literal('run.heartbeat'), run: z.object({ id: RunId }) }),
  z.object({ type: z.literal('step.start'), step: StepFields }),
  z.object({ type: z.literal('step.end'), step: StepFields }),
  z.object({ type: z.literal('score'), score: ScoreFields }),
]);
export type IngestEvent = z.infer<typeof IngestEvent>;

/** The run an event belongs to: the run it is about, or the run of its step. */
export function eventRunId(event: IngestEvent): string {
  return 'run' in event ? event.run.id : 'step' in event ? event.step.run_id : event.score.run_id;
}

export const MAX_INGEST_EVENTS = 1000;

/** The envelope of `POST /ingest`; each event is validated on its own. */
export const IngestBody = z.object({
  events: z.array(z.unknown()).min(1).max(MAX_INGEST_EVENTS),
});

export const IngestResult = z.object({
  index: z.number().int(),
  ok: z.boolean(),
  error: z
    .object({ code: z.string(), message: z.string(), details: z.array(z.unknown()).optional() })
    .optional(),
});
export type IngestResult = z.infer<typeof IngestResult>;

export const IngestResponse = z.object({
  accepted: z.number().int(),
  rejected: z.number().int(),
  results: z.array(IngestResult).optional(),
});
export type IngestResponse = z.infer<typeof IngestResponse>;

/** `POST /runs`: start a run now; it is `running` (end it with `PATCH /runs/:run_id`). */
export const StartRunBody = RunFields.omit({ id: true }).extend({
  id: RunId.optional(),
  agent_id: Id,
  status: RunStatusInput.refine(
    (s) => s === 'running',
    'POST /runs starts a run, which is running: end it with PATCH /runs/:run_id, or record a whole run with POST /ingest',
  ).optional(),
});
export type StartRunBody = z.infer<typeof StartRunBody>;

/** `PATCH /runs/:run_id`: update a run, or end it by giving a terminal status. */
export const PatchRunBody = RunFields.omit({ id: true }).extend({
  id: Id.optional().describe("the run's id: when given, it must be the path's"),
});
export type PatchRunBody = z.infer<typeof PatchRunBody>;

/** `POST /runs/:run_id/steps`: record a step (a complete one when it carries an end). */
export const PostStepBody = StepFields.omit({ run_id: true, id: true }).extend({
  id: Id.optional(),
  run_id: Id.optional().describe("the step's run: when given, it must be the path's"),
});
export type PostStepBody = z.infer<typeof PostStepBody>;

/** `POST /runs/:run_id/scores`: score a run (or one of its steps). */
export const PostScoreBody = ScoreFields.omit({ run_id: true }).extend({
  run_id: Id.optional().describe("the score's run: when given, it must be the path's"),
});
export type PostScoreBody = z.infer<typeof PostScoreBody>;

// ---------------------------------------------------------------------------
// Stored objects as the API returns them

/** An agent's schedule as it is stored and returned. */
export const Schedule = z.object({
  cron: Text(200).min(1),
  timezone: Text(100).min(1),
  paused: z
    .boolean()
    .describe('true: the schedule queues nothing until resumed (next_run_at is null meanwhile)'),
});
export type Schedule = z.infer<typeof Schedule>;

/**
 * A schedule as `PUT /agents/:agent_id` takes it: whole (`cron`, `timezone` UTC when left
 * out, `paused` optional), or `{paused}` alone to pause or resume the schedule the agent has.
 * `paused` left out keeps the schedule's state (a new schedule runs). Strict: a misspelt
 * field (`{"cron": "0 9 * * *", "pause": true}`) would otherwise set a schedule that runs.
 * @example const pause: ScheduleBody = { paused: true }
 */
export const ScheduleBody = z.strictObject({
  cron: Text(200)
    .min(1)
    .optional()
    .describe(
      'cron expression (5 or 6 fields); may be left out only when the body gives paused alone',
    ),
  timezone: Text(100)
    .min(1)
    .optional()
    .describe('IANA time zone of the cron; UTC when left out (needs the cron with it)'),
  paused: z
    .boolean()
    .optional()
    .describe(
      'true pauses: no run is queued until false resumes, which queues from the next slot after ' +
        'then (slots passed while paused are skipped); left out: unchanged',
    ),
});
export type ScheduleBody = z.infer<typeof ScheduleBody>;

/** What a run holds of one score name: how many, their mean, and the labels given. */
export const ScoreSummary = z.object({
  type: z.enum(SCORE_TYPES).describe('the type most of its scores have'),
  n: z.number().int(),
  avg: z
    .number()
    .nullable()
    .describe('mean of the numeric and boolean values (true is 1, false 0); null without any'),
  labels: z.record(z.string(), z.number().int()).describe('categorical values: how many each'),
});
export type ScoreSummary = z.infer<typeof ScoreSummary>;

export const Run = z.object({
  id: z.string(),
  project_id: z.string(),
  agent_id: z.string(),
  status: RunStatus,
  trigger: RunTrigger,
  source: z.string().nullable(),
  triggered_by: z.string().nullable(),
  user_id: z.string().nullable(),
  thread_id: z.string().nullable(),
  parent_run_id: z.string().nullable(),
  retry_of: z.string().nullable(),
  attempt: z.number().int(),
  input: Json,
  output: Json,
  error: StoredError,
  model: z.string().nullable(),
  tags: z.array(z.string()),
  metadata: Metadata,
  queued_at: IsoTime.nullable(),
  started_at: IsoTime.nullable(),
  ended_at: IsoTime.nullable(),
  duration_ms: z.number().int().nullable(),
  cancel_requested_at: IsoTime.nullable(),
  lease_expires_at: IsoTime.nullable(),
  step_count: z.number().int(),
  error_count: z.number().int(),
  llm_calls: z.number().int(),
  tool_calls: z.number().int(),
  input_tokens: z.number().int(),
  output_tokens: z.number().int(),
  total_tokens: z.number().int(),
  cost_usd: z.number(),
  scores: z
    .record(z.string(), ScoreSummary)
    .describe("the run's scores by name (GET /runs/:run_id/scores lists them)"),
  created_at: IsoTime,
  updated_at: IsoTime,
});
export type Run = z.infer<typeof Run>;

export const Score = z.object({
  id: z.string(),
  run_id: z.string(),
  step_id: z.string().nullable(),
  name: z.string(),
  type: z.enum(SCORE_TYPES),
  value: z.union([z.number(), z.boolean(), z.string()]),
  comment: z.string().nullable(),
  source: z.string().nullable(),
  metadata: Metadata,
  created_at: IsoTime,
  updated_at: IsoTime,
});
export type Score = z.infer<typeof Score>;

export const ScoreList = z.object({ scores: z.array(Score) });
export type ScoreList = z.infer<typeof ScoreList>;

export const Step = z.object({
  id: z.string(),
  run_id: z.string(),
  parent_step_id: z.string().nullable(),
  seq: z.number().int(),
  type: StepType,
  name: z.string().nullable(),
  status: StepStatus,
  started_at: IsoTime.nullable(),
  ended_at: IsoTime.nullable(),
  duration_ms: z.number().int().nullable(),
  input: Json,
  output: Json,
  error: StoredError,
  model: z.string().nullable(),
  provider: z.string().nullable(),
  input_tokens: z.number().int().nullable(),
  output_tokens: z.number().int().nullable(),
  cached_input_tokens: z.number().int().nullable(),
  reasoning_tokens: z.number().int().nullable(),
  cost_usd: z.number().nullable(),
  /** When a streamed answer's first token came; null when not recorded. */
  first_token_at: IsoTime.nullable(),
  /** From `started_at` to `first_token_at`: an LLM step's time to first token. */
  time_to_first_token_ms: z.number().int().nullable(),
  metadata: Metadata,
});
export type Step = z.infer<typeof Step>;

/**
 * The most steps one answer carries: a page of `GET /runs/:id/steps`, and those inline in
 * `GET /runs/:id?include=steps`. A run of 50,000 steps answered whole was 30 MB built on
 * the server's one thread, stalling every other request for seconds.
 */
export const STEPS_PAGE = 1000;

/** The most steps `GET /runs/:id/timeline` is built from (the first, in time order). */
export const TIMELINE_MAX_STEPS = 5000;

export const RunWithSteps = Run.extend({
  steps: z.array(Step),
  steps_next_cursor: z
    .string()
    .optional()
    .describe(
      `present when the run has more than ${STEPS_PAGE} steps: the cursor of GET /runs/:id/steps for the rest`,
    ),
});
export type RunWithSteps = z.infer<typeof RunWithSteps>;

export const AgentCounts = z.object({
  runs: z.number().int(),
  succeeded: z.number().int(),
  failed: z.number().int(),
  failed_not_retried: z
    .number()
    .int()
    .describe(
      'of the failed and timed-out runs, those no run retries (manually or by the retry policy)',
    ),
  running: z.number().int(),
  fail_rate: z.number().nullable(),
  total_tokens: z.number().int().describe("the runs' tokens, as the stats count them"),
  cost_usd: z.number().describe("the runs' cost"),
});

/** The most attempts a retry policy takes (the first run and its automatic retries). */
export const MAX_RETRY_ATTEMPTS = 20;
/** How long a first automatic retry waits unless its policy says. */
export const DEFAULT_RETRY_DELAY_MS = 10_000;
/** The longest an automatic retry waits before a worker may take it. */
export const MAX_RETRY_DELAY_MS = 24 * 3600 * 1000;

/**
 * An agent's retry policy: a run of it that a worker executed and that failed or timed out
 * (not one stopped, nor one ended by a cost, token or step limit) is queued again, linked by
 * `retry_of`, until `max_attempts` runs in all were made. The retry waits `delay_ms`, doubled
 * for each attempt made before when `backoff` is exponential (at most a day), and up to a
 * fifth more at random, before a worker may take it.
 */
export const RetryPolicy = z.object({
  max_attempts: z
    .number()
    .int()
    .describe('runs in all, the first included: 3 is the first run and up to two retries'),
  delay_ms: z.number().int().describe('how long the first retry waits before a worker takes it'),
  backoff: z
    .enum(['fixed', 'exponential'])
    .describe('exponential: each retry waits twice as long as the one before (at most a day)'),
});
export type RetryPolicy = z.infer<typeof RetryPolicy>;

export const RetryPolicyBody = z.strictObject({
  max_attempts: z
    .number()
    .int()
    .min(2)
    .max(MAX_RETRY_ATTEMPTS)
    .describe(RetryPolicy.shape.max_attempts.description!),
  delay_ms: z
    .number()
    .int()
    .min(0)
    .max(MAX_RETRY_DELAY_MS)
    .default(DEFAULT_RETRY_DELAY_MS)
    .describe('how long the first retry waits before a worker takes it (default 10 s)'),
  backoff: z
    .enum(['fixed', 'exponential'])
    .default('exponential')
    .describe(
      'exponential (default): each retry waits twice as long as the one before, at most a day',
    ),
});

/**
 * How long the retry of a run that was attempt `attempt` waits under `policy`: `delay_ms`,
 * doubled per attempt before it when exponential, at most `MAX_RETRY_DELAY_MS`.
 * @example retryDelayMs({ max_attempts: 5, delay_ms: 1000, backoff: 'exponential' }, 3) === 4000
 */
export function retryDelayMs(policy: RetryPolicy, attempt: number): number {
  const factor = policy.backoff === 'exponential' ? 2 ** Math.min(Math.max(attempt - 1, 0), 40) : 1;
  return Math.min(policy.delay_ms * factor, MAX_RETRY_DELAY_MS);
}

export const Agent = z.object({
  id: z.string(),
  project_id: z.string(),
  name: z.string(),
  description: z.string().nullable(),
  schedule: Schedule.nullable(),
  timeout_ms: z.number().int().nullable(),
  max_cost_usd: z
    .number()
    .nullable()
    .describe('a run that costs more is ended failed (BudgetExceeded) and its agent told to stop'),
  max_tokens: z.number().int().nullable().describe('the same, for input and output tokens'),
  max_steps: z.number().int().nullable().describe('the same, for steps'),
  retry: RetryPolicy.nullable().describe(
    'failed and timed-out runs a worker executed are queued again on their own; null: they are not',
  ),
  max_concurrency: z
    .number()
    .int()
    .nullable()
    .describe(
      'at most this many of its runs executing on workers at once, over every worker and server ' +
        'instance (claims hand out no more; the rest wait queued); null: no cap',
    ),
  max_concurrency_per_thread: z
    .number()
    .int()
    .nullable()
    .describe(
      "at most this many runs of one thread (thread_id) executing on workers at once: a thread's " +
        'next run waits, queued, for the one before it to end; null: no such cap',
    ),
  max_cost_usd_24h: z
    .number()
    .nullable()
    .describe(
      'while the runs it started in the last 24 hours (counts_24h.cost_usd) cost this much or ' +
        'more, workers are handed none of its queued runs (they wait) and its schedule skips ' +
        'its slots; null: no such budget',
    ),
  over_budget_since: IsoTime.nullable().describe(
    'when what its runs of the last 24 hours cost reached max_cost_usd_24h, as the budget ' +
      'watch saw it (within about a second; webhooks hear it as agent.over_budget); null: ' +
      'under its budget, or none',
  ),
  paused_at: IsoTime.nullable().describe(
    'when the agent was paused: workers are handed none of its queued runs (they wait, queued) ' +
      'and its schedule queues none, until it is resumed; runs under way go on. null: it runs',
  ),
  metadata: Metadata,
  /**
   * When the schedule queues its next run; null without a schedule, while it or the agent is
   * paused, or when it never fires again.
   */
  next_run_at: IsoTime.nullable(),
  /**
   * When a worker last asked for this agent's runs (within about 15 s); null if none ever
   * did. Queued runs wait for one.
   */
  worker_seen_at: IsoTime.nullable(),
  created_at: IsoTime,
  updated_at: IsoTime,
});
export type Agent = z.infer<typeof Agent>;

/** An agent in `GET /agents`: with its latest run, last error and 24 h counts. */
export const AgentSummary = Agent.extend({
  latest_run: Run.nullable(),
  last_error: z
    .object({ run_id: z.string(), message: z.string(), at: IsoTime.nullable() })
    .nullable(),
  counts_24h: AgentCounts,
});
export type AgentSummary = z.infer<typeof AgentSummary>;

/** The highest `max_concurrency` an agent takes. */
export const MAX_AGENT_CONCURRENCY = 10_000;

/**
 * `PUT /agents/:agent_id`. Strict: a field it does not take (`timeout` for `timeout_ms`, a
 * misspelt limit) is a 400 naming it, not a 200 that leaves the agent without the setting.
 */
export const AgentUpsertBody = z.strictObject({
  name: Label(200).optional(),
  description: Text(5000).nullish(),
  schedule: ScheduleBody.nullish(),
  timeout_ms: z
    .number()
    .int()
    .min(1000)
    .max(7 * 24 * 3600 * 1000)
    .nullish(),
  max_cost_usd: z
    .number()
    .min(1e-9, 'must be at least 0.000000001 (a nano-dollar, the unit costs are kept in)')
    .max(1_000_000)
    .nullish()
    .describe('end a run failed once its cost passes this (US$); null: no limit'),
  max_cost_usd_24h: z
    .number()
    .min(1e-9, 'must be at least 0.000000001 (a nano-dollar, the unit costs are kept in)')
    .max(1_000_000_000)
    .nullish()
    .describe(
      'hold its queued runs back (and skip its schedule) while the runs it started in the last ' +
        '24 hours cost this much or more (US$); null: no such budget',
    ),
  max_tokens: z
    .number()
    .int()
    .min(1)
    .max(1e12)
    .nullish()
    .describe('end a run failed once its input and output tokens pass this; null: no limit'),
  max_steps: z
    .number()
    .int()
    .min(1)
    .max(1e9)
    .nullish()
    .describe('end a run failed once its steps pass this; null: no limit'),
  retry: RetryPolicyBody.nullish().describe(
    'retry failed and timed-out runs a worker executed, on their own; null: no automatic retry',
  ),
  max_concurrency: z
    .number()
    .int()
    .min(1, 'must be at least 1 (null: no cap; pause the agent to run none)')
    .max(MAX_AGENT_CONCURRENCY)
    .nullish()
    .describe(
      'at most this many runs executing on workers at once, over all of them; null: no cap',
    ),
  max_concurrency_per_thread: z
    .number()
    .int()
    .min(1, 'must be at least 1 (null: no cap)')
    .max(MAX_AGENT_CONCURRENCY)
    .nullish()
    .describe(
      "at most this many runs of one thread at once (1: a conversation's turns one after " +
        'another, in order); null: no cap',
    ),
  paused: z
    .boolean()
    .optional()
    .describe(
      'true: pause the agent (workers take none of its queued runs, its schedule queues none; ' +
        'runs under way go on); false: resume it, its schedule from its next slot',
    ),
  metadata: Metadata.optional(),
});
export type AgentUpsertBody = z.infer<typeof AgentUpsertBody>;
/** `AgentUpsertBody` as a client sends it: what has a default may be left out (`retry.delay_ms`). */
export type AgentUpsertInput = z.input<typeof AgentUpsertBody>;

/** The furthest ahead a queued run may be set to start (`delay_ms`, `run_at`): a year. */
export const MAX_RUN_DELAY_MS = 365 * 24 * 3600 * 1000;

/**
 * `POST /agents/:agent_id/runs`: queue a run for a worker. Strict: a misspelt field (`inptu`)
 * would otherwise queue a run that its worker executes without it. `delay_ms` or `run_at`
 * (not both) hold the run back: no worker takes it before then.
 */
export const EnqueueRunBody = z.strictObject({
  id: RunId.optional(),
  input: Json.optional(),
  delay_ms: z
    .number()
    .int()
    .min(0)
    .max(MAX_RUN_DELAY_MS)
    .optional()
    .describe('no worker takes the run before this many ms from now (at most a year)'),
  run_at: TimeInput.optional().describe(
    'no worker takes the run before this time (at most a year ahead; a time passed: at once)',
  ),
  trigger: z.enum(['manual', 'api']).optional(),
  source: Text(200).optional(),
  triggered_by: Text(200).optional(),
  user_id: Text(200).optional(),
  thread_id: Text(200).optional(),
  parent_run_id: RunId.optional().describe(
    'the run this one serves (a sub-agent on a worker): listed among its sub-runs, and stopped ' +
      'when it is stopped; a run stopped already is refused (409)',
  ),
  tags: Tags.optional(),
  metadata: Metadata.optional(),
});
export type EnqueueRunBody = z.infer<typeof EnqueueRunBody>;
/** `EnqueueRunBody` as a client sends it: `run_at` an ISO time or epoch ms. */
export type EnqueueRunInput = z.input<typeof EnqueueRunBody>;

/**
 * `POST /runs/:run_id/retry`: the body is optional. With an `input`, the retry runs on it
 * rather than on the run's own. With an `id`, the call is idempotent: sent
 * again, it answers the retry it made instead of queuing another. With `once`, a run retried
 * already is not retried again: the call answers its newest retry (200). Strict: a field it
 * does not take is a typo (`{"onse": true}`) that would otherwise queue a second retry.
 */
export const RetryRunBody = z.strictObject({
  input: Json.optional().describe(
    "the retry's input instead of the run's own (null: none): a retry with a fix to it",
  ),
  id: RunId.optional().describe(
    "the new run's id; when a retry of this run with that id exists, the call answers it",
  ),
  once: z
    .boolean()
    .optional()
    .describe(
      'true: when the run was retried already, queue nothing and answer its newest retry (200); ' +
        'the check and the queuing are one step, so callers racing each other queue one retry',
    ),
});
export type RetryRunBody = z.infer<typeof RetryRunBody>;

/** `POST /runs/enqueue`: queue runs of any agents in one request, all or none. */
export const EnqueueRunsBody = z.object({
  runs: z
    .array(EnqueueRunBody.extend({ agent_id: Id.describe('the agent that executes the run') }))
    .min(1)
    .max(1000),
});
export type EnqueueRunsBody = z.infer<typeof EnqueueRunsBody>;
/** `EnqueueRunsBody` as a client sends it. */
export type EnqueueRunsInput = z.input<typeof EnqueueRunsBody>;

/** The answer to `POST /runs/enqueue`: the queued runs, in the order asked. */
export const EnqueuedRuns = z.object({ runs: z.array(Run) });
export type EnqueuedRuns = z.infer<typeof EnqueuedRuns>;

// ---------------------------------------------------------------------------
// Workers and control (what the SDK's workers and heartbeats send and receive)

export const WorkerId = Text(200).min(1).describe('the worker that holds (or claims) the run');
const LeaseMs = z.number().int().min(1_000).max(3_600_000);

/** `POST /workers/claim`: take queued runs of these agents, waiting up to `wait_ms` for one. */
export const ClaimBody = z.object({
  agents: z.array(Id).min(1).max(100),
  wait_ms: z
    .number()
    .int()
    .min(0)
    .max(60_000)
    .default(0)
    .describe('long poll: how long to wait for a queued run before answering 204'),
  lease_ms: LeaseMs.optional().describe(
    "how long a claimed run stays this worker's without a heartbeat (default 30 s)",
  ),
  worker_id: WorkerId.optional(),
  max: z
    .number()
    .int()
    .min(1)
    .max(100)
    .optional()
    .describe('claim up to this many runs at once; the answer is then {runs: [...]}'),
});
export type ClaimBody = z.infer<typeof ClaimBody>;

/** A worker that asked for runs lately: what it serves and what it runs now. */
export const Worker = z.object({
  id: z.string(),
  agents: z.array(z.string()).describe('the agents its last claim asked for'),
  first_seen_at: IsoTime,
  last_seen_at: IsoTime.describe('its last claim or heartbeat, within about 15 s'),
  online: z.boolean().describe('seen in the last 90 s'),
  running: z.number().int().describe('runs it holds now'),
  running_runs: z
    .array(z.object({ id: z.string(), agent_id: z.string(), started_at: IsoTime.nullable() }))
    .describe('the first 20 of them, the oldest first'),
});
export type Worker = z.infer<typeof Worker>;

export const WorkerList = z.object({ workers: z.array(Worker) });
export type WorkerList = z.infer<typeof WorkerList>;

/** The answer to a claim with `max`. */
export const ClaimedRuns = z.object({ runs: z.array(Run) });
export type ClaimedRuns = z.infer<typeof ClaimedRuns>;

/** The answer to a claim (200; 204 with no body when nothing was queued): one run, or with `max` a list. */
export const ClaimResponse = z.union([Run, ClaimedRuns]);
export type ClaimResponse = z.infer<typeof ClaimResponse>;

/** `POST /runs/:run_id/heartbeat`: keep a run alive; a worker renews its lease. */
export const HeartbeatBody = z.object({
  lease_ms: LeaseMs.optional().describe('renew the lease for this long; default: as long as held'),
  worker_id: WorkerId.optional(),
});
export type HeartbeatBody = z.infer<typeof HeartbeatBody>;

/** What a heartbeat answers: whether Stop was pressed, and the run's state. */
export const HeartbeatResponse = z.object({
  status: RunStatus,
  cancel_requested: z.boolean(),
  lease_expires_at: IsoTime.nullable(),
  end_reason: z
    .string()
    .nullable()
    .describe(
      "once the run has ended: its error's message (why the server ended it: a limit passed, a timeout, a lapsed lease)",
    ),
});
export type HeartbeatResponse = z.infer<typeof HeartbeatResponse>;

/** `POST /runs/heartbeat`: keep several runs alive in one request (a worker's, or a process's). */
export const HeartbeatRunsBody = HeartbeatBody.extend({
  runs: z.array(Id).min(1).max(1000).describe('the runs to keep alive'),
});
export type HeartbeatRunsBody = z.infer<typeof HeartbeatRunsBody>;

/** One run's answer in a batched heartbeat: as `HeartbeatResponse`, or why it was not renewed. */
export const HeartbeatResult = z.union([
  HeartbeatResponse.extend({ id: Id, ok: z.literal(true) }),
  z.object({
    id: Id,
    ok: z.literal(false),
    error: z.object({ code: z.string(), message: z.string() }),
  }),
]);
export type HeartbeatResult = z.infer<typeof HeartbeatResult>;

export const HeartbeatRunsResponse = z.object({ runs: z.array(HeartbeatResult) });
export type HeartbeatRunsResponse = z.infer<typeof HeartbeatRunsResponse>;

/** `POST /runs/:run_id/release`: a worker shutting down gives a claimed run back. */
export const ReleaseBody = z.object({ worker_id: WorkerId.optional() });
export type ReleaseBody = z.infer<typeof ReleaseBody>;

// ---------------------------------------------------------------------------
// Queries

/** How a query parameter that takes several values says so (the server reads it too). */
export const COMMA_LIST = 'one value or a comma list';

const commaList = <T extends z.ZodType<string, string>>(item: T) =>
  z
    .string()
    .transform((s) =>
      s
        .split(',')
        .map((p) => p.trim())
        .filter(Boolean),
    )
    .pipe(z.array(item).min(1))
    .describe(COMMA_LIST);

const limit = (max: number, dflt: number) => z.coerce.number().int().min(1).max(max).default(dflt);

/** The most `metadata[key]` filters one `GET /runs` takes. */
export const MAX_METADATA_FILTERS = 10;

/**
 * `GET /runs?metadata[env]=prod&metadata[pr]=42`: runs whose metadata holds each key with
 * that value. A value matches a string equal to it, a number equal to it read as a number
 * (`42` matches 42 and 42.0), or a boolean written as it (`true`); never an object or null.
 */
export const MetadataFilter = z
  .record(z.string().min(1).max(METADATA_KEY_MAX), z.string().min(1).max(METADATA_VALUE_MAX))
  .refine((m) => Object.keys(m).length <= MAX_METADATA_FILTERS, {
    message: `at most ${MAX_METADATA_FILTERS} keys`,
  })
  .describe(
    'metadata[key]=value, once a key: runs whose metadata holds each key with that value (a string equal to it, a number equal to it, or true/false)',
  );
export type MetadataFilter = z.infer<typeof MetadataFilter>;

/** A score bound of `GET /runs`: a number, blank text refused (not read as 0). */
const scoreBound = z
  .string()
  .trim()
  .min(1, 'must be a number')
  .pipe(z.coerce.number<string>().min(-1e15).max(1e15));

export const RunListQuery = z.object({
  agent_id: commaList(Id).optional(),
  status: commaList(RunStatus).optional(),
  trigger: commaList(RunTrigger).optional(),
  source: z.string().max(200).optional(),
  user_id: z.string().max(200).optional(),
  thread_id: z.string().max(200).optional(),
  /** The retries of one run. */
  retry_of: Id.optional(),
  /** The runs nested in one run (sub-agents). */
  parent_run_id: Id.optional(),
  retried: z
    .enum(['true', 'false'])
    .transform((v) => v === 'true')
    .optional()
    .describe(
      'true: runs retried already (some run has retry_of naming them); false: runs not retried yet, as a bulk retry pages through what is left',
    ),
  tag: z.string().max(200).optional(),
  metadata: MetadataFilter.optional(),
  model: z
    .string()
    .min(1)
    .max(200)
    .optional()
    .describe('runs with a step that names this model (as by_model in the stats names it)'),
  score: z
    .string()
    .min(1)
    .max(200)
    .optional()
    .describe('runs with a score of this name (score_min, score_max, score_label narrow it)'),
  score_min: scoreBound
    .optional()
    .describe('with score: runs with such a score of at least this (true is 1, false 0)'),
  score_max: scoreBound
    .optional()
    .describe('with score: runs with such a score of at most this (true is 1, false 0)'),
  score_label: z
    .string()
    .min(1)
    .max(200)
    .optional()
    .describe('with score: runs with such a score of this label'),
  from: TimeInput.optional(),
  to: TimeInput.optional(),
  q: z.string().min(1).max(500).optional(),
  sort: z
    .enum(RUN_SORTS)
    .optional()
    .describe(
      'newest first (default), or the most cost, the longest duration, the most tokens first; a cursor keeps its sort',
    ),
  limit: limit(500, 50),
  cursor: z.string().max(500).optional(),
  offset: z.coerce.number().int().min(0).max(1_000_000).optional(),
});
export type RunListQuery = z.infer<typeof RunListQuery>;

/** The files runs export to: `GET /runs.csv`, `GET /runs.jsonl`. */
export const RUN_EXPORT_FORMATS = ['csv', 'jsonl'] as const;
export type RunExportFormat = (typeof RUN_EXPORT_FORMATS)[number];

/** The most runs one export (`GET /runs.csv`, `/runs.jsonl`) holds. */
export const MAX_EXPORTED_RUNS = 100_000;

/**
 * `GET /runs.csv` and `GET /runs.jsonl`: the runs `GET /runs` would list for these filters,
 * in its order, at most `limit` of them, in one file.
 */
export const RunExportQuery = RunListQuery.omit({ limit: true, cursor: true, offset: true }).extend(
  {
    limit: limit(MAX_EXPORTED_RUNS, 10_000).describe(
      `at most this many runs, in the list's order (1-${MAX_EXPORTED_RUNS}, default 10000)`,
    ),
  },
);
export type RunExportQuery = z.infer<typeof RunExportQuery>;

export const AgentRunsQuery = z.object({
  limit: limit(500, 20),
  cursor: z.string().max(500).optional(),
  status: commaList(RunStatus).optional(),
  trigger: commaList(RunTrigger).optional(),
});
export type AgentRunsQuery = z.infer<typeof AgentRunsQuery>;

export const StepListQuery = z.object({
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(STEPS_PAGE)
    .default(STEPS_PAGE)
    .describe(`a page of at most this many steps (default and most: ${STEPS_PAGE})`),
  cursor: z.string().max(500).optional(),
});
export type StepListQuery = z.infer<typeof StepListQuery>;

export const RunList = z.object({
  runs: z.array(Run),
  next_cursor: z.string().nullable(),
  has_more: z.boolean(),
  total: z.number().int(),
  /** Present when `total` stopped counting at its cap (a filter the rollups cannot count). */
  total_capped: z
    .literal(true)
    .optional()
    .describe('present when total stopped counting at its cap: total is a lower bound'),
});
export type RunList = z.infer<typeof RunList>;

/** A run's steps in time order, whole or a page (`GET /runs/:run_id/steps`). */
export const StepList = z.object({
  steps: z.array(Step),
  next_cursor: z.string().nullable(),
  has_more: z.boolean(),
  total: z.number().int(),
});
export type StepList = z.infer<typeof StepList>;

export const STATS_BUCKETS = ['hour', 'day'] as const;
export const StatsQuery = z.object({
  agent_id: commaList(Id).optional(),
  from: TimeInput.optional(),
  to: TimeInput.optional(),
  bucket: z.enum(STATS_BUCKETS).optional(),
  tz: z
    .string()
    .max(100)
    // (one error for a name too long, not a second that it is no zone)
    .refine(
      (zone) => zone.length > 100 || isTimeZone(zone),
      'must be an IANA time zone such as America/Los_Angeles, or UTC',
    )
    .optional()
    .describe(
      'IANA time zone whose calendar days day buckets are (default UTC): each starts at local ' +
        'midnight, 23 or 25 hours long across a change of clocks; also the days from/to are ' +
        'taken to. In a zone off UTC by a part of an hour (Asia/Kolkata, Asia/Kathmandu), a day ' +
        'holds the runs of the UTC hours starting within it (its edges off by up to 45 min). ' +
        'Hour buckets stay UTC hours',
    ),
});
export type StatsQuery = z.infer<typeof StatsQuery>;

// Threads: a conversation's runs (runs sharing a thread_id), summed up

/** Most characters of a thread's first input or last output its summary previews. */
export const THREAD_PREVIEW_CHARS = 300;

/** A search of threads or users by their id: text it holds, in any case. */
const OwnerSearch = z.string().min(1).max(200).optional();

export const ThreadListQuery = z.object({
  agent_id: commaList(Id).optional(),
  user_id: z.string().max(200).optional(),
  from: TimeInput.optional(),
  to: TimeInput.optional(),
  q: OwnerSearch.describe('text in the thread id, any case'),
  limit: limit(200, 50),
  cursor: z.string().max(1000).optional(),
});
export type ThreadListQuery = z.infer<typeof ThreadListQuery>;

export const ThreadSummary = z.object({
  thread_id: z.string(),
  runs: z.number().int(),
  failed: z.number().int().describe('runs failed or timed out'),
  active: z.number().int().describe('runs queued or running'),
  agent_ids: z.array(z.string()).describe('the agents its runs belong to, by id'),
  user_id: z.string().nullable().describe("its latest run's user"),
  first_at: IsoTime.describe("its first run's time (queued, else started)"),
  last_at: IsoTime.describe("its latest run's time: the list's order"),
  total_tokens: z.number().int(),
  cost_usd: z.number(),
  first_run: z.object({
    id: z.string(),
    input: z
      .string()
      .nullable()
      .describe(`its input as text, at most ${THREAD_PREVIEW_CHARS} characters`),
  }),
  last_run: z.object({
    id: z.string(),
    status: RunStatus,
    agent_id: z.string(),
    output: z
      .string()
      .nullable()
      .describe(`its output as text, at most ${THREAD_PREVIEW_CHARS} characters`),
    error: z.string().nullable().describe("its error's message"),
  }),
});
export type ThreadSummary = z.infer<typeof ThreadSummary>;

export const ThreadList = z.object({
  threads: z.array(ThreadSummary),
  next_cursor: z.string().nullable(),
  has_more: z.boolean(),
});
export type ThreadList = z.infer<typeof ThreadList>;

// Users: the runs made for one user (a user_id), summed up

export const UserListQuery = z.object({
  agent_id: commaList(Id).optional(),
  from: TimeInput.optional(),
  to: TimeInput.optional(),
  q: OwnerSearch.describe('text in the user id, any case'),
  limit: limit(200, 50),
  cursor: z.string().max(1000).optional(),
});
export type UserListQuery = z.infer<typeof UserListQuery>;

export const UserSummary = z.object({
  user_id: z.string(),
  runs: z.number().int(),
  failed: z.number().int().describe('runs failed or timed out'),
  active: z.number().int().describe('runs queued or running'),
  threads: z.number().int().describe('the threads (conversations) its runs are in'),
  agent_ids: z.array(z.string()).describe('the agents its runs belong to, by id'),
  first_at: IsoTime.describe("its first run's time (queued, else started)"),
  last_at: IsoTime.describe("its latest run's time: the list's order"),
  total_tokens: z.number().int(),
  cost_usd: z.number(),
  last_run: z.object({
    id: z.string(),
    status: RunStatus,
    agent_id: z.string(),
    error: z.string().nullable().describe("its error's message"),
  }),
});
export type UserSummary = z.infer<typeof UserSummary>;

export const UserList = z.object({
  users: z.array(UserSummary),
  next_cursor: z.string().nullable(),
  has_more: z.boolean(),
});
export type UserList = z.infer<typeof UserList>;

const byStatus = z.object(
  Object.fromEntries(RUN_STATUSES.map((s) => [s, z.number().int()])) as Record<
    (typeof RUN_STATUSES)[number],
    z.ZodNumber
  >,
);
const byTrigger = z.object(
  Object.fromEntries(RUN_TRIGGERS.map((s) => [s, z.number().int()])) as Record<
    (typeof RUN_TRIGGERS)[number],
    z.ZodNumber
  >,
);

export const StatsTotals = z.object({
  runs: z.number().int(),
  by_status: byStatus,
  by_trigger: byTrigger,
  fail_rate: z.number().nullable(),
  avg_duration_ms: z.number().nullable(),
  p50_duration_ms: z.number().nullable(),
  p95_duration_ms: z.number().nullable(),
  input_tokens: z.number().int(),
  output_tokens: z.number().int(),
  total_tokens: z.number().int(),
  cost_usd: z.number(),
});
export type StatsTotals = z.infer<typeof StatsTotals>;

/** What the runs in a stats range used of one model: their steps naming it, summed. */
export const StatsModel = z.object({
  model: z.string().nullable().describe('null: steps that name no model'),
  runs: z.number().int().describe('runs with at least one such step'),
  calls: z.number().int().describe('LLM calls: llm steps and steps naming a model'),
  input_tokens: z.number().int(),
  output_tokens: z.number().int(),
  total_tokens: z.number().int(),
  cost_usd: z.number(),
});
export type StatsModel = z.infer<typeof StatsModel>;

/** The scores given in a stats range to the runs it covers, by name. */
export const StatsScore = z.object({
  name: z.string(),
  type: z.enum(SCORE_TYPES).describe('the type most of its scores have'),
  n: z.number().int(),
  runs: z.number().int().describe('runs with at least one such score'),
  avg: z.number().nullable().describe('mean of the numeric and boolean values (true is 1)'),
  min: z.number().nullable(),
  max: z.number().nullable(),
  labels: z.record(z.string(), z.number().int()).describe('categorical values: how many each'),
});
export type StatsScore = z.infer<typeof StatsScore>;

export const StatsResponse = z.object({
  from: IsoTime,
  to: IsoTime,
  bucket: z.enum(STATS_BUCKETS),
  totals: StatsTotals,
  by_agent: z.array(StatsTotals.extend({ agent_id: z.string() })),
  by_model: z
    .array(StatsModel)
    .describe('most cost first; their tokens and cost sum to the totals'),
  by_score: z
    .array(StatsScore)
    .describe('scores given in the range to runs of the agents asked for, most given first'),
  series: z.array(StatsTotals.omit({ by_trigger: true }).extend({ t: IsoTime })),
});
export type StatsResponse = z.infer<typeof StatsResponse>;

export const TimelineEvent = z.object({
  type: z.enum(TIMELINE_EVENT_TYPES),
  timestamp: IsoTime,
  data: z.record(z.string(), z.unknown()),
});
export type TimelineEvent = z.infer<typeof TimelineEvent>;

export const Timeline = z.object({
  summary: z.object({
    run_id: z.string(),
    status: RunStatus,
    started_at: IsoTime.nullable(),
    ended_at: IsoTime.nullable(),
    duration_ms: z.number().int().nullable(),
    in_progress: z.boolean(),
    step_count: z.number().int(),
    error_count: z.number().int(),
    max_depth: z.number().int(),
    total_tokens: z.number().int(),
    cost_usd: z.number(),
    steps_omitted: z
      .number()
      .int()
      .optional()
      .describe(
        `present when the run has more than ${TIMELINE_MAX_STEPS} steps: those after the first ${TIMELINE_MAX_STEPS}, not in events`,
      ),
  }),
  events: z.array(TimelineEvent),
});
export type Timeline = z.infer<typeof Timeline>;

// ---------------------------------------------------------------------------
// Auth, projects, settings

export const SessionBody = z.object({ key: z.string().min(1).max(500) });

export const ApiKey = z.object({
  id: z.string(),
  project_id: z.string(),
  name: z.string().nullable(),
  scope: KeyScope,
  prefix: z.string(),
  created_at: IsoTime,
  last_used_at: IsoTime.nullable(),
  revoked_at: IsoTime.nullable(),
});
export type ApiKey = z.infer<typeof ApiKey>;

export const CreateKeyBody = z.strictObject({
  scope: KeyScope,
  name: Label(200).optional(),
});
/** A created key: the only time the secret is shown. */
export const CreatedKey = ApiKey.extend({ key: z.string() });
export type CreatedKey = z.infer<typeof CreatedKey>;

export const Project = z.object({
  id: z.string(),
  name: z.string(),
  retention_days: z.number().int(),
  created_at: IsoTime,
});
export type Project = z.infer<typeof Project>;

// the bodies that change settings are strict: a misspelt field is a 400 naming it, not a 2xx
// that leaves the setting as it was
export const CreateProjectBody = z.strictObject({
  id: Id.optional(),
  name: Label(200),
  retention_days: z.number().int().min(1).max(3650).optional(),
});
export const PatchProjectBody = z.strictObject({
  name: Label(200).optional(),
  retention_days: z.number().int().min(1).max(3650).optional(),
});

/** Prices in USD per million tokens. */
export const ModelPrice = z.object({
  model: Text(200).min(1),
  input_per_mtok: z.number().min(0).max(10_000),
  output_per_mtok: z.number().min(0).max(10_000),
  cached_input_per_mtok: z.number().min(0).max(10_000).nullish(),
  source: z.enum(['builtin', 'project']).optional(),
});
export type ModelPrice = z.infer<typeof ModelPrice>;
export const PutPriceBody = ModelPrice.omit({ model: true, source: true }).strict();

// ---------------------------------------------------------------------------
// Webhooks

/** An endpoint's address: an absolute http(s) URL. */
export const WebhookUrl = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .max(2048)
  .refine((v) => URL.canParse(v), 'must be an absolute URL (https://...)')
  .refine((v) => /^https?:$/.test(URL.canParse(v) ? new URL(v).protocol : 'https:'), {
    message: 'must be an http:// or https:// URL',
  })
  // fetch refuses them, and they would show in every list: a token goes in the path or query
  .refine((v) => !URL.canParse(v) || (new URL(v).username === '' && new URL(v).password === ''), {
    message: 'must not hold a user name or password (put a token in its path or query)',
  });

export const WebhookEventName = z.enum(WEBHOOK_EVENTS);

/** A project's webhook endpoint as the API shows it: never its secret. */
export const WebhookEndpoint = z.object({
  id: z.string(),
  project_id: z.string(),
  url: z.string(),
  description: z.string().nullable(),
  events: z.array(WebhookEventName).describe('the run outcomes and agent budget events sent to it'),
  agent_ids: z
    .array(z.string())
    .nullable()
    .describe("only these agents' events; null: every agent's"),
  enabled: z.boolean().describe('false while paused: its deliveries wait'),
  secret_prefix: z
    .string()
    .describe('the first characters of its signing secret, to tell it apart'),
  created_at: IsoTime,
  updated_at: IsoTime,
  last_delivery: z
    .object({
      status: z.enum(WEBHOOK_DELIVERY_STATUSES),
      event: z.string(),
      status_code: z.number().int().nullable(),
      at: IsoTime,
    })
    .nullable()
    .optional()
    .describe('its latest delivery (in lists and GET), null before any'),
});
export type WebhookEndpoint = z.infer<typeof WebhookEndpoint>;

/** A created endpoint: the only time its signing secret is shown. */
export const CreatedWebhook = WebhookEndpoint.extend({
  secret: z.string().describe('the signing secret (whsec_...); shown this once'),
});
export type CreatedWebhook = z.infer<typeof CreatedWebhook>;

const WebhookAgentIds = z
  .array(Id)
  .min(1, 'must name at least one agent (leave it out, or null, for every agent)')
  .max(100);
const WebhookEvents = z.array(WebhookEventName).min(1, 'must name at least one event').max(10);

export const CreateWebhookBody = z.object({
  url: WebhookUrl,
  events: WebhookEvents.optional().describe('default: run.failed and run.timed_out'),
  agent_ids: WebhookAgentIds.nullish().describe("only these agents' events; default every agent"),
  description: Text(500).nullish(),
  enabled: z.boolean().optional(),
});
export type CreateWebhookBody = z.infer<typeof CreateWebhookBody>;

export const PatchWebhookBody = z.object({
  url: WebhookUrl.optional(),
  events: WebhookEvents.optional(),
  agent_ids: WebhookAgentIds.nullish(),
  description: Text(500).nullish(),
  enabled: z.boolean().optional(),
});
export type PatchWebhookBody = z.infer<typeof PatchWebhookBody>;

/** One delivery of an event to an endpoint, with its attempts so far. */
export const WebhookDelivery = z.object({
  id: z.string().describe('also its Runlog-Webhook-Id header: the same on every retry'),
  webhook_id: z.string(),
  event: z.string().describe('a run or agent event, or ping for a test'),
  run_id: z.string().nullable().describe('the run a run event is about'),
  agent_id: z
    .string()
    .nullable()
    .describe("the agent an event is about (a run event: the run's agent); null for a ping"),
  status: z.enum(WEBHOOK_DELIVERY_STATUSES),
  attempts: z.number().int(),
  last_status_code: z.number().int().nullable().describe("the endpoint's last HTTP status"),
  last_error: z.string().nullable().describe('why the last attempt failed'),
  next_attempt_at: IsoTime.nullable().describe('when a pending delivery is tried next'),
  delivered_at: IsoTime.nullable(),
  created_at: IsoTime,
});
export type WebhookDelivery = z.infer<typeof WebhookDelivery>;

/** What `POST /webhooks/:id/test` answers: how the endpoint took a ping. */
export const WebhookTestResult = z.object({
  ok: z.boolean().describe('the endpoint answered 2xx'),
  status_code: z.number().int().nullable(),
  error: z.string().nullable(),
  duration_ms: z.number().int(),
  response_body: z.string().nullable().describe('the start of its answer (up to 1 KiB)'),
  delivery: WebhookDelivery,
});
export type WebhookTestResult = z.infer<typeof WebhookTestResult>;

export const ApiErrorBody = z.object({
  error: z.object({
    code: z.enum(ERROR_CODES),
    message: z.string(),
    details: z.array(z.unknown()).optional(),
  }),
});
export type ApiErrorBody = z.infer<typeof ApiErrorBody>;

// ---------------------------------------------------------------------------
// Realtime

export const WsClientMessage = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('subscribe'),
    topics: z.array(z.string().min(1).max(200)).min(1).max(1000),
  }),
  z.object({
    type: z.literal('unsubscribe'),
    topics: z.array(z.string().min(1).max(200)).min(1).max(1000),
  }),
  z.object({ type: z.literal('ping') }),
]);
export type WsClientMessage = z.infer<typeof WsClientMessage>;

export type WsServerMessage =
  | { type: 'run_update'; topic: string; data: Run }
  | { type: 'step_update'; topic: string; data: Step }
  /** The run and its steps were deleted; nothing more of it follows. */
  | { type: 'run_deleted'; topic: string; data: { id: string; agent_id: string } }
  /** An agent's settings changed (on `agents` and `agent:<id>`): the agent as it is now. */
  | { type: 'agent_update'; topic: string; data: Agent }
  /** The agent was deleted, with its runs (each of which has its `run_deleted`). */
  | { type: 'agent_deleted'; topic: string; data: { id: string } }
  | { type: 'subscribed'; topics: string[] }
  | { type: 'unsubscribed'; topics: string[] }
  | { type: 'pong' }
  | { type: 'error'; error: { code: string; message: string; details?: unknown[] } };

/**
 * The request header (and, for the WebSocket, the `project` query parameter) by which a client
 * names the project it acts in: a request whose key or session is another project's is refused
 * (409; the WebSocket 401). A browser holds one session cookie, so a dashboard tab left on one
 * project sends, after a login to another project in another tab, that project's cookie: its
 * Stop or Delete of a run id both projects use would act on the other project's run.
 * @example fetch('/api/v1/runs/r1/cancel', { method: 'POST', headers: { [PROJECT_HEADER]: 'default' } })
 */
export const PROJECT_HEADER = 'x-runlog-project';

/** Topic names of the realtime hub. */
export const topics = {
  runs: 'runs',
  /** Every agent's settings changes (`agent_update`, `agent_deleted`). */
  agents: 'agents',
  agent: (agentId: string) => `agent:${agentId}`,
  run: (runId: string) => `run:${runId}`,
} as const;

export const TOPIC_PATTERN =
  /^(runs|agents|agent:[A-Za-z0-9._:-]{1,128}|run:[A-Za-z0-9._:-]{1,128})$/;
