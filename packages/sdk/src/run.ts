import { AsyncLocalStorage } from 'node:async_hooks';
import { setMaxListeners } from 'node:events';
import {
  newId,
  type IngestEvent,
  type Run,
  type RunError,
  type RunFields,
  type ScoreFields,
  type StepFields,
} from '@runlog/core';
import { RunCancelledError, RunInterruptedError, RunlogError } from './errors.js';
import { errorFields, snapshot, snapshotFields } from './snapshot.js';
import type { Transport } from './transport.js';

/** What the agent's code may add to a step while it runs. */
export interface StepUpdate {
  output?: unknown;
  model?: string | undefined;
  provider?: string | undefined;
  input_tokens?: number | undefined;
  output_tokens?: number | undefined;
  cached_input_tokens?: number | undefined;
  reasoning_tokens?: number | undefined;
  /** Overrides the cost the server computes from tokens and model. */
  cost_usd?: number | undefined;
  /**
   * When a streamed answer's first token came (epoch ms): the step's time to first token.
   * `step.firstToken()` sets it to now.
   */
  first_token_at?: number | undefined;
  metadata?: Record<string, unknown> | undefined;
}

export interface StepOptions extends Omit<StepUpdate, 'output'> {
  input?: unknown;
  /** Give an id to make the step's recording idempotent across retries of your code. */
  id?: string | undefined;
}

/** An LLM call: what was asked, of which model, and (for a finished call) what came back. */
export interface LlmCall extends StepUpdate {
  /** The step's name; the model when omitted. */
  name?: string | undefined;
  model: string;
  provider?: string | undefined;
  /** The prompt (chat messages or text); recorded as the step's input. */
  messages?: unknown;
  input?: unknown;
  /** When recording a call that already happened: its times (epoch ms). */
  started_at?: number | undefined;
  ended_at?: number | undefined;
}

/** A score's value: a number, `true`/`false`, or a label (1-200 characters). */
export type ScoreValue = ScoreFields['value'];

/** What a score may carry besides its name and value. */
export interface ScoreOptions {
  /** Why: the judge's reasoning, the user's words. */
  comment?: string | undefined;
  /** The step it scores (`step.score` sets it); without, the run. */
  step_id?: string | undefined;
  /**
   * Give an id to make the score idempotent: the same id on the same run replaces that
   * score (a verdict revised, a thumbs up turned down). Default: a new UUIDv7.
   */
  id?: string | undefined;
  /** Who gave it: an evaluator's name, `user`, `reviewer`... Default `sdk`. */
  source?: string | undefined;
  metadata?: Record<string, unknown> | undefined;
}

/** The step being recorded, handed to the step's function. */
export class StepHandle {
  /** @internal */
  fields: StepUpdate = {};
  /** @internal */
  outputSet = false;
  /** @internal Its function has returned or thrown: its end is on its way. */
  ended = false;
  private firstTokenNoted = false;
  constructor(
    readonly id: string,
    readonly runId: string,
    private readonly run: RunContext,
  ) {}

  /**
   * Scores this step, as `run.score(name, value, { step_id: step.id })` does; returns the
   * score's id.
   * @example await run.tool('search', { q }, (a, step) => { const hits = search(a.q); step.score('found', hits.length > 0); return hits; })
   */
  score(name: string, value: ScoreValue, options: Omit<ScoreOptions, 'step_id'> = {}): string {
    return this.run.score(name, value, { ...options, step_id: this.id });
  }

  /**
   * Notes that the first token (chunk) of a streamed answer came now: the step's time to
   * first token. Only the first call counts, so it can sit in the loop over the stream.
   * @example for await (const chunk of stream) { step.firstToken(); text += chunk.delta; }
   */
  firstToken(): this {
    if (this.firstTokenNoted || this.fields.first_token_at !== undefined) return this;
    this.firstTokenNoted = true;
    // a stream read on past its function's return: its end went out already
    if (this.ended) this.reportLate('step.firstToken()');
    else this.fields.first_token_at = this.run.now();
    return this;
  }

  private reportLate(call: string): void {
    this.run.report(
      new RunlogError(
        `step ${this.id} of run ${this.runId}: ${call} after the step's function returned is not recorded`,
      ),
    );
  }

