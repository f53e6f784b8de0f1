import { RunFields, SENDABLE_KEY, newId, type RunTrigger } from '@runlog/core';
import { RunInterruptedError, RunlogError } from './errors.js';
import { AgentsClient, RunsClient, ScoresClient, ThreadsClient, UsersClient } from './client.js';
import { settleBy, timeLeft } from './deadline.js';
import { Heartbeats } from './heartbeat.js';
import { HttpClient } from './http.js';
import { wholeNumberProblem } from './options.js';
import { RunContext, currentRun, endRun, runCode, runKey } from './run.js';
import { snapshotFields } from './snapshot.js';
import { Transport } from './transport.js';
import { Worker, type WorkerOptions } from './worker.js';

export const DEFAULT_URL = 'http://127.0.0.1:4680';

/** What `shutdown()` gives flushing (and releasing, after the workers' drain) by default. */
const SHUTDOWN_FLUSH_MS = 5_000;
/**
 * How long a failing `run()` waits for its events to be sent before rethrowing (not at all
 * while the server is failing).
 */
export const FAILED_RUN_FLUSH_MS = 2_000;

export interface RunlogOptions {
  /** The server; default `RUNLOG_URL` or http://127.0.0.1:4680. */
  url?: string | undefined;
  /** An API key with `write` scope; default `RUNLOG_API_KEY`. */
  apiKey?: string | undefined;
  /** Send when this many events wait (default 100). */
  batchSize?: number | undefined;
  /** Send waiting events at least this often, ms (default 250). */
  flushIntervalMs?: number | undefined;
  /** Most events kept in memory; the oldest are dropped past it unless spooling (default 10,000). */
  maxQueue?: number | undefined;
  /** A directory where unsent events are kept, so outages and restarts lose nothing. */
  spoolDir?: string | undefined;
  /**
   * Most bytes kept in `spoolDir` (default 1 GiB): past it, new events stay in memory only
   * (bounded by `maxQueue`), so a long outage cannot fill the disk.
   */
  spoolMaxBytes?: number | undefined;
  /** Where recording problems go; they never reach your agent's code. Default: a console warning. */
  onError?: ((err: Error) => void) | undefined;
  /** How often open runs heartbeat (and learn about Stop), ms (default 2000). */
  heartbeatIntervalMs?: number | undefined;
  /** Timeout of one API request, ms (default 10,000). */
  requestTimeoutMs?: number | undefined;
  /** Flush on SIGTERM/SIGINT and let workers drain before the process exits (default true). */
  handleSignals?: boolean | undefined;
  /**
   * How long the process's normal exit may wait for a server that is busy (its Retry-After)
   * or restarting, ms, before what is unsent is given up (default 5,000; 0: one try at once).
   */
  exitTimeoutMs?: number | undefined;
}

/**
 * The options' problems, each naming the option (and the variable it came from): a typo in
 * `RUNLOG_URL` is one clear error at startup, not every request failing for ever after.
 */
function optionProblems(options: RunlogOptions, url: string): string[] {
  const problems: string[] = [];
  const from = options.url !== undefined ? 'url' : 'url (RUNLOG_URL)';
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    problems.push(`${from}: ${JSON.stringify(url)} is not a URL`);
  }
  if (parsed && parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    problems.push(`${from}: must be an http:// or https:// URL, not ${JSON.stringify(url)}`);
  for (const [name, min] of [
    ['batchSize', 1],
    ['flushIntervalMs', 1],
    ['maxQueue', 1],
    ['heartbeatIntervalMs', 1],
    ['requestTimeoutMs', 1],
    ['exitTimeoutMs', 0],
    ['spoolMaxBytes', 1],
  ] as const) {
    const problem = wholeNumberProblem(name, options[name], min);
    if (problem) problems.push(problem);
  }
  if (options.spoolDir !== undefined && (typeof options.spoolDir !== 'string' || !options.spoolDir))
    problems.push('spoolDir: must be a directory path');
  if (options.onError !== undefined && typeof options.onError !== 'function')
    problems.push('onError: must be a function');
  const key = apiKeyOf(options);
  // a header carries printable ASCII only: such a key would fail every request as a
  // network error, retried and spooled for ever
  if (key && !SENDABLE_KEY.test(key))
    problems.push(
      `${options.apiKey !== undefined ? 'apiKey' : 'apiKey (RUNLOG_API_KEY)'}: must be printable ASCII without spaces, the key as Runlog printed it`,
    );
  return problems;
}

