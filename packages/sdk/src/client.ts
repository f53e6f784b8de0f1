import {
  RETRY_POLICY_TRIGGER,
  isTerminalStatus,
  metadataQuery,
  newId,
  type Agent,
  type AgentSummary,
  type AgentUpsertInput,
  type EnqueueRunInput,
  type EnqueueRunsInput,
  type EnqueuedRuns,
  type PostScoreBody,
  type RetryRunBody,
  type Run,
  type RunList,
  type RunStatus,
  type RunSort,
  type RunTrigger,
  type RunWithSteps,
  type Score,
  type ScoreList,
  type Step,
  type StepList,
  type ThreadList,
  type ThreadSummary,
  type UserList,
  type UserSummary,
} from '@runlog/core';
import { RunlogApiError, RunlogConnectionError } from './errors.js';
import { currentRun } from './run.js';
import type { HttpClient } from './http.js';
import { snapshotFields } from './snapshot.js';

export interface RunListParams {
  agent_id?: string | string[] | undefined;
  status?: RunStatus | RunStatus[] | undefined;
  trigger?: RunTrigger | RunTrigger[] | undefined;
  source?: string | undefined;
  user_id?: string | undefined;
  thread_id?: string | undefined;
  /** The retries of one run. */
  retry_of?: string | undefined;
  /** The runs nested in one run (sub-agents). */
  parent_run_id?: string | undefined;
  /** `true`: runs retried already (a run's `retry_of` names them); `false`: not retried yet. */
  retried?: boolean | undefined;
  tag?: string | undefined;
  /**
   * Runs whose metadata holds each key with this value (`{ env: 'prod', pr: 42 }`): a string
   * equal to it, a number equal to it, or the boolean. Top-level keys, at most 10.
   */
  metadata?: Readonly<Record<string, string | number | boolean>> | undefined;
  /** Runs with a step that names this model. */
  model?: string | undefined;
  /** Runs with a score of this name; `score_min`, `score_max` and `score_label` narrow it. */
  score?: string | undefined;
  /** With `score`: runs with such a score of at least this (`true` counts as 1, `false` 0). */
  score_min?: number | undefined;
  /** With `score`: runs with such a score of at most this (`score_max: 0`: the thumbs down). */
  score_max?: number | undefined;
  /** With `score`: runs with such a score of this label. */
  score_label?: string | undefined;
  from?: string | number | Date | undefined;
  to?: string | number | Date | undefined;
  q?: string | undefined;
  /** Newest first unless said: or the most cost, longest duration, most tokens first. */
  sort?: RunSort | undefined;
  limit?: number | undefined;
  cursor?: string | undefined;
  offset?: number | undefined;
}

/**
 * A filter the server would never see as meant: refused here as the server refuses a bad
 * query (a 400 naming the parameter), rather than thrown as a bare RangeError or sent as
 * `[object Object]`, which matches nothing.
 */
function badQuery(field: string, message: string): RunlogApiError {
  return new RunlogApiError(400, 'invalid_input', `query.${field}: ${message}`, [
    { field: `query.${field}`, message },
  ]);
}

