import {
  DEFAULT_RETRY_DELAY_MS,
  MAX_AGENT_CONCURRENCY,
  MAX_RETRY_ATTEMPTS,
  MAX_RETRY_DELAY_MS,
  type Agent,
  type AgentUpsertBody,
  type RetryPolicy,
} from '@runlog/core';

/** The units the timeout input offers, largest last. */
export const TIMEOUT_UNITS = {
  s: { label: 'seconds', ms: 1000 },
  min: { label: 'minutes', ms: 60_000 },
  h: { label: 'hours', ms: 3_600_000 },
} as const;
export type TimeoutUnit = keyof typeof TIMEOUT_UNITS;

/** The longest timeout the server takes (AgentUpsertBody.timeout_ms): 7 days. */
const MAX_TIMEOUT_MS = 7 * 24 * 3_600_000;

/** The largest budget over 24 hours the server takes (AgentUpsertBody.max_cost_usd_24h). */
const MAX_BUDGET_USD = 1_000_000_000;

/** The settings dialog's inputs, as typed: every number is the text in its input. */
export interface AgentSettingsForm {
  name: string;
  description: string;
  scheduled: boolean;
  cron: string;
  timezone: string;
  timeout: string;
  timeoutUnit: TimeoutUnit;
  maxCost: string;
  maxTokens: string;
  maxSteps: string;
  /** US$ the runs of the last 24 hours may cost before its queued runs wait: empty for none. */
  maxCost24h: string;
  /** Runs in all, the first included: empty for no automatic retry. */
  maxAttempts: string;
  /** How long the first retry waits, in seconds. */
  retryDelay: string;
  retryBackoff: RetryPolicy['backoff'];
  /** At most this many runs executing on workers at once: empty for no cap. */
  maxConcurrency: string;
  /** At most this many runs of one thread at once: empty for no cap. */
  maxConcurrencyPerThread: string;
}

/** The inputs an error can stand beside. */
export type SettingsField =
  | 'name'
  | 'description'
  | 'cron'
  | 'timezone'
  | 'timeout'
  | 'maxCost'
  | 'maxTokens'
  | 'maxSteps'
  | 'maxCost24h'
  | 'maxAttempts'
  | 'retryDelay'
  | 'maxConcurrency'
  | 'maxConcurrencyPerThread';

/** Errors by input; `form` holds those that name no input (shown above the buttons). */
export type SettingsErrors = Partial<Record<SettingsField | 'form', string>>;

/** The settings an agent's dialog edits. */
export type EditableAgent = Pick<
  Agent,
  | 'name'
  | 'description'
  | 'schedule'
  | 'timeout_ms'
  | 'max_cost_usd'
  | 'max_tokens'
  | 'max_steps'
  | 'max_cost_usd_24h'
  | 'retry'
  | 'max_concurrency'
  | 'max_concurrency_per_thread'
>;

/**
 * A timeout as the input shows it: in the largest unit it is a whole number of, so 90 s
 * reads "90 seconds" and 2 h "2 hours".
 * @example timeoutParts(5_400_000) // { value: '90', unit: 'min' }
 */
export function timeoutParts(ms: number | null): { value: string; unit: TimeoutUnit } {
  if (ms === null) return { value: '', unit: 'min' };
  for (const unit of ['h', 'min'] as const) {
    if (ms % TIMEOUT_UNITS[unit].ms === 0)
      return { value: String(ms / TIMEOUT_UNITS[unit].ms), unit };
  }
  return { value: String(ms / 1000), unit: 's' };
}

/**
 * A money limit as its input shows it: in plain digits, as the input takes it back (String
 * writes a millionth of a dollar as "1e-7", which the input then refuses); empty for none.
 */
function moneyText(usd: number | null): string {
  return usd === null
    ? ''
    : usd.toLocaleString('en-US', { useGrouping: false, maximumFractionDigits: 20 });
}

/**
 * The dialog's inputs for `agent` as it is; a new schedule starts in `defaultTimezone`.
 * @example settingsForm(agent, 'Europe/Oslo').maxSteps // '200' for max_steps: 200, '' for null
 */
export function settingsForm(agent: EditableAgent, defaultTimezone = 'UTC'): AgentSettingsForm {
  const timeout = timeoutParts(agent.timeout_ms);
  return {
    name: agent.name,
    description: agent.description ?? '',
    scheduled: agent.schedule !== null,
    cron: agent.schedule?.cron ?? '',
    timezone: agent.schedule?.timezone ?? defaultTimezone,
    timeout: timeout.value,
    timeoutUnit: timeout.unit,
    maxCost: moneyText(agent.max_cost_usd),
    maxTokens: agent.max_tokens !== null ? String(agent.max_tokens) : '',
    maxSteps: agent.max_steps !== null ? String(agent.max_steps) : '',
    maxCost24h: moneyText(agent.max_cost_usd_24h),
    maxAttempts: agent.retry ? String(agent.retry.max_attempts) : '',
    retryDelay: String((agent.retry?.delay_ms ?? DEFAULT_RETRY_DELAY_MS) / 1000),
    retryBackoff: agent.retry?.backoff ?? 'exponential',
    maxConcurrency: agent.max_concurrency !== null ? String(agent.max_concurrency) : '',
    maxConcurrencyPerThread:
      agent.max_concurrency_per_thread !== null ? String(agent.max_concurrency_per_thread) : '',
  };
}