/** The API key to send: the option or RUNLOG_API_KEY, without the newline a key file ends in. */
function apiKeyOf(options: RunlogOptions): string | undefined {
  const key = options.apiKey ?? process.env.RUNLOG_API_KEY;
  return typeof key === 'string' ? key.trim() || undefined : key;
}

/**
 * Fires `run.signal` when `outer`'s fires, with its reason (a Stop ends the sub-agent's run
 * `cancelled` too); returns what stops following it, once `run` ended.
 */
function followStop(outer: RunContext, run: RunContext): () => void {
  const stop = () => run.abort(outer.signal.reason as Error);
  if (outer.signal.aborted) {
    stop();
    return () => {};
  }
  outer.signal.addEventListener('abort', stop, { once: true });
  return () => outer.signal.removeEventListener('abort', stop);
}

export interface RunOptions {
  /** Give an id to make recording idempotent (e.g. your job id); default a new UUIDv7. */
  id?: string | undefined;
  input?: unknown;
  trigger?: RunTrigger | undefined;
  source?: string | undefined;
  triggeredBy?: string | undefined;
  threadId?: string | undefined;
  userId?: string | undefined;
  tags?: string[] | undefined;
  metadata?: Record<string, unknown> | undefined;
  /**
   * Default: the run this one is called inside, if any. A run started inside another takes
   * its `threadId` and `userId` too, unless given its own, and its `run.signal` fires when
   * the other's does (Stop pressed on it).
   */
  parentRunId?: string | undefined;
}

const instances = new Set<Runlog>();
let hooksInstalled = false;

function installProcessHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('beforeExit', () => {
    for (const r of instances) r.beforeExit();
  });
  process.on('exit', () => {
    for (const r of instances) r.onExit();
  });
}

/** After a second signal, how long releasing held runs and a last flush may take. */
const SECOND_SIGNAL_MS = 2_000;
/** How long a signal lets running `run()` code end its run itself, once `run.signal` fired. */
const INTERRUPT_GRACE_MS = 1_000;

/** A signal this soon after the first is the same one, relayed by a runner (tsx, npm). */
const RELAYED_SIGNAL_MS = 250;

