import { z } from 'zod';

/** Every run status, in lifecycle order. */
export const RUN_STATUSES = [
  'queued',
  'running',
  'succeeded',
  'failed',
  'cancelled',
  'timed_out',
] as const;
export const RunStatus = z.enum(RUN_STATUSES);
export type RunStatus = (typeof RUN_STATUSES)[number];

/** Statuses a run never leaves once it reaches them. */
export const TERMINAL_RUN_STATUSES = ['succeeded', 'failed', 'cancelled', 'timed_out'] as const;
export type TerminalRunStatus = (typeof TERMINAL_RUN_STATUSES)[number];

/** Statuses counted as failures in `fail_rate`. */
export const FAILED_RUN_STATUSES = ['failed', 'timed_out'] as const;

export const RUN_TRIGGERS = ['manual', 'schedule', 'api', 'retry'] as const;

/**
 * Orders of `GET /runs`: newest first (the default), or the most cost, the longest
 * duration, the most tokens first (runs without a duration, not ended, last).
 */
export const RUN_SORTS = ['newest', 'cost', 'duration', 'tokens'] as const;
export type RunSort = (typeof RUN_SORTS)[number];
export const RunTrigger = z.enum(RUN_TRIGGERS);
export type RunTrigger = (typeof RUN_TRIGGERS)[number];

export const STEP_TYPES = [
  'llm',
  'tool',
  'agent',
  'think',
  'action',
  'evaluator',
  'embedding',
  'retrieval',
  'response',
  'custom',
] as const;
export const StepType = z.enum(STEP_TYPES);
export type StepType = (typeof STEP_TYPES)[number];

export const STEP_STATUSES = ['running', 'succeeded', 'failed'] as const;
export const StepStatus = z.enum(STEP_STATUSES);
export type StepStatus = (typeof STEP_STATUSES)[number];

export const KEY_SCOPES = ['read', 'write', 'admin'] as const;
export const KeyScope = z.enum(KEY_SCOPES);
export type KeyScope = (typeof KEY_SCOPES)[number];

/**
 * Whether a key of scope `has` may do what needs `needs`: admin ⊇ write ⊇ read, the order
 * KEY_SCOPES lists them in. The server enforces it; the dashboard disables what it forbids.
 * @example scopeAllows('write', 'admin') // false
 */
export function scopeAllows(has: KeyScope, needs: KeyScope): boolean {
  return KEY_SCOPES.indexOf(has) >= KEY_SCOPES.indexOf(needs);
}

export const TIMELINE_EVENT_TYPES = [
  'RUN_QUEUED',
  'RUN_STARTED',
  'STEP_STARTED',
  'STEP_ENDED',
  'CANCEL_REQUESTED',
  'RUN_ENDED',
] as const;
export type TimelineEventType = (typeof TIMELINE_EVENT_TYPES)[number];

/** Closed set of API error codes; each maps to one HTTP status. */
export const ERROR_CODES = [
  'invalid_input',
  'unauthorized',
  'forbidden',
  'not_found',
  'method_not_allowed',
  'conflict',
  'payload_too_large',
  'rate_limited',
  'internal',
  'unavailable',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export const ERROR_STATUS: Record<ErrorCode, number> = {
  invalid_input: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  payload_too_large: 413,
  rate_limited: 429,
  internal: 500,
  unavailable: 503,
};

export function isTerminalStatus(status: RunStatus): status is TerminalRunStatus {
  return (TERMINAL_RUN_STATUSES as readonly string[]).includes(status);
}

export function assertNever(value: never): never {
  throw new Error(`unexpected value: ${JSON.stringify(value)}`);
}

/**
 * What a webhook endpoint can be told: a run reaching each terminal status, and an agent's
 * spend over the last 24 hours reaching its budget (`max_cost_usd_24h`: its queued runs wait
 * from then) or falling back under it. An endpoint created without `events` gets
 * `DEFAULT_WEBHOOK_EVENTS`, the run outcomes someone must act on.
 */
export const RUN_WEBHOOK_EVENTS = [
  'run.failed',
  'run.timed_out',
  'run.cancelled',
  'run.succeeded',
] as const;
export const AGENT_WEBHOOK_EVENTS = ['agent.over_budget', 'agent.under_budget'] as const;
export const WEBHOOK_EVENTS = [...RUN_WEBHOOK_EVENTS, ...AGENT_WEBHOOK_EVENTS] as const;
export type RunWebhookEvent = (typeof RUN_WEBHOOK_EVENTS)[number];
export type AgentWebhookEvent = (typeof AGENT_WEBHOOK_EVENTS)[number];
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];
export const DEFAULT_WEBHOOK_EVENTS: readonly WebhookEvent[] = ['run.failed', 'run.timed_out'];

/** The webhook event a run reaching `status` makes. */
export function webhookEventOf(status: TerminalRunStatus): RunWebhookEvent {
  return `run.${status}`;
}

/**
 * Where a webhook delivery stands: waiting for its (next) attempt, taken by its endpoint
 * (a 2xx answer), or given up after its last retry.
 */
export const WEBHOOK_DELIVERY_STATUSES = ['pending', 'delivered', 'failed'] as const;
export type WebhookDeliveryStatus = (typeof WEBHOOK_DELIVERY_STATUSES)[number];

/**
 * Who queued an automatic retry (its agent's retry policy), as its `triggered_by` says: the
 * retries that carry a failed run's outcome on (`trigger: 'retry'`, `retry_of` the run).
 */
export const RETRY_POLICY_TRIGGER = 'retry policy';