  /**
   * Adds to the step: its output (otherwise the function's return value), tokens, cost, metadata.
   * @example step.set({ input_tokens: 812, output_tokens: 95 })
   */
  set(update: StepUpdate): this {
    if (this.ended) {
      // its end went out with what it had: what a callback sets later would vanish unseen
      this.reportLate('step.set()');
      return this;
    }
    // a field given as undefined is not given (a streamed event without usage): it keeps
    // what an earlier set() gave it, and the return value stays the output
    update = Object.fromEntries(
      Object.entries(update).filter(([, value]) => value !== undefined),
    ) as StepUpdate;
    if ('output' in update) this.outputSet = true;
    if (update.metadata && this.fields.metadata)
      update = { ...update, metadata: { ...this.fields.metadata, ...update.metadata } };
    Object.assign(this.fields, update);
    return this;
  }
}

interface Frame {
  run: RunContext;
  stepId: string | null;
}

const storage = new AsyncLocalStorage<Frame>();

/**
 * The run the calling code runs in (inside `runlog.run` or a worker's handler), if any. Not
 * one whose code has finished: a timer or a listener its code set up keeps its async context,
 * and what that calls later (another run, a job) is not part of it.
 */
export function currentRun(): RunContext | undefined {
  const run = storage.getStore()?.run;
  return run && !run.finished ? run : undefined;
}

/** @internal Runs `fn` with `run` as the current run. */
export function withRun<T>(run: RunContext, fn: () => T): T {
  return storage.run({ run, stepId: null }, fn);
}

/**
 * An error as the API stores it: message, type and stack. Never throws, whatever was thrown
 * (a circular object, a BigInt, an Error whose getters throw): the run's recording must not
 * replace the agent's own error.
 */
export function toRunError(err: unknown): RunError {
  try {
    if (err instanceof Error) {
      const type = String(err.name);
      let stack: unknown = err.stack;
      try {
        stack = withFields(err, stack);
      } catch {
        // a field whose getter throws: the rest is still worth recording
      }
      try {
        stack = withCauses(err, stack, [err]);
      } catch {
        // a cause whose getters throw: the error's own stack is still worth recording
      }
      return {
        message: String(err.message) || type,
        type,
        ...(typeof stack === 'string' && stack ? { stack } : {}),
      };
    }
    if (typeof err === 'object' && err !== null) {
      return { message: JSON.stringify(snapshot(err)) ?? 'unserializable thrown value' };
    }
    return { message: String(err) };
  } catch {
    return { message: 'unserializable thrown value' };
  }
}

/** `stack` followed by the error's `errorFields`, as Node prints them: `{ code: 'ECONNRESET' }`. */
function withFields(err: Error, stack: unknown): string | undefined {
  const fields = errorFields(err).map(
    ([key, value]) =>
      `${key}: ${typeof value === 'string' ? JSON.stringify(value) : String(value)}`,
  );
  if (fields.length === 0) return typeof stack === 'string' ? stack : undefined;
  const text =
    typeof stack === 'string' && stack ? stack : `${String(err.name)}: ${String(err.message)}`;
  return `${text}\n{ ${fields.join(', ')} }`;
}

/** How deep an error's stack follows its causes (and an `AggregateError`'s errors). */
const MAX_CAUSE_DEPTH = 5;
/** How many of an `AggregateError`'s errors its stack lists. */
const MAX_AGGREGATED = 10;

/**
 * `stack` with what the error wraps appended, as Node prints them: its `cause` (`fetch failed`
 * says why only there) and an `AggregateError`'s `errors`, which the stack leaves out.
 */
function withCauses(err: Error, stack: unknown, seen: unknown[]): string | undefined {
  const wrapped: [string, unknown][] = [];
  if (err instanceof AggregateError && Array.isArray(err.errors))
    err.errors
      .slice(0, MAX_AGGREGATED)
      .forEach((e: unknown, i) => wrapped.push([`[errors[${i}]]:`, e]));
  if ('cause' in err && err.cause !== undefined) wrapped.push(['[cause]:', err.cause]);
  if (wrapped.length === 0) return typeof stack === 'string' ? stack : undefined;
  let text =
    typeof stack === 'string' && stack ? stack : `${String(err.name)}: ${String(err.message)}`;
  for (const [label, value] of wrapped) {
    let described: string;
    if (seen.includes(value)) described = '[Circular]';
    else if (seen.length > MAX_CAUSE_DEPTH) described = '[...]';
    else if (value instanceof Error)
      described =
        withCauses(value, withFields(value, value.stack), [...seen, value]) ??
        `${String(value.name)}: ${String(value.message)}`;
    else described = JSON.stringify(snapshot(value)) ?? String(value);
    text += `\n${label} ${described}`;
  }
  return text;
}