let signalsInstalled = false;
function installSignalHandlers(): void {
  if (signalsInstalled) return;
  signalsInstalled = true;
  let firstAt: number | undefined;
  let finished = false;
  /** Every signal's work: the process ends once all of it is done, not the first's alone. */
  let work: Promise<unknown> = Promise.resolve();
  const finish = (signal: NodeJS.Signals) => {
    if (finished) return;
    finished = true;
    process.removeListener('SIGTERM', handler);
    process.removeListener('SIGINT', handler);
    signalsInstalled = false;
    // nobody else handles it: let the signal do what it would have done without us
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };
  const handler = (signal: NodeJS.Signals) => {
    const now = Date.now();
    // a Ctrl-C reaches a process twice within milliseconds when a runner relays it (tsx,
    // npm) to a child in the same process group: that is one Ctrl-C, not two
    if (firstAt !== undefined && now - firstAt < RELAYED_SIGNAL_MS) return;
    const targets = [...instances].filter((r) => r.handlesSignals);
    // a second Ctrl-C means "now": stop waiting for running handlers
    const second = firstAt !== undefined;
    firstAt ??= now;
    // the first signal: workers stop claiming at once while open run() runs get their grace
    // (shutdown records their ends before it closes the transport)
    const mine = targets.map((r) => {
      if (second) return r.hurry(SECOND_SIGNAL_MS);
      void r.interrupt(signal);
      return r.shutdown();
    });
    work = Promise.allSettled([work, ...mine]);
    const all = work;
    void all.then(() => {
      if (work === all) finish(signal);
    });
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}

/**
 * The Runlog client: records runs and steps, runs workers, reads the API.
 * @example
 * const runlog = new Runlog();
 * const verdict = await runlog.run('bug-triager', async (run) => {
 *   const issue = await run.tool('get_issue', { n: 42 }, (a) => fetchIssue(a.n));
 *   return run.llm({ model: 'gpt-4o-mini', messages: [issue] }, () => callModel(issue));
 * }, { input: { n: 42 } });
 */
export class Runlog {
  readonly runs: RunsClient;
  readonly agents: AgentsClient;
  /** Scores given from outside a run: a user's feedback, a reviewer's label. */
  readonly scores: ScoresClient;
  /** Conversations: the runs sharing a `threadId`, summed up. */
  readonly threads: ThreadsClient;
  /** Users: the runs made for a `userId`, summed up. */
  readonly users: UsersClient;
  /** @internal */
  readonly handlesSignals: boolean;
  private readonly http: HttpClient;
  private readonly transport: Transport;
  private readonly onError: (err: Error) => void;
  private readonly heartbeatMs: number;
  private readonly heartbeats: Heartbeats;
  /** `run()` runs whose code is running, and how each will finish. */
  private readonly open = new Map<RunContext, Promise<unknown>>();
  private readonly workers = new Set<Worker>();
  private closing: Promise<void> | undefined;

  constructor(options: RunlogOptions = {}) {
    const url = (options.url ?? process.env.RUNLOG_URL ?? DEFAULT_URL).replace(/\/+$/, '');
    const problems = optionProblems(options, url);
    if (problems.length > 0)
      throw new RunlogError(`invalid Runlog options: ${problems.join('; ')}`);
    const report =
      options.onError ??
      ((err: Error) => {
        console.warn(`[runlog] ${err.message}`);
      });
    // a failing onError must not break the agent either: every part reports through this
    this.onError = (err: Error) => {
      try {
        // an async reporter's rejection would be unhandled, and end the process
        const pending = report(err) as unknown;
        if (typeof (pending as PromiseLike<unknown> | undefined)?.then === 'function')
          (pending as PromiseLike<unknown>).then(undefined, () => {});
      } catch {
        /* ignored */
      }
    };
    const apiKey = apiKeyOf(options);
    // said once, up front: otherwise the first sign is each request's 401
    if (!apiKey) this.onError(new RunlogError('no API key: set RUNLOG_API_KEY or pass apiKey'));
    this.http = new HttpClient({
      baseUrl: url,
      apiKey,
      timeoutMs: options.requestTimeoutMs ?? 10_000,
    });
    this.transport = new Transport(this.http, {
      batchSize: options.batchSize ?? 100,
      flushIntervalMs: options.flushIntervalMs ?? 250,
      maxQueue: options.maxQueue ?? 10_000,
      spoolDir: options.spoolDir,
      spoolMaxBytes: options.spoolMaxBytes ?? 1024 ** 3,
      exitTimeoutMs: options.exitTimeoutMs ?? 5_000,
      onError: this.onError,
    });
    this.heartbeatMs = options.heartbeatIntervalMs ?? 2_000;
    this.heartbeats = new Heartbeats(this.http, this.onError);
    this.handlesSignals = options.handleSignals ?? true;
    // reads and changes of runs see what this process recorded before them
    const recorded = () =>
      this.transport.pending > 0 ? this.transport.sentSoon(FAILED_RUN_FLUSH_MS) : Promise.resolve();
    this.runs = new RunsClient(this.http, recorded);
    this.agents = new AgentsClient(this.http);
    this.scores = new ScoresClient(this.http, recorded);
    this.threads = new ThreadsClient(this.http, recorded);
    this.users = new UsersClient(this.http, recorded);
    instances.add(this);
    installProcessHooks();
    if (this.handlesSignals) installSignalHandlers();
  }

  /** The server this client talks to. */
  get url(): string {
    return this.http.options.baseUrl;
  }

  /** Events recorded but not yet acknowledged by the server. */
  get pending(): number {
    return this.transport.pending;
  }

  /**
   * Records `fn` as a run of `agentId`: start, end, output (the return value), error (what it
   * throws, rethrown to you) and duration. Recording never throws into your code.
   */
  async run<T>(
    agentId: string,
    fn: (run: RunContext) => T | Promise<T>,
    options: RunOptions = {},
  ): Promise<T> {
    const id = options.id ?? newId();
    const outer = currentRun();
    const parent = options.parentRunId ?? outer?.id;
    // a sub-agent's run belongs to the conversation and the user of the run it serves
    const inherits = outer !== undefined && parent === outer.id;
    const threadId = options.threadId ?? (inherits ? outer.threadId : undefined);
    const userId = options.userId ?? (inherits ? outer.userId : undefined);
    const run = new RunContext(id, agentId, options.input, this.transport);
    const start: RunFields = {
      id,
      agent_id: agentId,
      // on the run's clock, as its steps and end: none of them can then come before it
      started_at: run.now(),
      ...(options.trigger !== undefined ? { trigger: options.trigger } : {}),
      ...(options.source !== undefined ? { source: options.source } : {}),
      ...(options.triggeredBy !== undefined ? { triggered_by: options.triggeredBy } : {}),
      ...(threadId !== undefined ? { thread_id: threadId } : {}),
      ...(userId !== undefined ? { user_id: userId } : {}),
      ...(options.tags !== undefined ? { tags: options.tags } : {}),
      ...(options.metadata !== undefined ? { metadata: options.metadata } : {}),
      ...(options.input !== undefined ? { input: options.input } : {}),
      ...(parent !== undefined ? { parent_run_id: parent } : {}),
    };
    const recordable = this.checkStart(start);
    run.threadId = threadId;
    run.userId = userId;
    run.startedAt = start.started_at;
    // started while the process is being stopped: its code hears so at once
    if (this.interruption) run.abort(this.interruption);
    // a sub-agent stops with the run it serves: Stop pressed on that run reaches its code too
    const unfollow = inherits ? followStop(outer, run) : undefined;
    if (recordable)
      this.transport.push({ type: 'run.start', run: snapshotFields(start) }, runKey(id));
    // a run the server would refuse outright (a bad id) still runs, unrecorded
    else run.detached = true;
    const stopBeat = this.heartbeats.start(run, {
      intervalMs: this.heartbeatMs,
      missingIsGone: false,
    });
    const running = runCode(run, () => fn(run));
    this.open.set(run, running);
    const outcome = await running;
    this.open.delete(run);
    unfollow?.();
    stopBeat();
    // a detached run records nothing, its end neither
    if (!run.detached) endRun(this.transport, run, outcome);
    if (!outcome.ok) {
      // what it throws often ends the process (a script's top-level await), and an exiting
      // process cannot send: the run goes out before the error does
      if (!run.detached) await this.transport.sentSoon(FAILED_RUN_FLUSH_MS);
      throw outcome.error;
    }
    return outcome.output;
  }

  /**
   * Checks a run's start as the server will: an option it would refuse (a tag too long, a
   * NUL in a thread id, an unknown trigger) is left out and reported to `onError`, so the
   * run is still recorded; a bad run or agent id leaves nothing to record (`false`).
   */
  private checkStart(start: RunFields): boolean {
    const checked = RunFields.safeParse(start);
    if (checked.success) return true;
    const fields = new Set(checked.error.issues.map((i) => String(i.path[0] ?? '')));
    const problems = checked.error.issues
      .map((i) => `${i.path.join('.')}: ${i.message}`)
      .join('; ');
    if (fields.has('id') || fields.has('agent_id') || fields.has('')) {
      this.onError(new RunlogError(`run ${start.id} not recorded: ${problems}`));
      return false;
    }
    for (const field of fields) delete (start as unknown as Record<string, unknown>)[field];
    this.onError(
      new RunlogError(`run ${start.id}: left out ${[...fields].join(', ')} (${problems})`),
    );
    return true;
  }

  /**
   * Starts a worker that executes queued runs of the given agents.
   * @example runlog.worker({ agents: { 'bug-triager': async (run) => triage(run.input) }, concurrency: 4 })
   */
  worker(options: WorkerOptions): Worker {
    // its runs could not be recorded: each would run and then lapse to timed_out
    if (this.closing)
      throw new RunlogError('runlog was shut down: start workers before shutdown()');
    const worker = new Worker(
      this.http,
      this.transport,
      this.heartbeats,
      options,
      this.onError,
      (w) => this.workers.delete(w),
    );
    this.workers.add(worker);
    return worker;
  }

  /** Sends everything recorded so far; `false` when `timeoutMs` passed first. */
  flush(timeoutMs?: number): Promise<boolean> {
    return this.transport.flush(timeoutMs);
  }

  /**
   * Stops workers (draining them), flushes, and stops recording; resolves within `timeoutMs`
   * (default: the workers' drains, each up to its `drainTimeoutMs`, then 5 s). What is still unsent
   * then stays in the spool (or is reported lost without `spoolDir`).
   * @example await runlog.shutdown(2_000); // then process.exit()
   */
  shutdown(timeoutMs?: number): Promise<void> {
    this.closing ??= (async () => {
      let deadline = Date.now() + (timeoutMs ?? SHUTDOWN_FLUSH_MS + this.longestDrainMs());
      // by default the flush gets its 5 s after the workers' drains, however early they end
      const flushMs = timeoutMs === undefined ? SHUTDOWN_FLUSH_MS : undefined;
      // (the workers leave `this.workers` as they stop)
      const workers = [...this.workers];
      const stops = Promise.allSettled(workers.map((w) => w.stopBy(deadline, undefined, flushMs)));
      // a worker stopped earlier by hand may still be draining: it does not hold us past the deadline
      await settleBy(stops, deadline);
      if (flushMs !== undefined && workers.length > 0) {
        // what the workers' flushes had, the last flush gets too (at least a last short try)
        const flushedBy = workers.map((w) => w.flushDeadline ?? Date.now() + flushMs);
        deadline = Math.min(deadline, Math.max(Date.now() + 200, ...flushedBy));
      }
      // run() runs still open could not record their ends once this closes, and would stay
      // `running` until their lease lapsed: their code hears so, as on a signal
      if (this.open.size > 0 && !this.interruption)
        void this.interrupt('', 'runlog.shutdown() was called before the run ended');
      // run() runs a signal interrupted are ended before nothing more can be sent
      await settleBy(this.interrupting, deadline);
      this.endInterrupted();
      await this.transport.close(timeLeft(deadline));
      this.http.close();
      instances.delete(this);
    })();
    return this.closing;
  }

  /**
   * @internal The process was told to end (`signal`; or `shutdown()` was called, `message`
   * saying so) while `run()` runs still run: fires their `run.signal` (a `RunInterruptedError`),
   * lets code that listens end its run for up to `INTERRUPT_GRACE_MS`, then records the rest
   * as `cancelled`, interrupted, so none stays `running` until its lease lapses.
   */
  interrupt(
    signal: string,
    message = `the process received ${signal} before the run ended`,
  ): Promise<void> {
    this.interruption ??= new RunInterruptedError(message);
    const reason = this.interruption;
    for (const run of this.open.keys()) run.abort(reason);
    this.interrupting = settleBy(
      Promise.allSettled(this.open.values()),
      Date.now() + INTERRUPT_GRACE_MS,
    ).then(() => this.endInterrupted());
    return this.interrupting;
  }

  /** The reason `interrupt` gave the open runs, once it has; a run() started after gets it too. */
  private interruption: RunInterruptedError | undefined;
  /** `interrupt`'s grace, until the open runs' ends are recorded. */
  private interrupting: Promise<void> = Promise.resolve();

  /** Records the end of every `run()` run still open, interrupted; nothing of it after that. */
  private endInterrupted(): void {
    const reason = this.interruption;
    if (!reason) return;
    for (const run of this.open.keys()) {
      if (run.detached) continue;
      // its signal says why it ended (a run started during the grace had not heard yet)
      run.abort(reason);
      endRun(this.transport, run, { ok: false, error: reason });
      // the process ends: what the code still does is not recorded
      run.detached = true;
    }
  }

  /**
   * @internal A second signal during `shutdown()`: stops waiting for the workers' running
   * handlers, gives their runs back to the queue and flushes, all within `timeoutMs`; `run()`
   * runs the first signal interrupted are ended now, not after their grace.
   */
  async hurry(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    this.endInterrupted();
    void this.shutdown();
    await Promise.allSettled([...this.workers].map((w) => w.hurry(deadline)));
    await this.transport.flush(timeLeft(deadline));
  }

  private longestDrainMs(): number {
    return Math.max(0, ...[...this.workers].map((w) => w.drainTimeoutMs));
  }

  /** @internal The process is ending: spools what is buffered, or reports what is lost. */
  onExit(): void {
    this.transport.onExit();
  }

  /** @internal */
  beforeExit(): void {
    if (this.transport.pending > 0) {
      this.transport.beforeExit();
    }
  }
}
