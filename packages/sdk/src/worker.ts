import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import {
  ClaimBody,
  type ClaimResponse,
  type ReleaseBody,
  type Run,
  type WorkerList,
} from '@runlog/core';
import { settleBy, timeLeft } from './deadline.js';
import { RunlogError, RunlogApiError, RunlogConnectionError } from './errors.js';
import { backoffMs, type HttpClient } from './http.js';
import type { Heartbeats } from './heartbeat.js';
import { wholeNumberProblem } from './options.js';
import { RunContext, endRun, runCode, type RunOutcome } from './run.js';
import type { Transport } from './transport.js';

/** Executes one queued run of an agent; its return value is the run's output. */
export type AgentHandler = (run: RunContext) => unknown;

export interface WorkerOptions {
  /** The agents this worker executes, by id. */
  agents: Record<string, AgentHandler>;
  /** Runs executed at the same time (default 1). */
  concurrency?: number | undefined;
  /** How long a claimed run stays ours without a heartbeat (default 30 s). */
  leaseMs?: number | undefined;
  /** How often the worker's runs heartbeat (and learn about Stop): a third of the lease, at most 2 s. */
  heartbeatIntervalMs?: number | undefined;
  /** How long one claim waits on the server for work (default 20 s; claims that find nothing are at least 250 ms apart). */
  pollWaitMs?: number | undefined;
  /** On stop, how long running handlers may finish before their runs are released (default 30 s). */
  drainTimeoutMs?: number | undefined;
  /**
   * How long a handler may go on once its run's signal fired (Stop, `timeout_ms`, a limit)
   * before its slot takes the next run (default 30 s, Stop's grace): a handler that ignores
   * the signal and never returns would otherwise hold its slot for good. `onError` is told.
   */
  abandonAfterMs?: number | undefined;
  workerId?: string | undefined;
}

/** Least time between two claims that found nothing, whatever `pollWaitMs` says. */
const MIN_EMPTY_POLL_MS = 250;

/** Most runs one claim takes (the server's bound). */
const MAX_CLAIM = 100;

/**
 * Checks a worker's options as the server will check its claims (`ClaimBody`), and the
 * options only the worker uses: a worker the server would refuse every claim of fails here,
 * at once, naming the option, instead of leaving its runs queued.
 */
function checkOptions(
  options: WorkerOptions,
  resolved: { id: string; leaseMs: number; pollWaitMs: number },
): void {
  const problems: string[] = [];
  const claim = ClaimBody.safeParse({
    agents: Object.keys(options.agents),
    wait_ms: resolved.pollWaitMs,
    lease_ms: resolved.leaseMs,
    worker_id: resolved.id,
  });
  const names: Record<string, string> = {
    agents: 'agents',
    wait_ms: 'pollWaitMs',
    lease_ms: 'leaseMs',
    worker_id: 'workerId',
  };
  if (!claim.success) {
    for (const issue of claim.error.issues) {
      const [field, index] = issue.path;
      const name = names[String(field)] ?? String(field);
      problems.push(
        field === 'agents' && typeof index === 'number'
          ? `agents: ${JSON.stringify(Object.keys(options.agents)[index])} ${issue.message}`
          : `${name}: ${issue.message}`,
      );
    }
  }
  for (const [name, min] of [
    ['concurrency', 1],
    ['heartbeatIntervalMs', 1],
    ['drainTimeoutMs', 0],
    ['abandonAfterMs', 0],
  ] as const) {
    const problem = wholeNumberProblem(name, options[name], min);
    if (problem) problems.push(problem);
  }
  if (problems.length > 0) throw new RunlogError(`invalid worker options: ${problems.join('; ')}`);
}

/**
 * `running`'s outcome, or, once `abandonAfterMs` passed since the run's signal fired with the
 * handler still running, an error saying so: the slot goes on without it (a promise cannot
 * be ended from outside; what the handler does later is not awaited, and not recorded).
 */
