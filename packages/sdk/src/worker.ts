import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Run, RunFields } from '@runlog/core';
import { RunCancelledError, RunlogError, RunlogApiError } from './errors.js';
import { backoffMs, type HttpClient } from './http.js';
import { startHeartbeat } from './heartbeat.js';
import { RunContext, toRunError, withRun } from './run.js';
import type { Transport } from './transport.js';

/** Executes one queued run of an agent; its return value is the run's output. */
export type AgentHandler = (run: RunContext) => unknown;

export interface WorkerOptions {
  /** The agents this worker executes, by id. */
  agents: Record<string, AgentHandler>;
  /** Runs executed at the same time (default 1). */
  concurrency?: number;
  /** How long a claimed run stays ours without a heartbeat (default 30 s). */
  leaseMs?: number;
  /** Default: a third of the lease, at most 5 s. */
  heartbeatIntervalMs?: number;
  /** How long one claim waits on the server for work (default 20 s). */
  pollWaitMs?: number;
  /** On stop, how long running handlers may finish before their runs are released (default 30 s). */
  drainTimeoutMs?: number;
  workerId?: string;
}

interface Held {
  run: RunContext;
  released: boolean;
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
  private readonly poll = new AbortController();
  private readonly held = new Map<string, Held>();
  private readonly slots: Promise<void>[] = [];
  private markDone: () => void = () => {};
  private stopPromise: Promise<void> | undefined;
  private slotFreed: (() => void) | undefined;
  private readonly leaseMs: number;
  private readonly heartbeatMs: number;
  private readonly pollWaitMs: number;

  /** @internal */
  constructor(
    private readonly http: HttpClient,
    private readonly transport: Transport,
    private readonly options: WorkerOptions,
    private readonly onError: (err: Error) => void,
    private readonly onStopped: (w: Worker) => void,
  ) {
    this.id = options.workerId ?? `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
    this.leaseMs = options.leaseMs ?? 30_000;
    this.heartbeatMs =
      options.heartbeatIntervalMs ?? Math.max(100, Math.min(5_000, Math.floor(this.leaseMs / 3)));
    this.pollWaitMs = options.pollWaitMs ?? 20_000;
    this.done = new Promise((resolve) => (this.markDone = resolve));
    if (Object.keys(options.agents).length === 0)
      throw new RunlogError('worker needs at least one agent handler');
    this.slots.push(this.loop(Math.max(1, options.concurrency ?? 1)));
  }

  /** Runs being executed now. */
  get active(): number {
    return this.held.size;
  }

  /**
   * Stops claiming, lets running handlers finish for up to `drainTimeoutMs`, then releases the
   * rest back to the queue (their signals fire) and flushes what was recorded.
   */
  stop(options: { drainTimeoutMs?: number } = {}): Promise<void> {
    this.stopPromise ??= this.shutdown(options.drainTimeoutMs ?? this.options.drainTimeoutMs);
    return this.stopPromise;
  }

  private async shutdown(drainTimeoutMs = 30_000): Promise<void> {
    this.stopping = true;
    this.poll.abort();
    this.slotFreed?.();
    const running = [...this.held.values()].map((h) => h.done);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(running),
      new Promise((resolve) => (timer = setTimeout(resolve, drainTimeoutMs))),
    ]);
    clearTimeout(timer);
    await Promise.all(
      [...this.held.entries()].map(async ([id, h]) => {
        h.released = true;
        h.run.abort(new RunlogError('worker shutting down; run released back to the queue'));
        try {
          await this.http.request('POST', `/api/v1/runs/${encodeURIComponent(id)}/release`, {
            worker_id: this.id,
          });
        } catch (err) {
          this.onError(err as Error);
        }
      }),
    );
    await Promise.allSettled(this.slots);
    await this.transport.flush();
    this.onStopped(this);
    this.markDone();
  }

  /** One claimer for all slots: it asks for as many runs as there are free slots. */
  private async loop(concurrency: number): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      if (this.held.size >= concurrency) {
        await new Promise<void>((resolve) => (this.slotFreed = resolve));
        continue;
      }
      let claimed: Run[] = [];
      try {
        const res = await this.http.request<{ runs: Run[] }>(
          'POST',
          '/api/v1/workers/claim',
          {
            agents: Object.keys(this.options.agents),
            wait_ms: this.pollWaitMs,
            lease_ms: this.leaseMs,
            worker_id: this.id,
            max: concurrency - this.held.size,
          },
          { signal: this.poll.signal, timeoutMs: this.pollWaitMs + 15_000 },
        );
        failures = 0;
        if (res.status === 200 && res.body) claimed = res.body.runs;
      } catch (err) {
        if (this.stopping) break;
        failures++;
        if (failures === 1 || failures % 20 === 0) this.onError(err as Error);
        await sleep(
          backoffMs(
            failures,
            err instanceof RunlogApiError ? err.retryAfterMs : undefined,
            200,
            5_000,
          ),
        );
        continue;
      }
      for (const run of claimed) void this.execute(run);
    }
  }

  private async execute(info: Run): Promise<void> {
    const run = new RunContext(info.id, info.agent_id, info.input, this.transport, info);
    let finish: () => void = () => {};
    const held: Held = { run, released: false, done: new Promise((r) => (finish = r)) };
    this.held.set(info.id, held);
    const stopBeat = startHeartbeat(this.http, run, {
      intervalMs: this.heartbeatMs,
      leaseMs: this.leaseMs,
      workerId: this.id,
      missingIsGone: true,
      onError: this.onError,
    });
    let end: RunFields;
    try {
      const handler = this.options.agents[info.agent_id];
      if (!handler) throw new RunlogError(`this worker has no handler for agent ${info.agent_id}`);
      const output = await withRun(run, () => handler(run));
      end = { id: run.id, status: 'succeeded', ...(output !== undefined ? { output } : {}) };
    } catch (err) {
      end = { id: run.id, status: 'failed', error: toRunError(err) };
    } finally {
      stopBeat();
    }
    if (run.signal.reason instanceof RunCancelledError) {
      end = {
        ...end,
        status: 'cancelled',
        error: { message: 'stopped from Runlog; the worker confirmed', type: 'Cancelled' },
      };
    }
    if (!held.released) {
      this.transport.push({ type: 'run.end', run: { ...end, ended_at: Date.now() } });
    }
    this.held.delete(info.id);
    finish();
    const freed = this.slotFreed;
    this.slotFreed = undefined;
    freed?.();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