function queryString(params: RunListParams | ThreadListParams | UserListParams): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params) as [string, unknown][]) {
    if (v === undefined || v === null) continue;
    if (k === 'metadata' && typeof v === 'object') {
      // `metadata[env]=prod`, a parameter a key (GET /runs)
      const filter = Object.entries(v as Record<string, unknown>).map(([key, value]) => {
        if (typeof value === 'object' && value !== null)
          throw badQuery(
            `metadata[${key}]`,
            'a metadata filter matches a text, number or boolean value, not an object or a list',
          );
        return [key, String(value)];
      });
      for (const [name, value] of Object.entries(metadataQuery(Object.fromEntries(filter))))
        q.set(name, value);
    } else if (Array.isArray(v)) q.set(k, v.join(','));
    else if (v instanceof Date) {
      if (Number.isNaN(v.getTime())) throw badQuery(k, 'an invalid Date');
      q.set(k, v.toISOString());
    } else q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

const enc = encodeURIComponent;

/** How `runlog.runs.retry` retries a run. */
export interface RetryOptions {
  /** The new run's id (default: one made here): the same call sent again answers its retry. */
  id?: string | undefined;
  /** Retry only a run without a retry yet; one retried already answers its newest retry. */
  once?: boolean | undefined;
  /** The retry's input instead of the run's own (`null`: none): a retry with a fix to it. */
  input?: unknown;
}

/** The most runs one `POST /runs/enqueue` takes. */
const MAX_ENQUEUE_BATCH = 1000;
/**
 * Answers to a batch that may be about one of its runs (invalid, taken id, too large), or
 * a server from before `POST /runs/enqueue` (404): its runs are then sent alone.
 */
const REFUSES_ONE = new Set([400, 404, 409, 413]);
/** How many runs of a refused batch are sent alone at the same time. */
const ALONE_AT_ONCE = 8;

/**
 * What `runs.enqueue` takes: the body of `POST /agents/:agent_id/runs`, its `run_at` (no
 * worker takes the run before then) a Date, an ISO time or epoch ms. Inside a run,
 * `parent_run_id` is that run unless given (`null`: none).
 */
export type EnqueueRunOptions = Omit<EnqueueRunInput, 'run_at' | 'parent_run_id'> & {
  run_at?: Date | string | number | undefined;
  /**
   * The run this one serves: it is listed among that run's sub-runs and stopped with it.
   * Default: the run the calling code runs in (`runlog.run`, a worker's handler), whose
   * thread and user it then shares unless given; `null`: none.
   */
  parent_run_id?: string | null | undefined;
};

interface AskedRun {
  agentId: string;
  body: EnqueueRunInput;
  resolve: (run: Run) => void;
  reject: (err: unknown) => void;
}

/**
 * Resolves once what this process recorded so far went out (up to 2 s, not while the server
 * cannot be reached): a read or a change of a run this process just recorded then finds it.
 */
export type RecordedSoFar = () => Promise<void>;

/** For a client used on its own, without a recording process: nothing waits to go. */
const NOTHING_WAITING: RecordedSoFar = () => Promise.resolve();

/** The runs API: `runlog.runs.list(...)`, `get`, `steps`, `enqueue`, `wait`, `startNow`, `cancel`, `retry`. */
export class RunsClient {
  constructor(
    private readonly http: HttpClient,
    private readonly recorded: RecordedSoFar = NOTHING_WAITING,
  ) {}

  /** @example const { runs } = await runlog.runs.list({ agent_id: 'bug-triager', status: 'failed' }) */
  async list(params: RunListParams = {}): Promise<RunList> {
    await this.recorded();
    return (await this.http.request<RunList>('GET', `/api/v1/runs${queryString(params)}`)).body!;
  }

  /** A run; with every one of its steps when `include: 'steps'` (paged in past the first). */
  get(id: string): Promise<Run>;
  get(id: string, options: { include: 'steps' }): Promise<RunWithSteps>;
  async get(id: string, options?: { include: 'steps' }): Promise<Run | RunWithSteps> {
    await this.recorded();
    if (!options?.include)
      return (await this.http.request<Run>('GET', `/api/v1/runs/${enc(id)}`)).body!;
    const { steps_next_cursor: cursor, ...run } = (
      await this.http.request<RunWithSteps>('GET', `/api/v1/runs/${enc(id)}?include=steps`)
    ).body!;
    if (cursor !== undefined) run.steps = run.steps.concat(await this.stepsFrom(id, cursor));
    return run;
  }

  /** Every step of a run, in time order, read a page at a time. */
  async steps(id: string): Promise<Step[]> {
    await this.recorded();
    return this.stepsFrom(id);
  }

  private async stepsFrom(id: string, cursor?: string): Promise<Step[]> {
    const steps: Step[] = [];
    for (let next = cursor; ;) {
      const q = next !== undefined ? `?cursor=${encodeURIComponent(next)}` : '';
      const page = (await this.http.request<StepList>('GET', `/api/v1/runs/${enc(id)}/steps${q}`))
        .body!;
      steps.push(...page.steps);
      if (!page.has_more || page.next_cursor === null) return steps;
      next = page.next_cursor;
    }
  }

  /**
   * Queues a run for a worker. The run's id is chosen here when `body.id` is not given, so a
   * request resent after a dropped connection queues it once. The input and metadata are
   * sent as JSON-safe copies, as recorded values are. Runs queued in the same turn of the
   * event loop (a loop of `enqueue` calls, `Promise.all`) go in one `POST /runs/enqueue`;
   * one alone goes to `POST /agents/:agent_id/runs`. Queued inside a run (`runlog.run`, a
   * worker's handler), the run is its sub-run (`parent_run_id`) in its thread: Stop on that
   * run stops it too, and `runs.wait` in that run's code stops waiting.
   * @example await Promise.all(prs.map((pr) => runlog.runs.enqueue('bug-triager', { input: { pr } })))
   */
  enqueue(agentId: string, options: EnqueueRunOptions = {}): Promise<Run> {
    const { run_at: runAt, parent_run_id: parentRunId, ...body } = options;
    // queued from inside a run: a sub-agent of it, in its conversation, as `runlog.run` nests
    const outer = parentRunId === undefined ? currentRun() : undefined;
    const parent = outer !== undefined && !outer.detached ? outer : undefined;
    return new Promise((resolve, reject) => {
      const withId = snapshotFields({
        ...body,
        ...(parentRunId != null ? { parent_run_id: parentRunId } : {}),
        ...(parent !== undefined ? { parent_run_id: parent.id } : {}),
        ...(body.thread_id === undefined && parent?.threadId !== undefined
          ? { thread_id: parent.threadId }
          : {}),
        ...(body.user_id === undefined && parent?.userId !== undefined
          ? { user_id: parent.userId }
          : {}),
        id: body.id ?? newId(),
        ...(runAt !== undefined
          ? { run_at: runAt instanceof Date ? runAt.toISOString() : runAt }
          : {}),
      });
      this.asked.push({ agentId, body: withId, resolve, reject });
      if (this.asked.length === 1) setImmediate(() => void this.sendAsked());
    });
  }

  private asked: AskedRun[] = [];

  private async sendAsked(): Promise<void> {
    const asked = this.asked;
    this.asked = [];
    for (let i = 0; i < asked.length; i += MAX_ENQUEUE_BATCH) {
      const batch = asked.slice(i, i + MAX_ENQUEUE_BATCH);
      if (batch.length === 1) {
        await this.enqueueOne(batch[0]!);
        continue;
      }
      try {
        const body: EnqueueRunsInput = {
          runs: batch.map((a) => ({ ...a.body, agent_id: a.agentId })),
        };
        const res = await this.http.request<EnqueuedRuns>('POST', '/api/v1/runs/enqueue', body, {
          idempotent: true,
        });
        batch.forEach((a, j) => a.resolve(res.body!.runs[j]!));
      } catch (err) {
        // the batch is all or none: a run the server refuses is sent alone, to fail alone
        if (err instanceof RunlogApiError && REFUSES_ONE.has(err.status)) {
          // a few at a time: a thousand requests at once would time out waiting for sockets
          for (let j = 0; j < batch.length; j += ALONE_AT_ONCE)
            await Promise.all(batch.slice(j, j + ALONE_AT_ONCE).map((a) => this.enqueueOne(a)));
        } else for (const a of batch) a.reject(err);
      }
    }
  }

  private async enqueueOne(a: AskedRun): Promise<void> {
    try {
      const res = await this.http.request<Run>(
        'POST',
        `/api/v1/agents/${enc(a.agentId)}/runs`,
        a.body,
        { idempotent: true },
      );
      a.resolve(res.body!);
    } catch (err) {
      a.reject(err);
    }
  }

  /**
   * Start now: a queued run held back until later (`run_at`, `delay_ms`, or an automatic
   * retry waiting its delay) may be taken by a worker at once. A run already due is answered
   * as it is; one no longer queued throws `RunlogApiError` 409.
   * @example await runlog.runs.startNow(queued.id)
   */
  async startNow(id: string): Promise<Run> {
    return (
      await this.http.request<Run>(
        'POST',
        `/api/v1/runs/${enc(id)}/start-now`,
        {},
        { idempotent: true },
      )
    ).body!;
  }

  /** Stop: cancels a queued run at once, asks a running one's worker to stop. */
  async cancel(id: string): Promise<Run> {
    await this.recorded();
    return (
      await this.http.request<Run>(
        'POST',
        `/api/v1/runs/${enc(id)}/cancel`,
        {},
        { idempotent: true },
      )
    ).body!;
  }

  /**
   * Queues a new run of the same agent and input, linked by `retry_of`. The new run's id is
   * chosen here (or given), so a request lost on a reset connection is sent again without
   * queuing a second retry. With `once: true`, a run retried already (by anyone: another
   * process, the dashboard, the CLI) is not retried again: the answer is its newest retry, and
   * callers racing each other queue one retry between them. Whether this call queued it: the
   * answer's id is the `id` given.
   * @example
   * const retry = await runlog.runs.retry(run.id, { once: true, id: `${run.id}-r` });
   * if (retry.id !== `${run.id}-r`) console.log(`retried already as ${retry.id}`);
   */
  async retry(id: string, options: RetryOptions = {}): Promise<Run> {
    const body: RetryRunBody = snapshotFields({
      id: options.id ?? newId(),
      ...(options.once !== undefined ? { once: options.once } : {}),
      ...(options.input !== undefined ? { input: options.input } : {}),
    });
    await this.recorded();
    return (
      await this.http.request<Run>('POST', `/api/v1/runs/${enc(id)}/retry`, body, {
        idempotent: true,
      })
    ).body!;
  }

  /**
   * Waits for a run to end and answers it: queue a run, then wait for its outcome (a backend
   * that triggers an agent and needs its answer). A run its agent's retry policy retries is
   * followed to its last attempt, whose outcome it answers (`followRetries: false`: the run
   * itself). Reads the run every `pollMs` (default 500); a server away for a while (a
   * restart, the network) is waited out. Throws a `TimeoutError` after `timeoutMs` (default:
   * none), `signal`'s reason when it aborts, and `RunlogApiError` 404 when the run is deleted.
   * @example
   * const queued = await runlog.runs.enqueue('summarizer', { input: { url } });
   * const { status, output } = await runlog.runs.wait(queued.id, { timeoutMs: 300_000 });
   */
  async wait(id: string, options: WaitOptions = {}): Promise<Run> {
    const pollMs = options.pollMs ?? 500;
    // inside a run, its Stop ends the wait: the code waiting hears it at once
    const signal = options.signal ?? currentRun()?.signal;
    const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
    await this.recorded();
    for (let current = id; ;) {
      const run = await this.until(deadline, signal, pollMs, async () => {
        const r = (await this.http.request<Run>('GET', `/api/v1/runs/${enc(current)}`)).body!;
        return isTerminalStatus(r.status) ? r : undefined;
      });
      if (
        options.followRetries === false ||
        (run.status !== 'failed' && run.status !== 'timed_out')
      )
        return run;
      // queued in the same change as the failure: there when the failure is seen
      const { runs } = await this.until(
        deadline,
        signal,
        pollMs,
        async () =>
          (
            await this.http.request<RunList>(
              'GET',
              `/api/v1/runs${queryString({ retry_of: run.id, trigger: 'retry', limit: 1 })}`,
            )
          ).body!,
      );
      const retry = runs.find((r) => r.triggered_by === RETRY_POLICY_TRIGGER);
      if (!retry) return run;
      current = retry.id;
    }
  }

  /**
   * `look` every `pollMs` until it answers something, waiting out a server away (connection
   * errors, 429 and 5xx); `wait`'s timeout and abort.
   */
  private async until<T>(
    deadline: number,
    signal: AbortSignal | undefined,
    pollMs: number,
    look: () => Promise<T | undefined>,
  ): Promise<T> {
    for (;;) {
      signal?.throwIfAborted();
      try {
        const found = await look();
        if (found !== undefined) return found;
      } catch (err) {
        const away =
          err instanceof RunlogConnectionError ||
          (err instanceof RunlogApiError && (err.status === 429 || err.status >= 500));
        if (!away) throw err;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new DOMException('the run did not end within timeoutMs', 'TimeoutError');
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => {
          clearTimeout(timer);
          reject(signal!.reason);
        };
        const timer = setTimeout(
          () => {
            signal?.removeEventListener('abort', onAbort);
            resolve();
          },
          Math.min(pollMs, left),
        );
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    }
  }
}

/** How `runs.wait` waits. */
export interface WaitOptions {
  /** Give up (a `TimeoutError`) after this many ms; default: wait as long as the run goes. */
  timeoutMs?: number | undefined;
  /**
   * Stops the wait: it throws the signal's reason (the run goes on). Default, inside a run
   * (`runlog.run`, a worker's handler): that run's `signal`, which Stop fires.
   */
  signal?: AbortSignal | undefined;
  /** How often the run is read; default 500 ms. */
  pollMs?: number | undefined;
  /** `false`: the run's own outcome, not that of the retries its agent's policy queues. */
  followRetries?: boolean | undefined;
}

/** The agents API: `runlog.agents.list()`, `get`, `update`. */
export class AgentsClient {
  constructor(private readonly http: HttpClient) {}

  async list(): Promise<AgentSummary[]> {
    return (await this.http.request<{ agents: AgentSummary[] }>('GET', '/api/v1/agents')).body!
      .agents;
  }

  /**
   * One agent with its latest run, last error and 24 h counts; a `RunlogApiError` 404 when
   * there is none.
   * @example const { max_steps, next_run_at } = await runlog.agents.get('bug-triager')
   */
  async get(agentId: string): Promise<AgentSummary> {
    return (await this.http.request<AgentSummary>('GET', `/api/v1/agents/${enc(agentId)}`)).body!;
  }

  /**
   * Creates the agent or changes the settings given (`PUT /agents/:id`): name, description,
   * schedule, timeout, limits on one run; a setting left out keeps its value, `null` clears
   * it. A run past a limit is ended failed (BudgetExceeded) and its `run.signal` fires.
   * `{ paused: true }` pauses the agent (workers are handed none of its queued runs, its
   * schedule queues none; runs under way go on), `false` resumes it; `{ schedule: { paused:
   * true } }` pauses only the schedule the agent has.
   * @example await runlog.agents.update('bug-triager', { max_cost_usd: 0.5, max_steps: 40, schedule: { cron: '0 9 * * 1-5', timezone: 'Europe/Paris' } })
   */
  async update(agentId: string, settings: AgentUpsertInput): Promise<Agent> {
    return (
      await this.http.request<Agent>('PUT', `/api/v1/agents/${enc(agentId)}`, settings, {
        idempotent: true,
      })
    ).body!;
  }
}

/** What `runlog.threads.list` takes: `GET /threads`' query. */
export interface ThreadListParams {
  /** Threads with runs of these agents, each summed over those runs alone. */
  agent_id?: string | string[] | undefined;
  /** Threads with runs of this user, each summed over those runs alone. */
  user_id?: string | undefined;
  /** Bounds on the time of the runs counted (queued, else started). */
  from?: string | number | Date | undefined;
  to?: string | number | Date | undefined;
  /** Threads whose id holds this text, in any case (1-200 characters). */
  q?: string | undefined;
  /** Threads per page (1-200, default 50). */
  limit?: number | undefined;
  /** The previous page's `next_cursor`. */
  cursor?: string | undefined;
}

/**
 * The threads API: `runlog.threads.list(...)`, `get`. A thread is a conversation: the runs
 * recorded with the same `threadId`; `runlog.runs.list({ thread_id })` lists its runs.
 */
export class ThreadsClient {
  constructor(
    private readonly http: HttpClient,
    private readonly recorded: RecordedSoFar = NOTHING_WAITING,
  ) {}

  /**
   * Threads, the latest active first, each summed up: runs, failures, tokens, cost, agents,
   * its first input and latest output as text. Page with `cursor: next_cursor`.
   * @example const { threads, next_cursor } = await runlog.threads.list({ agent_id: 'support-bot', from: Date.now() - 86_400_000 })
   */
  async list(params: ThreadListParams = {}): Promise<ThreadList> {
    await this.recorded();
    return (await this.http.request<ThreadList>('GET', `/api/v1/threads${queryString(params)}`))
      .body!;
  }

  /**
   * One thread summed up over all its runs; a `RunlogApiError` 404 when no run names it.
   * @example const thread = await runlog.threads.get('conv-7')
   */
  async get(threadId: string): Promise<ThreadSummary> {
    await this.recorded();
    return (await this.http.request<ThreadSummary>('GET', `/api/v1/threads/${enc(threadId)}`))
      .body!;
  }
}

/** What `runlog.users.list` takes: `GET /users`' query. */
export interface UserListParams {
  /** Users with runs of these agents, each summed over those runs alone. */
  agent_id?: string | string[] | undefined;
  /** Bounds on the time of the runs counted (queued, else started). */
  from?: string | number | Date | undefined;
  to?: string | number | Date | undefined;
  /** Users whose id holds this text, in any case (1-200 characters). */
  q?: string | undefined;
  /** Users per page (1-200, default 50). */
  limit?: number | undefined;
  /** The previous page's `next_cursor`. */
  cursor?: string | undefined;
}

/**
 * The users API: `runlog.users.list(...)`, `get`. A user is the `userId` runs were recorded
 * (or queued) for; `runlog.runs.list({ user_id })` lists its runs.
 */
export class UsersClient {
  constructor(
    private readonly http: HttpClient,
    private readonly recorded: RecordedSoFar = NOTHING_WAITING,
  ) {}

  /**
   * Users, the latest active first, each summed up: runs, failures, threads, agents, tokens,
   * cost and its latest run. Page with `cursor: next_cursor`.
   * @example const { users } = await runlog.users.list({ from: Date.now() - 7 * 86_400_000 })
   */
  async list(params: UserListParams = {}): Promise<UserList> {
    await this.recorded();
    return (await this.http.request<UserList>('GET', `/api/v1/users${queryString(params)}`)).body!;
  }

  /**
   * One user summed up over all its runs; a `RunlogApiError` 404 when no run names it.
   * @example const { cost_usd, failed } = await runlog.users.get('u-42')
   */
  async get(userId: string): Promise<UserSummary> {
    await this.recorded();
    return (await this.http.request<UserSummary>('GET', `/api/v1/users/${enc(userId)}`)).body!;
  }
}

/** What `runlog.scores.create` takes: `POST /runs/:run_id/scores`'s body. */
export type ScoreBody = Omit<PostScoreBody, 'run_id'>;

/**
 * The scores API: `runlog.scores.create(runId, ...)`, `list`, `delete`. For scores given
 * after a run ended (a user's thumbs up, a reviewer's label); inside a run, `run.score`
 * records them with its other events.
 */
export class ScoresClient {
  constructor(
    private readonly http: HttpClient,
    private readonly recorded: RecordedSoFar = NOTHING_WAITING,
  ) {}

  /**
   * Scores a run (or one of its steps, `step_id`), from `sdk` unless `source` says. The
   * score's id is chosen here when not given, so a request resent after a dropped
   * connection records it once; a score given again with the same id replaces it.
   * @example await runlog.scores.create(runId, { name: 'feedback', value: true, source: 'user' })
   */
  async create(runId: string, body: ScoreBody): Promise<Score> {
    const withId = snapshotFields({
      ...body,
      id: body.id ?? newId(),
      source: body.source ?? 'sdk',
    });
    // a run this process just recorded may still be on its way: the server would not know it
    await this.recorded();
    return (
      await this.http.request<Score>('POST', `/api/v1/runs/${enc(runId)}/scores`, withId, {
        idempotent: true,
      })
    ).body!;
  }

  /** A run's scores, oldest first. */
  async list(runId: string): Promise<Score[]> {
    await this.recorded();
    return (await this.http.request<ScoreList>('GET', `/api/v1/runs/${enc(runId)}/scores`)).body!
      .scores;
  }

  /** Deletes a score of a run. */
  async delete(runId: string, scoreId: string): Promise<void> {
    await this.http.request('DELETE', `/api/v1/runs/${enc(runId)}/scores/${enc(scoreId)}`);
  }
}