function untilAbandoned(
  run: RunContext,
  running: Promise<RunOutcome>,
  abandonAfterMs: number,
  onError: (err: Error) => void,
): Promise<RunOutcome & { abandoned?: true }> {
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    const abandon = () => {
      timer = setTimeout(() => {
        const reason = run.signal.reason instanceof Error ? run.signal.reason.message : 'stopped';
        const error = new RunlogError(
          `run ${run.id}: its handler did not return within ${abandonAfterMs} ms of its signal ` +
            `(${reason}); its slot takes the next run, and the handler is no longer awaited`,
        );
        onError(error);
        resolve({ ok: false, error, abandoned: true });
      }, abandonAfterMs);
      // a stopped worker's process is not kept alive for a handler it gave up on
      timer.unref();
    };
    if (run.signal.aborted) abandon();
    else run.signal.addEventListener('abort', abandon, { once: true });
    void running.then((outcome) => {
      clearTimeout(timer);
      run.signal.removeEventListener('abort', abandon);
      resolve(outcome);
    });
  });
}

/** What `stop()` gives releasing and the final flush after the drain. */
const STOP_FLUSH_MS = 10_000;

/**
 * How long `stop()` lets a claim under way answer before hanging up on it: a run the server
 * claimed just then is already on its way back, and hanging up would lose it (held by this
 * worker until its lease lapsed). A claim that comes back while stopping gives its runs back.
 */
const CLAIM_ANSWER_GRACE_MS = 200;

interface Held {
  run: RunContext;
  /** The request giving it back to the queue, once sent. */
  released: Promise<void> | undefined;
  done: Promise<void>;
}

/**
 * Executes queued runs: long-polls `POST /workers/claim`, runs the agent's handler with a
 * `run` object, renews the lease, fires `run.signal` on Stop and records the end.
 * Create it with `runlog.worker(...)`; it starts at once.
 */
export class Worker {
  readonly id: string;
  /** Resolves once `stop()` has finished. */
  readonly done: Promise<void>;
  private stopping = false;
  /** Ends a claim's long poll. */
  private readonly poll = new AbortController();
  /** Ends a pause between failed claims. */
  private readonly pause = new AbortController();
  private readonly held = new Map<string, Held>();
  /**
   * Runs whose handler finished and whose end may not be on the server yet: still `running`
   * there under this worker, but not lost.
   */
  private readonly ending = new Set<string>();
  private readonly slots: Promise<void>[] = [];
  private markDone: () => void = () => {};
  private cutDrain: () => void = () => {};
  /** Resolves when `hurry()` ends the drain early. */
  private readonly drainCut = new Promise<void>((resolve) => (this.cutDrain = resolve));
  private stopPromise: Promise<void> | undefined;
  private slotFreed: (() => void) | undefined;
  private readonly leaseMs: number;
  private readonly heartbeatMs: number;
  private readonly pollWaitMs: number;
  /** @internal How long `stop()` lets running handlers finish. */
  readonly drainTimeoutMs: number;
  private readonly abandonAfterMs: number;
  /**
   * Holds the process while the worker runs, as a listening server does: between claims, or
   * with every slot busy on a handler that waits for its signal, nothing else may (the
   * lease's beats are unref'd), and the process would end with its runs to lapse.
   */
  private readonly keepAlive: NodeJS.Timeout;