function stepKey(runId: string, stepId: string): string {
  return `s\u0000${runId}\u0000${stepId}`;
}

/** @internal The transport key of a run's start, so its end can merge into it while unsent. */
export function runKey(runId: string): string {
  return `r\u0000${runId}`;
}

/** @internal How a run's code finished: what it returned, or what it threw. */
export type RunOutcome<T = unknown> = { ok: true; output: T } | { ok: false; error: unknown };

/** @internal Runs `fn` as the code of `run` (the current run inside it) and says how it finished. */
export async function runCode<T>(
  run: RunContext,
  fn: () => T | Promise<T>,
): Promise<RunOutcome<T>> {
  try {
    return { ok: true, output: await withRun(run, fn) };
  } catch (error) {
    return { ok: false, error };
  } finally {
    run.finished = true;
  }
}

/**
 * The error of a run whose code stopped because Stop was pressed. What the code threw then
 * (an AbortError from `fetch`, the signal's reason...) is the consequence, not the cause:
 * the run records the Stop, with the `Cancelled` type the server uses for its own cancels.
 */
const CONFIRMED_CANCEL: RunError = {
  message: 'stopped from Runlog; the agent stopped',
  type: 'Cancelled',
};

/**
 * @internal Records the end of `run` (recorded or claimed alike): `cancelled` once Stop fired
 * its signal (keeping any output), else `succeeded` with the output or `failed` with the error.
 */
export function endRun(transport: Transport, run: RunContext, outcome: RunOutcome): void {
  const reason: unknown = run.signal.reason;
  const fields: RunFields = { id: run.id, ended_at: run.now() };
  if (outcome.ok && outcome.output !== undefined) fields.output = outcome.output;
  if (reason instanceof RunInterruptedError) {
    fields.status = 'cancelled';
    fields.error = { message: reason.message, type: 'Interrupted' };
  } else if (reason instanceof RunCancelledError) {
    fields.status = 'cancelled';
    fields.error = { ...CONFIRMED_CANCEL };
  } else if (outcome.ok) {
    fields.status = 'succeeded';
  } else {
    fields.status = 'failed';
    fields.error = toRunError(outcome.error);
  }
  transport.pushEnd(runKey(run.id), { type: 'run.end', run: snapshotFields(fields) });
  run.endRecorded = true;
  // whoever waits on a run (the dashboard, a caller polling its status) waits on its end
  transport.hurry();
}

/**
 * An AbortController whose signal takes any number of listeners without Node's leak warning:
 * a run's code hands `run.signal` to each of its parallel calls (`fetch`, `runs.wait` on
 * sub-runs fanned out), and the 11th printed "MaxListenersExceededWarning".
 */
function unboundedController(): AbortController {
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  return controller;
}

/**
 * The `run` object handed to your function: record steps, react to Stop.
 * Steps nest by themselves: a step started inside another step's function is its child.
 */
export class RunContext {
  private seq = 0;
  private readonly controller = unboundedController();
  /** What to add to this host's clock to read the server's (0 but for a claimed run). */
  private readonly clockOffset: number = 0;

  /** @internal */
  constructor(
    /** The run's id. */
    readonly id: string,
    readonly agentId: string,
    /** The run's input (for a queued run, what it was queued with). */
    readonly input: unknown,
    private readonly transport: Transport,
    /** For a run claimed by a worker: the run as the server handed it out. */
    readonly info: Run | undefined = undefined,
  ) {
    this.threadId = info?.thread_id ?? undefined;
    this.userId = info?.user_id ?? undefined;
    // a claimed run started on the server's clock: its times go on from there, measured on
    // this one, or a host whose clock is behind the server's ends every run before its start
    // (stored as lasting 0 ms) and one ahead lengthens each by the difference
    if (info?.started_at) this.clockOffset = Date.parse(info.started_at) - Date.now();
    this.startWall = Date.now() + this.clockOffset;
    this.startMono = performance.now();
  }

  /** Where the run's clock starts: the wall clock then, and the monotonic clock then. */
  private readonly startWall: number;
  private readonly startMono: number;