/**
 * The retry policy the Retries inputs say: none for empty attempts; the delay in seconds
 * (empty: the server's default), to the millisecond.
 */
function parseRetry(
  form: AgentSettingsForm,
): { ok: true; value: RetryPolicy | null } | { ok: false; errors: SettingsErrors } {
  const attempts = form.maxAttempts.trim();
  if (attempts === '') return { ok: true, value: null };
  const errors: SettingsErrors = {};
  const n = /^\d+$/.test(attempts) ? Number(attempts) : NaN;
  if (!(n >= 2 && n <= MAX_RETRY_ATTEMPTS))
    errors.maxAttempts = `Enter 2 to ${MAX_RETRY_ATTEMPTS} (the first run included), or leave it empty`;
  const delayText = form.retryDelay.trim();
  const seconds = delayText === '' ? DEFAULT_RETRY_DELAY_MS / 1000 : Number(delayText);
  const delay = Math.round(seconds * 1000);
  if (!/^(\d+\.?\d*|\.\d+)?$/.test(delayText) || !(delay >= 0 && delay <= MAX_RETRY_DELAY_MS))
    errors.retryDelay = `Enter 0 to ${MAX_RETRY_DELAY_MS / 1000} seconds (a day)`;
  if (Object.keys(errors).length > 0) return { ok: false, errors };
  return { ok: true, value: { max_attempts: n, delay_ms: delay, backoff: form.retryBackoff } };
}

const samePolicy = (a: RetryPolicy | null, b: RetryPolicy | null) =>
  a === b ||
  (a !== null &&
    b !== null &&
    a.max_attempts === b.max_attempts &&
    a.delay_ms === b.delay_ms &&
    a.backoff === b.backoff);

type Parsed = { ok: true; value: number | null } | { ok: false; error: string };

/**
 * An optional positive number: empty is null (no limit); `whole` refuses fractions. Commas
 * are read only as thousands groups (`1,000,000`): `0,50` is refused, never read as 50. Only
 * plain decimals: `0x10` or `1e3` are not what anyone types for a limit.
 */
function parseLimit(text: string, whole: boolean): Parsed {
  const t = text.trim().replace(/^\$/, '');
  if (t === '') return { ok: true, value: null };
  if (t.includes(',') && !/^\d{1,3}(,\d{3})+(\.\d+)?$/.test(t))
    return { ok: false, error: 'Use a dot for decimals (0.50), commas only between thousands' };
  const plain = t.replaceAll(',', '');
  if (!/^-?(\d+\.?\d*|\.\d+)$/.test(plain))
    return { ok: false, error: 'Enter a number, or leave it empty' };
  const n = Number(plain);
  if (!Number.isFinite(n)) return { ok: false, error: 'Enter a number, or leave it empty' };
  if (n <= 0) return { ok: false, error: 'Enter a number above 0, or leave it empty' };
  if (whole && !Number.isInteger(n)) return { ok: false, error: 'Enter a whole number' };
  return { ok: true, value: n };
}

function parseTimeout(text: string, unit: TimeoutUnit): Parsed {
  const parsed = parseLimit(text, false);
  if (!parsed.ok || parsed.value === null) return parsed;
  const ms = Math.round(parsed.value * TIMEOUT_UNITS[unit].ms);
  if (ms < 1000) return { ok: false, error: 'The shortest timeout is 1 second' };
  if (ms > MAX_TIMEOUT_MS) return { ok: false, error: 'The longest timeout is 7 days (168 hours)' };
  return { ok: true, value: ms };
}

/**
 * The `PUT /agents/:id` body for what the user changed in `form` from `initial` (the agent
 * as the dialog opened): only the fields whose value differs, an emptied input as null, so
 * a save never overwrites a field someone else changed meanwhile. Inputs that do not read
 * as their field's value come back as errors instead.
 * @example settingsBody({ ...settingsForm(agent), maxSteps: '' }, agent) // { ok: true, body: { max_steps: null } }
 */