  /** @internal */
  constructor(
    private readonly http: HttpClient,
    private readonly transport: Transport,
    private readonly heartbeats: Heartbeats,
    private readonly options: WorkerOptions,
    private readonly onError: (err: Error) => void,
    private readonly onStopped: (w: Worker) => void,
  ) {
    this.id = options.workerId ?? `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
    this.leaseMs = options.leaseMs ?? 30_000;
    this.heartbeatMs =
      options.heartbeatIntervalMs ?? Math.max(100, Math.min(2_000, Math.floor(this.leaseMs / 3)));
    this.pollWaitMs = options.pollWaitMs ?? 20_000;
    this.drainTimeoutMs = options.drainTimeoutMs ?? 30_000;
    this.abandonAfterMs = options.abandonAfterMs ?? 30_000;
    this.done = new Promise((resolve) => (this.markDone = resolve));
    if (!options.agents || Object.keys(options.agents).length === 0)
      throw new RunlogError('worker needs at least one agent handler');
    checkOptions(options, { id: this.id, leaseMs: this.leaseMs, pollWaitMs: this.pollWaitMs });
    // a lease that lapses before the next beat: every run ends timed_out unless its handler
    // beats by hand (run.heartbeat()), so said, not refused
    if (this.heartbeatMs >= this.leaseMs)
      this.onError(
        new RunlogError(
          `worker ${this.id}: heartbeatIntervalMs (${this.heartbeatMs}) is not less than leaseMs (${this.leaseMs}): each run's lease lapses before its next heartbeat, and the run ends timed_out unless its handler calls run.heartbeat() in time; a third of leaseMs leaves room for a slow beat`,
        ),
      );
    this.keepAlive = setInterval(() => {}, 1 << 30);
    this.slots.push(this.loop(options.concurrency ?? 1));
  }

  /** Runs being executed now. */
  get active(): number {
    return this.held.size;
  }

  /**
   * Stops claiming, lets running handlers finish for up to `drainTimeoutMs`, then releases the
   * rest back to the queue (their signals fire) and flushes what was recorded (up to 10 s).
   */
  stop(options: { drainTimeoutMs?: number | undefined } = {}): Promise<void> {
    const drainMs = options.drainTimeoutMs ?? this.drainTimeoutMs;
    return this.stopBy(Date.now() + drainMs + STOP_FLUSH_MS, drainMs);
  }

  /**
   * @internal `stop()` that is over by `deadline` (epoch ms): the drain ends by then at the
   * latest, and releasing and flushing get what is left. The first stop decides.
   */
  stopBy(deadline: number, drainMs = this.drainTimeoutMs, flushMs = STOP_FLUSH_MS): Promise<void> {
    this.stopPromise ??= this.shutdown(Math.min(Date.now() + drainMs, deadline), deadline, flushMs);
    return this.stopPromise;
  }

  /**
   * @internal When this worker's stop gives up releasing and flushing: `flushMs` after its
   * drain ended (undefined until then).
   */
  flushDeadline: number | undefined;

  /**
   * @internal Stopping, with no more patience (a second Ctrl-C): ends the drain now and gives
   * the runs still running back to the queue, waiting for that until `deadline` at most.
   */
  hurry(deadline: number): Promise<void> {
    void this.stopBy(deadline);
    this.cutDrain();
    return settleBy(this.releaseHeld(), deadline);
  }

  private async shutdown(drainUntil: number, until: number, flushMs: number): Promise<void> {
    this.stopping = true;
    // ends a backoff pause at once, and a long poll once an answer on its way had its chance
    this.pause.abort();
    setTimeout(() => this.poll.abort(), CLAIM_ANSWER_GRACE_MS).unref();
    this.slotFreed?.();
    const drained = Promise.all([...this.held.values()].map((h) => h.done));
    await settleBy(Promise.race([drained, this.drainCut]), drainUntil);
    // releasing and flushing get `flushMs` from the drain's end: a drain over early (no
    // handler running) leaves them none of its unused time, which a server that cannot be
    // reached would hold the process's exit for (36 s on SIGTERM, past docker stop's 10 s)
    const deadline = Math.min(until, Date.now() + flushMs);
    this.flushDeadline = deadline;
    await settleBy(this.releaseHeld(), deadline);
    await Promise.allSettled(this.slots);
    const flushed = await this.transport.flush(timeLeft(deadline));
    clearInterval(this.keepAlive);
    // off the server's list of workers at once, rather than when it has not asked for 90 s
    // (the path is built inside the promise: an id no URL can hold must not fail the stop).
    // With every end delivered and the held runs given back, a run the server still has
    // under this id is one claimed as the long poll was hung up on (its answer never read):
    // back to the queue, rather than lapsing to timed_out unexecuted.
    const release = flushed ? '?release=true' : '';
    await settleBy(
      Promise.resolve()
        .then(() =>
          this.http.request(
            'DELETE',
            `/api/v1/workers/${encodeURIComponent(this.id)}${release}`,
            undefined,
            { idempotent: true, timeoutMs: 2_000 },
          ),
        )
        .catch(() => {}),
      deadline,
    );
    this.onStopped(this);
    this.markDone();
  }

  /**
   * Gives the runs still running back to the queue (once each; a second call waits for the
   * first's requests too); their signals fire and what their code records from then on is
   * dropped: it belongs to no attempt.
   */
  private releaseHeld(): Promise<unknown> {
    return Promise.all(
      [...this.held.entries()].map(([id, h]) => {
        h.released ??= (async () => {
          h.run.detach(new RunlogError('worker shutting down; run released back to the queue'));
          await this.giveBack([id]);
        })();
        return h.released;
      }),
    );
  }

  /** Sends runs this worker holds back to the queue (a shutdown's, or claimed while stopping). */
  private async giveBack(ids: string[]): Promise<void> {
    const body: ReleaseBody = { worker_id: this.id };
    await Promise.all(
      ids.map((id) =>
        this.http
          .request('POST', `/api/v1/runs/${encodeURIComponent(id)}/release`, body)
          .catch((err: unknown) => this.onError(err as Error)),
      ),
    );
  }

  /**
   * Gives back the runs the server holds under this worker's id that it does not execute: a
   * claim the server answered whose answer was lost on the way (a connection reset, a
   * timeout). They go back to the queue, and a claim takes them again, instead of lapsing to
   * `timed_out` unexecuted once their lease runs out.
   */
  private async giveBackLost(): Promise<void> {
    let list: WorkerList | undefined;
    try {
      list = (await this.http.request<WorkerList>('GET', '/api/v1/workers')).body;
    } catch (err) {
      this.onError(err as Error);
      return;
    }
    const self = list?.workers.find((w) => w.id === this.id);
    const lost = (self?.running_runs ?? [])
      .map((r) => r.id)
      .filter((id) => !this.held.has(id) && !this.ending.has(id));
    if (lost.length === 0) return;
    this.onError(
      new RunlogError(
        `worker ${this.id}: the answer to a claim was lost; giving back runs ${lost.join(', ')} to the queue`,
      ),
    );
    await this.giveBack(lost);
  }

  /** One claimer for all slots: it asks for as many runs as there are free slots. */
  private async loop(concurrency: number): Promise<void> {
    let failures = 0;
    /** A claim failed after it may have reached the server: its runs may be held unknown. */
    let maybeLost = false;
    while (!this.stopping) {
      if (this.held.size >= concurrency) {
        await new Promise<void>((resolve) => (this.slotFreed = resolve));
        continue;
      }
      let claimed: Run[] = [];
      const claim: ClaimBody = {
        agents: Object.keys(this.options.agents),
        wait_ms: this.pollWaitMs,
        lease_ms: this.leaseMs,
        worker_id: this.id,
        max: Math.min(MAX_CLAIM, concurrency - this.held.size),
      };
      try {
        const res = await this.http.request<ClaimResponse>('POST', '/api/v1/workers/claim', claim, {
          signal: this.poll.signal,
          timeoutMs: this.pollWaitMs + 15_000,
        });
        failures = 0;
        // a server from before `max` answers the one run it claimed itself
        if (res.status === 200 && res.body)
          claimed = 'runs' in res.body ? res.body.runs : [res.body];
        if (this.stopping) {
          // claimed as the worker began to stop: back to the queue, never started
          await this.giveBack(claimed.map((r) => r.id));
          break;
        }
      } catch (err) {
        if (this.stopping) break;
        if (err instanceof RunlogApiError && err.status === 400) {
          // the server refuses this worker's claims as they are: trying again cannot help
          this.onError(new RunlogError(`worker ${this.id} stopped: ${err.message}`));
          void this.stop();
          break;
        }
        failures++;
        // a claim the server took and answered, its answer lost (not a refused connection)
        if (
          err instanceof RunlogConnectionError ||
          (err instanceof RunlogApiError && err.status >= 500)
        )
          maybeLost = true;
        if (failures === 1 || failures % 20 === 0) this.onError(err as Error);
        const retryAfterMs = err instanceof RunlogApiError ? err.retryAfterMs : undefined;
        // stop() aborts the pause: a pausing worker stops at once
        await delay(backoffMs(failures, retryAfterMs, 200, 5_000), undefined, {
          signal: this.pause.signal,
        }).catch(() => {});
        continue;
      }
      for (const run of claimed) void this.execute(run);
      if (maybeLost) {
        // the server answers again: the runs of the lost answer are its to give back
        maybeLost = false;
        await this.giveBackLost();
      }
      if (claimed.length === 0 && this.pollWaitMs < MIN_EMPTY_POLL_MS) {
        // a short poll that found nothing: ask again after a pause, not in a hot loop (a
        // pollWaitMs of 0 made an idle worker send about 120 claims a second)
        await delay(MIN_EMPTY_POLL_MS - this.pollWaitMs, undefined, {
          signal: this.pause.signal,
        }).catch(() => {});
      }
    }
  }

  private async execute(info: Run): Promise<void> {
    const run = new RunContext(info.id, info.agent_id, info.input, this.transport, info);
    let finish: () => void = () => {};
    const held: Held = { run, released: undefined, done: new Promise((r) => (finish = r)) };
    // a run this worker still executes, claimed again: it was given back to the queue under
    // it (by hand, or by the stop of another process of this id), and the new attempt is the
    // one that runs it; the old handler stops and records nothing more
    const previous = this.held.get(info.id);
    previous?.run.detach(
      new RunlogError(
        'run was released back to the queue and claimed again: the new attempt runs it',
      ),
    );
    this.held.set(info.id, held);
    const stopBeat = this.heartbeats.start(run, {
      intervalMs: this.heartbeatMs,
      leaseMs: this.leaseMs,
      workerId: this.id,
      missingIsGone: true,
    });
    const handler = this.options.agents[info.agent_id];
    const outcome: RunOutcome & { abandoned?: true } = handler
      ? await untilAbandoned(
          run,
          runCode(run, () => handler(run)),
          this.abandonAfterMs,
          this.onError,
        )
      : {
          ok: false,
          error: new RunlogError(`this worker has no handler for agent ${info.agent_id}`),
        };
    let delivered: Promise<void> | undefined;
    try {
      // a released run (detached when released) is queued again: its end is the next
      // worker's to record; a deleted one is gone
      if (!run.detached) {
        endRun(this.transport, run, outcome);
        delivered = this.transport.sent();
      }
      // a handler given up on goes on unawaited: the steps it still takes are not recorded
      // into the run it no longer holds
      if (outcome.abandoned) run.detached = true;
    } catch (err) {
      // never an unhandled rejection in the agent's process, whatever the handler returned
      this.onError(err as Error);
    } finally {
      // the lease holds until the end is on the server: were the server away for a while,
      // the run would otherwise lapse to timed_out with its end still on the way
      stopBeat(delivered);
      if (this.held.get(info.id) === held) this.held.delete(info.id);
      if (delivered) {
        this.ending.add(info.id);
        void delivered.then(() => this.ending.delete(info.id));
      }
      finish();
      const freed = this.slotFreed;
      this.slotFreed = undefined;
      freed?.();
    }
  }
}