  /**
   * @internal Now, as the run's times are recorded: for a claimed run, on the server's clock.
   * Measured from the run's start on the monotonic clock, as OpenTelemetry's SDKs time spans:
   * a wall clock stepped back meanwhile (NTP, a VM resumed) would end a step, or the run,
   * before it started, and the server refuses such an event (the run lost, left running).
   */
  now(): number {
    return Math.round(this.startWall + (performance.now() - this.startMono));
  }

  /**
   * @internal The conversation and the user this run belongs to, passed on to the runs
   * started inside it (sub-agents), which otherwise would not show in the thread's runs.
   */
  threadId: string | undefined;
  /** @internal */
  userId: string | undefined;

  /**
   * @internal Its code has returned or thrown: what still runs in its async context (a timer,
   * a listener set up inside it) runs outside it, see `currentRun`.
   */
  finished = false;

  /** @internal Beats this run at once; set while its heartbeats run. */
  beat: (() => Promise<void>) | undefined;

  /**
   * Renews the run's lease now and learns whether Stop was pressed: `run.signal` has fired by
   * the time this resolves if it was. Runs open for a long step beat by themselves; this is
   * for a handler about to block, or checking for Stop between units of work. Beats asked in
   * the same turn of the event loop share one request. Never throws: problems reach `onError`.
   * @example await run.heartbeat(); if (run.signal.aborted) return partial;
   */
  heartbeat(): Promise<void> {
    return this.beat?.() ?? Promise.resolve();
  }

  /** Fires when someone presses Stop (or the run ended on the server); pass it to fetch, LLM clients... */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** @internal */
  abort(reason: Error): void {
    if (!this.controller.signal.aborted) this.controller.abort(reason);
  }

  /**
   * @internal The run is no longer this code's (given back to the queue, or deleted): what
   * the code still records is dropped, so it never lands in the next attempt or revives the run.
   */
  detached = false;

  /**
   * @internal The run is no longer this code's: its signal fires with `reason`, and what the
   * code still records is dropped (`detached`).
   */
  detach(reason: Error): void {
    this.abort(reason);
    this.detached = true;
  }

  /**
   * @internal When `runlog.run()` started it (epoch ms, as its start says): a run on the server
   * with that id but another start is an earlier run of the same id, not this one.
   */
  startedAt: number | undefined;

  /** @internal Tells `onError` of a problem with what the code recorded. */
  report(err: Error): void {
    if (!this.detached) this.transport.report(err);
  }

  /**
   * @internal Its end is recorded: a step its code still records (a kept `run` object, a
   * timer) is dropped and reported, not added to a run that ended (its counts, its cost).
   * Scores go on: a run is often scored after it ends.
   */
  endRecorded = false;
  /** The steps reported as recorded after the run's end, each once. */
  private lateSteps: Set<string> | undefined;

  private push(event: IngestEvent, key?: string): void {
    if (!this.detached && !this.droppedAfterEnd(event)) this.transport.push(event, key);
  }

  private pushEnd(key: string, event: IngestEvent): void {
    if (!this.detached && !this.droppedAfterEnd(event)) this.transport.pushEnd(key, event);
  }

  /** Whether `event` is a step recorded after the run's end: reported (once a step), dropped. */
  private droppedAfterEnd(event: IngestEvent): boolean {
    if (!this.endRecorded || !('step' in event)) return false;
    this.lateSteps ??= new Set();
    if (!this.lateSteps.has(event.step.id)) {
      this.lateSteps.add(event.step.id);
      const name = event.step.name ? ` (${event.step.name})` : '';
      this.report(
        new RunlogError(
          `step ${event.step.id}${name} of run ${this.id}: recorded after the run ended, not recorded`,
        ),
      );
    }
    return true;
  }