export function settingsBody(
  form: AgentSettingsForm,
  initial: EditableAgent,
): { ok: true; body: AgentUpsertBody } | { ok: false; errors: SettingsErrors } {
  const body: AgentUpsertBody = {};
  const errors: SettingsErrors = {};

  const name = form.name.trim();
  if (name === '') errors.name = 'Enter a name';
  else if (name !== initial.name) body.name = name;

  const description = form.description.trim() === '' ? null : form.description;
  if (description !== initial.description) body.description = description;

  if (!form.scheduled) {
    if (initial.schedule !== null) body.schedule = null;
  } else {
    const cron = form.cron.trim();
    const timezone = form.timezone.trim();
    if (cron === '') errors.cron = 'Enter a cron expression, or choose No schedule';
    if (timezone === '') errors.timezone = 'Enter a time zone, such as UTC or Europe/Oslo';
    if (
      cron !== '' &&
      timezone !== '' &&
      (cron !== initial.schedule?.cron || timezone !== initial.schedule.timezone)
    )
      body.schedule = { cron, timezone };
  }

  const numbers = [
    ['timeout', 'timeout_ms', parseTimeout(form.timeout, form.timeoutUnit)],
    ['maxCost', 'max_cost_usd', parseLimit(form.maxCost, false)],
    ['maxTokens', 'max_tokens', parseLimit(form.maxTokens, true)],
    ['maxSteps', 'max_steps', parseLimit(form.maxSteps, true)],
  ] as const;
  for (const [field, key, parsed] of numbers) {
    if (!parsed.ok) errors[field] = parsed.error;
    else if (parsed.value !== initial[key]) body[key] = parsed.value;
  }

  const budget = parseLimit(form.maxCost24h, false);
  if (!budget.ok) errors.maxCost24h = budget.error;
  else if (budget.value !== null && budget.value > MAX_BUDGET_USD)
    errors.maxCost24h = `Enter at most $${MAX_BUDGET_USD.toLocaleString('en-US')}, or leave it empty`;
  else if (budget.value !== initial.max_cost_usd_24h) body.max_cost_usd_24h = budget.value;

  const caps = [
    ['maxConcurrency', 'max_concurrency'],
    ['maxConcurrencyPerThread', 'max_concurrency_per_thread'],
  ] as const;
  for (const [field, key] of caps) {
    const cap = parseLimit(form[field], true);
    if (!cap.ok) errors[field] = cap.error;
    else if (cap.value !== null && cap.value > MAX_AGENT_CONCURRENCY)
      errors[field] =
        `Enter 1 to ${MAX_AGENT_CONCURRENCY.toLocaleString('en-US')}, or leave it empty`;
    else if (cap.value !== initial[key]) body[key] = cap.value;
  }

  const retry = parseRetry(form);
  if (!retry.ok) Object.assign(errors, retry.errors);
  else if (!samePolicy(retry.value, initial.retry)) body.retry = retry.value;

  return Object.keys(errors).length > 0 ? { ok: false, errors } : { ok: true, body };
}

const FIELD_OF: Record<string, SettingsField> = {
  'body.name': 'name',
  'body.description': 'description',
  'body.schedule': 'cron',
  'body.schedule.cron': 'cron',
  'body.schedule.timezone': 'timezone',
  'body.timeout_ms': 'timeout',
  'body.max_cost_usd': 'maxCost',
  'body.max_tokens': 'maxTokens',
  'body.max_steps': 'maxSteps',
  'body.max_cost_usd_24h': 'maxCost24h',
  'body.retry': 'maxAttempts',
  'body.retry.max_attempts': 'maxAttempts',
  'body.retry.delay_ms': 'retryDelay',
  'body.max_concurrency': 'maxConcurrency',
  'body.max_concurrency_per_thread': 'maxConcurrencyPerThread',
};

/**
 * The input a server error's `details[].field` names (`body.schedule.cron` is the cron
 * input); undefined for a field the dialog has no input for.
 * @example settingsFieldOf('body.max_steps') // 'maxSteps'
 */
export function settingsFieldOf(field: string): SettingsField | undefined {
  return FIELD_OF[field];
}

/**
 * A 400's `details` as errors beside the inputs they name; details naming no input, and a
 * failure without details, go to `form` with `message`. The first detail of an input wins.
 * @example settingsErrors('body.max_steps: Too small', [{ field: 'body.max_steps', message: 'Too small' }]) // { maxSteps: 'Too small' }
 */
export function settingsErrors(message: string, details: readonly unknown[] = []): SettingsErrors {
  const errors: SettingsErrors = {};
  const unplaced: string[] = [];
  for (const d of details) {
    const detail = d as { field?: unknown; message?: unknown } | null;
    const text = typeof detail?.message === 'string' ? detail.message : undefined;
    const field = typeof detail?.field === 'string' ? settingsFieldOf(detail.field) : undefined;
    if (field && text) errors[field] ??= text;
    else
      unplaced.push(
        typeof detail?.field === 'string' && text ? `${detail.field}: ${text}` : message,
      );
  }
  if (unplaced.length > 0 || Object.keys(errors).length === 0)
    errors.form = [...new Set(unplaced.length > 0 ? unplaced : [message])].join('; ');
  return errors;
}
