export { Runlog, DEFAULT_URL, type RunlogOptions, type RunOptions } from './runlog.js';
export {
  RunContext,
  StepHandle,
  currentRun,
  type LlmCall,
  type ScoreOptions,
  type ScoreValue,
  type StepOptions,
  type StepUpdate,
} from './run.js';
export { Worker, type WorkerOptions, type AgentHandler } from './worker.js';
export {
  RunsClient,
  AgentsClient,
  ScoresClient,
  ThreadsClient,
  UsersClient,
  type EnqueueRunOptions,
  type WaitOptions,
  type RunListParams,
  type RetryOptions,
  type ScoreBody,
  type ThreadListParams,
  type UserListParams,
} from './client.js';
export type {
  Agent,
  AgentSummary,
  AgentUpsertBody,
  AgentUpsertInput,
  RetryPolicy,
  EnqueueRunBody,
  HeartbeatResponse,
  Run,
  RunError,
  RunList,
  RunStatus,
  RunTrigger,
  RunWithSteps,
  Score,
  ScoreSummary,
  Step,
  StoredError,
  ThreadList,
  ThreadSummary,
  TruncatedJson,
  UserList,
  UserSummary,
  WebhookEvent,
  RunWebhookEvent,
  AgentWebhookEvent,
} from '@runlog/core';
/** A run's or a step's error as readers show it, whole or given as a truncated value. */
export { readableError } from '@runlog/core';
export {
  RunlogError,
  RunlogApiError,
  RunlogConnectionError,
  RunCancelledError,
  RunInterruptedError,
  RunlogWebhookError,
} from './errors.js';
export { verifyWebhook, type VerifyWebhookOptions, type WebhookMessage } from './webhooks.js';