  /**
   * Records `fn` as a step of this run: its start, end, output (the return value) or error.
   * @example const hits = await run.step('retrieval', 'search-docs', () => search(q), { input: { q } })
   */
  async step<T>(
    type: string,
    name: string,
    fn: (step: StepHandle) => T | Promise<T>,
    options: StepOptions = {},
  ): Promise<T> {
    const frame = storage.getStore();
    const parent = frame && frame.run === this ? frame.stepId : null;
    const { input, id = newId(), ...rest } = options;
    const handle = new StepHandle(id, this.id, this);
    const key = stepKey(this.id, id);
    const start: StepFields = {
      ...rest,
      id,
      run_id: this.id,
      parent_step_id: parent,
      seq: this.seq++,
      type,
      name,
      started_at: this.now(),
    };
    if (input !== undefined) start.input = input;
    this.push({ type: 'step.start', step: snapshotFields(start) }, key);
    let result: T;
    try {
      result = await storage.run({ run: this, stepId: id }, () => fn(handle));
    } catch (err) {
      handle.ended = true;
      this.pushEnd(key, {
        type: 'step.end',
        step: snapshotFields({
          ...handle.fields,
          id,
          run_id: this.id,
          status: 'failed',
          error: toRunError(err),
          ended_at: this.now(),
        }),
      });
      throw err;
    }
    handle.ended = true;
    const end: StepFields = {
      ...handle.fields,
      id,
      run_id: this.id,
      status: 'succeeded',
      ended_at: this.now(),
    };
    if (!handle.outputSet && result !== undefined) end.output = result;
    this.pushEnd(key, { type: 'step.end', step: snapshotFields(end) });
    return result;
  }

  /**
   * Records an LLM call. With `fn`, times and records the call (set tokens with `step.set`);
   * without, records a call that already happened from the fields given.
   * @example
   * const reply = await run.llm({ model: 'gpt-4o-mini', messages }, async (step) => {
   *   const r = await client.chat(messages);
   *   step.set({ input_tokens: r.usage.prompt_tokens, output_tokens: r.usage.completion_tokens });
   *   return r.text;
   * });
   */
  llm(call: LlmCall): Promise<void>;
  llm<T>(call: LlmCall, fn: (step: StepHandle) => T | Promise<T>): Promise<T>;
  async llm<T>(call: LlmCall, fn?: (step: StepHandle) => T | Promise<T>): Promise<T | void> {
    const { name, messages, input, started_at, ended_at, output, ...rest } = call;
    const options: StepOptions = { ...rest, input: input ?? messages };
    if (fn) return this.step('llm', name ?? call.model, fn, options);
    const frame = storage.getStore();
    const id = newId();
    const now = this.now();
    this.push({
      type: 'step.end',
      step: snapshotFields({
        ...rest,
        id,
        run_id: this.id,
        parent_step_id: frame && frame.run === this ? frame.stepId : null,
        seq: this.seq++,
        type: 'llm',
        name: name ?? call.model,
        status: 'succeeded',
        started_at: started_at ?? now,
        ended_at: ended_at ?? now,
        ...(options.input !== undefined ? { input: options.input } : {}),
        ...(output !== undefined ? { output } : {}),
      }),
    });
  }

  /**
   * Records a tool call: `args` as input, the result as output.
   * @example const issue = await run.tool('github.get_issue', { number: 42 }, (a) => gh.issue(a.number))
   */
  tool<A, T>(name: string, args: A, fn: (args: A, step: StepHandle) => T | Promise<T>): Promise<T> {
    return this.step('tool', name, (step) => fn(args, step), { input: args });
  }

  /**
   * Scores this run (or, with `step_id`, one of its steps): an evaluator's verdict, a check
   * passed or not, a label. It goes with the run's other events, so it costs the agent
   * nothing and never throws: a bad name or value is reported to `onError` and the score
   * dropped. Returns the score's id (`runlog.scores.create(runId, { id, ... })` replaces it).
   * @example run.score('relevance', 0.92, { source: 'llm-judge', comment: 'on topic' })
   */
  score(name: string, value: ScoreValue, options: ScoreOptions = {}): string {
    const id = options.id ?? newId();
    const score: ScoreFields = {
      id,
      run_id: this.id,
      step_id: options.step_id ?? null,
      name,
      value,
      comment: options.comment ?? null,
      source: options.source ?? 'sdk',
      ...(options.metadata !== undefined ? { metadata: options.metadata } : {}),
    };
    this.push({ type: 'score', score: snapshotFields(score) });
    return id;
  }

  /**
   * Adds to the run while it runs: metadata, tags, model, output so far.
   * @example run.update({ metadata: { pr_title: 'Fix login' } })
   */
  update(fields: Omit<RunFields, 'id' | 'agent_id' | 'status'>): void {
    this.push({ type: 'run.update', run: snapshotFields({ ...fields, id: this.id }) });
  }
}
