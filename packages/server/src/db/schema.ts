import type { Generated, Insertable, Selectable, Updateable } from 'kysely';

/**
 * Stored shapes. Times are epoch milliseconds, money is integer nano-USD, JSON fields are
 * text. These interfaces appear only inside `Database`; code uses `Selectable<...>` rows
 * and maps them to the API types in one place per table.
 */
export interface ProjectTable {
  id: string;
  name: string;
  retention_days: number;
  created_at: number;
}

export interface ApiKeyTable {
  id: string;
  project_id: string;
  name: string | null;
  scope: 'read' | 'write' | 'admin';
  /** The first characters of the key, shown to tell keys apart. */
  prefix: string;
  /** SHA-256 of the whole key, hex. */
  hash: string;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

export interface SessionTable {
  /** SHA-256 of the session token, hex. */
  id: string;
  project_id: string;
  key_id: string;
  created_at: number;
  expires_at: number;
}

export interface AgentTable {
  project_id: string;
  id: string;
  name: string;
  description: string | null;
  schedule_cron: string | null;
  schedule_tz: string | null;
  /** The next slot the scheduler will enqueue, epoch ms. */
  schedule_next_at: number | null;
  /** 1 while the schedule is paused (it queues nothing), else 0. */
  schedule_paused: Generated<number>;
  timeout_ms: number | null;
  /** Limits on one run's cost (nano-dollars), tokens and steps: past one, the run fails. */
  max_cost_nanos: number | null;
  max_tokens: number | null;
  max_steps: number | null;
  /** The retry policy, JSON (`RetryPolicy`): failed runs a worker executed are queued again. */
  retry_policy: string | null;
  /** At most this many of its runs executing on workers at once (claims hand out no more). */
  max_concurrency: number | null;
  /** At most this many runs of one thread executing on workers at once. */
  max_concurrency_per_thread: number | null;
  /**
   * When the agent was paused, epoch ms: workers are handed none of its queued runs and its
   * schedule queues none. Null: it runs.
   */
  paused_at: number | null;
  /**
   * The agent's budget over 24 hours (nano-dollars): while the runs it started in the last 24
   * hours cost this much, workers are handed none of its queued runs. Null: none.
   */
  max_cost_nanos_24h: number | null;
  /**
   * Since when its spend over the last 24 hours has stood at that budget, as the budget
   * watch last saw it (`control/budget-watch.ts`), epoch ms. Null: under it, or no budget.
   */
  over_budget_at: number | null;
  metadata: string;
  created_at: number;
  updated_at: number;
  /** When a worker last asked for this agent's runs (`POST /workers/claim`), epoch ms. */
  worker_seen_at: number | null;
}

export interface RunTable {
  project_id: string;
  id: string;
  agent_id: string;
  status: string;
  trigger: string;
  source: string | null;
  triggered_by: string | null;
  user_id: string | null;
  thread_id: string | null;
  parent_run_id: string | null;
  retry_of: string | null;
  attempt: number;
  input: string | null;
  output: string | null;
  error: string | null;
  model: string | null;
  /** JSON array of strings. */
  tags: string;
  metadata: string;
  queued_at: number | null;
  started_at: number | null;
  ended_at: number | null;
  duration_ms: number | null;
  cancel_requested_at: number | null;
  lease_expires_at: number | null;
  worker_id: string | null;
  last_heartbeat_at: number | null;
  /** When the agent's `timeout_ms` runs out for this run. */
  deadline_at: number | null;
  step_count: number;
  error_count: number;
  llm_calls: number;
  tool_calls: number;
  input_tokens: number;
  output_tokens: number;
  cost_nanos: number;
  /** Usage per model, JSON (`stats/models.ts`): what the model rollups hold of this run. */
  models: string;
  /** The run's scores by name, JSON: `{"<name>": {type, n, avg, labels}}` (`scores/summary.ts`). */
  scores: string;
  /** The run's place in "newest first": queued_at ?? started_at ?? created_at. */
  sort_at: number;
  created_at: number;
  updated_at: number;
}

export interface StepTable {
  project_id: string;
  run_id: string;
  id: string;
  parent_step_id: string | null;
  seq: number;
  type: string;
  name: string | null;
  status: string;
  started_at: number | null;
  ended_at: number | null;
  duration_ms: number | null;
  input: string | null;
  output: string | null;
  error: string | null;
  model: string | null;
  provider: string | null;
  input_tokens: number | null;
  output_tokens: number | null;
  cached_input_tokens: number | null;
  reasoning_tokens: number | null;
  cost_nanos: number | null;
  /**
   * 1 when `cost_nanos` was given, 0 when computed from the price table (computed again as
   * usage comes); null without a cost, or for steps from before migration 0017.
   */
  cost_given: number | null;
  /** When a streamed answer's first token came (migration 0018); null when not recorded. */
  first_token_at: number | null;
  metadata: string;
  created_at: number;
  updated_at: number;
}

/** Per agent, hour, status and trigger: what stats and totals read instead of scanning runs. */
export interface RunRollupTable {
  project_id: string;
  agent_id: string;
  /** Hour start (UTC epoch ms) of the runs' `sort_at`. */
  hour: number;
  status: string;
  trigger: string;
  runs: number;
  duration_count: number;
  duration_sum: number;
  input_tokens: number;
  output_tokens: number;
  cost_nanos: number;
}

/** Per agent and hour: how many finished runs fell into each log-scale duration bin. */
export interface DurationHistogramTable {
  project_id: string;
  agent_id: string;
  hour: number;
  bin: number;
  runs: number;
}

/** `run_rollups` per agent and day (`day` is the UTC day start). */
export interface RunRollupDailyTable extends Omit<RunRollupTable, 'hour'> {
  day: number;
}
/** `run_rollups` for all agents of a project, per hour. */
export type ProjectRollupTable = Omit<RunRollupTable, 'agent_id'>;
/** `run_rollups` for all agents of a project, per day. */
export type ProjectRollupDailyTable = Omit<RunRollupDailyTable, 'agent_id'>;
export interface DurationHistogramDailyTable extends Omit<DurationHistogramTable, 'hour'> {
  day: number;
}
export type ProjectDurationHistogramTable = Omit<DurationHistogramTable, 'agent_id'>;
export type ProjectDurationHistogramDailyTable = Omit<DurationHistogramDailyTable, 'agent_id'>;

/** Per project, hour, agent and model: the runs' usage by model (`runs.models`, summed). */
export interface ModelRollupTable {
  project_id: string;
  /** Hour start (UTC epoch ms) of the runs' `sort_at`, as in `run_rollups`. */
  hour: number;
  agent_id: string;
  /** '' for steps without a model. */
  model: string;
  /** Runs that used the model. */
  runs: number;
  calls: number;
  input_tokens: number;
  output_tokens: number;
  cost_nanos: number;
}
/** `model_rollups` per day (`day` is the UTC day start). */
export interface ModelRollupDailyTable extends Omit<ModelRollupTable, 'hour'> {
  day: number;
}

export interface ModelPriceTable {
  project_id: string;
  model: string;
  input_per_mtok: number;
  output_per_mtok: number;
  cached_input_per_mtok: number | null;
  updated_at: number;
}

/** One row per enqueued schedule slot: its primary key makes each slot enqueue once. */
export interface ScheduleSlotTable {
  project_id: string;
  agent_id: string;
  slot_at: number;
  run_id: string;
  created_at: number;
}

/**
 * A run deleted lately (`DELETE /runs/:id`, or with its agent): events naming it are refused
 * for `DELETED_RUN_MEMORY_MS`, so an agent still running it cannot bring it back.
 */
export interface DeletedRunTable {
  project_id: string;
  run_id: string;
  deleted_at: number;
  /** The run's agent, for announcing the deletion again; null for rows from before 0015. */
  agent_id: string | null;
}

/** A worker that asked for runs lately (`GET /workers`): noted on claims and heartbeats. */
export interface WorkerTable {
  project_id: string;
  /** The worker's own id (the SDK's `host:pid:random`), or `key:<key id>` without one. */
  id: string;
  /** JSON array of the agent ids its last claim asked for. */
  agents: string;
  first_seen_at: number;
  last_seen_at: number;
}

/** A score of a run or a step: an evaluator's verdict, a user's feedback. */
export interface ScoreTable {
  project_id: string;
  run_id: string;
  id: string;
  step_id: string | null;
  name: string;
  /** numeric, boolean or categorical */
  type: string;
  /** The number, or 1 / 0 for a boolean; null for a label. */
  value: number | null;
  label: string | null;
  comment: string | null;
  source: string | null;
  metadata: string;
  created_at: number;
  updated_at: number;
}

/** A project's webhook endpoint (`webhooks/`). */
export interface WebhookEndpointTable {
  project_id: string;
  id: string;
  url: string;
  description: string | null;
  /** JSON array of webhook events. */
  events: string;
  /** JSON array of agent ids; null: every agent. */
  agent_ids: string | null;
  /** The signing secret, as it is: the server signs with it. */
  secret: string;
  /** 1, or 0 while paused. */
  enabled: number;
  created_at: number;
  updated_at: number;
}

/** One event for one endpoint, and its attempts. */
export interface WebhookDeliveryTable {
  project_id: string;
  id: string;
  webhook_id: string;
  event: string;
  run_id: string | null;
  /** The agent the event is about (a run event's: its run's agent); null for a ping. */
  agent_id: string | null;
  /** The JSON body sent, built when the event happened. */
  payload: string;
  /** pending, delivered or failed */
  status: string;
  attempts: number;
  /** When a pending one is tried next (or its attempt's claim lapses). */
  next_attempt_at: number | null;
  last_status_code: number | null;
  last_error: string | null;
  delivered_at: number | null;
  created_at: number;
}

export interface Database {
  projects: ProjectTable;
  api_keys: ApiKeyTable;
  sessions: SessionTable;
  agents: AgentTable;
  runs: RunTable;
  steps: StepTable;
  run_rollups: RunRollupTable;
  duration_histogram: DurationHistogramTable;
  run_rollups_daily: RunRollupDailyTable;
  project_rollups: ProjectRollupTable;
  project_rollups_daily: ProjectRollupDailyTable;
  duration_histogram_daily: DurationHistogramDailyTable;
  project_duration_histogram: ProjectDurationHistogramTable;
  project_duration_histogram_daily: ProjectDurationHistogramDailyTable;
  model_rollups: ModelRollupTable;
  model_rollups_daily: ModelRollupDailyTable;
  model_prices: ModelPriceTable;
  schedule_slots: ScheduleSlotTable;
  deleted_runs: DeletedRunTable;
  workers: WorkerTable;
  scores: ScoreTable;
  webhook_endpoints: WebhookEndpointTable;
  webhook_deliveries: WebhookDeliveryTable;
}

export type ProjectRow = Selectable<ProjectTable>;
export type ApiKeyRow = Selectable<ApiKeyTable>;
export type AgentRow = Selectable<AgentTable>;
export type RunRow = Selectable<RunTable>;
export type NewRunRow = Insertable<RunTable>;
export type RunUpdate = Updateable<RunTable>;
export type StepRow = Selectable<StepTable>;
export type ModelPriceRow = Selectable<ModelPriceTable>;
export type ScoreRow = Selectable<ScoreTable>;
export type WebhookEndpointRow = Selectable<WebhookEndpointTable>;
export type WebhookDeliveryRow = Selectable<WebhookDeliveryTable>;
