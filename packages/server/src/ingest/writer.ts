import type { IngestEvent } from '@runlog/core';
import type { Db } from '../db/database.js';
import type { RunRow, StepRow } from '../db/schema.js';
import type { EventHub } from '../realtime/hub.js';
import type { Metrics } from '../metrics/metrics.js';
import { toRun, toStep } from '../runs/runs.mapper.js';
import type { PriceBook } from './prices.js';
import { UnitOfWork } from './unit-of-work.js';
import {
  applyHeartbeat,
  applyRunEvent,
  applyStepEvent,
  implicitRun,
  type ApplyEnv,
} from './apply.js';

export interface WriterOptions {
  maxFieldBytes: number;
  /** How long a running run lives without any event; heartbeats and events extend it. */
  leaseMs?: number;
  /** Most events one group commit takes. */
  maxGroupEvents?: number;
}

export const DEFAULT_RUN_LEASE_MS = 15 * 60_000;

interface EventsJob {
  kind: 'events';
  projectId: string;
  events: IngestEvent[];
  resolve: () => void;
  reject: (err: unknown) => void;
}

interface OpJob {
  kind: 'op';
  fn: (uow: UnitOfWork, env: ApplyEnv) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

type Job = EventsJob | OpJob;

/**
 * The one write path for runs and steps. Requests hand their validated events to `submit`
 * and wait; a single loop takes everything queued meanwhile and applies it in one
 * transaction (group commit), so concurrent requests share one commit instead of one each.
 * Only after the commit is durable (`Db.durable`: on SQLite, the WAL flushed off the event
 * loop while the next group already commits) are the changes published to the hub and the
 * callers answered: an acknowledged event is a committed, durable event.
 *
 * Control-plane changes (`transact`) go through the same queue, in their own transactions,
 * so they are ordered with recording and published the same way.
 */
export class IngestWriter {
  private readonly queue: Job[] = [];
  private running = false;
  private closed = false;
  private idle: Promise<void> = Promise.resolve();
  private markIdle: () => void = () => {};
  private readonly countEvents: (by?: number) => void;
  private readonly countCommits: (by?: number) => void;
  private readonly leaseMs: number;
  private readonly maxGroupEvents: number;

  constructor(
    private readonly db: Db,
    private readonly hub: EventHub,
    private readonly prices: PriceBook,
    metrics: Metrics,
    private readonly options: WriterOptions,
  ) {
    this.leaseMs = options.leaseMs ?? DEFAULT_RUN_LEASE_MS;
    this.maxGroupEvents = options.maxGroupEvents ?? 5000;
    this.countEvents = metrics.counter(
      'runlog_ingest_events_total',
      'Run and step events committed',
    );
    this.countCommits = metrics.counter(
      'runlog_writer_commits_total',
      'Transactions committed by the write path',
    );
    metrics.gauge(
      'runlog_writer_queue_jobs',
      'Writes waiting for the next group commit',
      () => this.queue.length,
    );
  }

  /** Applies a project's events; resolves once they are committed. */
  submit(projectId: string, events: IngestEvent[]): Promise<void> {
    if (events.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.enqueue({ kind: 'events', projectId, events, resolve, reject });
    });
  }

  /**
   * Runs a control-plane change in its own transaction on the write path; the runs and
   * steps it puts into the unit of work are published after commit.
   * @example await writer.transact(async (uow) => { await uow.loadRuns(p, [id]); ... })
   */
  transact<T>(fn: (uow: UnitOfWork, env: ApplyEnv) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.enqueue({ kind: 'op', fn, resolve: resolve as (v: unknown) => void, reject });
    });
  }

  /** Finishes what is queued and stops taking work. */
  async close(): Promise<void> {
    this.closed = true;
    await this.idle;
    await Promise.allSettled([...this.flushing]);
  }

  env(projectId: string | undefined): ApplyEnv {
    return {
      now: Date.now(),
      maxFieldBytes: this.options.maxFieldBytes,
      leaseMs: this.leaseMs,
      price: (model) => (projectId ? this.prices.price(projectId, model) : undefined),
    };
  }

  private enqueue(job: Job): void {
    if (this.closed) {
      job.reject(new Error('the write path is closed'));
      return;
    }
    this.queue.push(job);
    if (!this.running) {
      this.running = true;
      this.idle = new Promise((resolve) => (this.markIdle = resolve));
      // let requests arriving in this turn of the event loop join the first group
      setImmediate(() => void this.drain());
    }
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const head = this.queue[0]!;
        if (head.kind === 'op') {
          this.queue.shift();
          await this.runOp(head);
          continue;
        }
        const group: EventsJob[] = [];
        let count = 0;
        while (
          this.queue.length > 0 &&
          this.queue[0]!.kind === 'events' &&
          (group.length === 0 ||
            count + (this.queue[0] as EventsJob).events.length <= this.maxGroupEvents)
        ) {
          const job = this.queue.shift() as EventsJob;
          group.push(job);
          count += job.events.length;
        }
        await this.runGroup(group);
      }
    } finally {
      this.running = false;
      this.markIdle();
    }
  }

  private async runGroup(group: EventsJob[]): Promise<void> {
    try {
      const changes = await this.withRetry(() => this.commitEvents(group));
      this.countEvents(group.reduce((n, j) => n + j.events.length, 0));
      // acknowledge once durable, but let the next group commit meanwhile
      this.afterDurable(
        () => {
          for (const job of group) job.resolve();
          this.publish(changes);
        },
        (err) => {
          for (const job of group) job.reject(err);
        },
      );
    } catch (err) {
      if (group.length === 1) {
        group[0]!.reject(err);
        return;
      }
      // one bad job must not fail the others that shared its commit
      for (const job of group) await this.runGroup([job]);
    }
  }

  private async commitEvents(group: EventsJob[]): Promise<Changes> {
    const projects = new Set(group.map((j) => j.projectId));
    for (const p of projects) await this.prices.load(p);
    return this.db.kysely.transaction().execute(async (trx) => {
      const uow = new UnitOfWork(trx, this.db);
      for (const job of group)
        await applyEvents(uow, job.projectId, job.events, this.env(job.projectId));
      const changes = await uow.flush();
      this.countCommits();
      return changes;
    });
  }

  private async runOp(job: OpJob): Promise<void> {
    try {
      let result: unknown;
      const changes = await this.withRetry(() =>
        this.db.kysely.transaction().execute(async (trx) => {
          const uow = new UnitOfWork(trx, this.db);
          result = await job.fn(uow, this.env(undefined));
          const flushed = await uow.flush();
          this.countCommits();
          return flushed;
        }),
      );
      this.afterDurable(
        () => {
          job.resolve(result);
          this.publish(changes);
        },
        (err) => job.reject(err),
      );
    } catch (err) {
      job.reject(err);
    }
  }

  private readonly flushing = new Set<Promise<void>>();

  /** Runs `done` once everything committed so far is on disk (`Db.durable`). */
  private afterDurable(done: () => void, failed: (err: unknown) => void): void {
    const p = this.db.durable().then(done, failed);
    this.flushing.add(p);
    void p.finally(() => this.flushing.delete(p));
  }

  private async withRetry<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        const code = (err as { code?: string }).code;
        // PostgreSQL serialization failure or deadlock: the transaction is safe to run again
        if (attempt < 4 && (code === '40001' || code === '40P01')) continue;
        throw err;
      }
    }
  }

  private publish(changes: Changes): void {
    if (!this.hub.active) return;
    const agentOf = new Map(changes.runs.map((r) => [`${r.project_id}\u0000${r.id}`, r.agent_id]));
    for (const step of changes.steps) {
      this.hub.publish({
        kind: 'step',
        projectId: step.project_id,
        step: toStep(step),
        agentId: agentOf.get(`${step.project_id}\u0000${step.run_id}`) ?? '',
      });
    }
    for (const run of changes.runs)
      this.hub.publish({ kind: 'run', projectId: run.project_id, run: toRun(run) });
  }
}

interface Changes {
  runs: RunRow[];
  steps: StepRow[];
}

/** Applies recording events in order inside a unit of work. */
export async function applyEvents(
  uow: UnitOfWork,
  projectId: string,
  events: IngestEvent[],
  env: ApplyEnv,
): Promise<void> {
  const runIds: string[] = [];
  const stepKeys: { run_id: string; id: string }[] = [];
  for (const e of events) {
    if ('step' in e) {
      runIds.push(e.step.run_id);
      stepKeys.push({ run_id: e.step.run_id, id: e.step.id });
    } else {
      runIds.push(e.run.id);
    }
  }
  await uow.loadRuns(projectId, runIds);
  await uow.loadSteps(projectId, stepKeys);
  for (const e of events) {
    switch (e.type) {
      case 'run.start':
      case 'run.update':
      case 'run.end': {
        const kind = e.type === 'run.start' ? 'start' : e.type === 'run.update' ? 'update' : 'end';
        const current = uow.getRun(projectId, e.run.id);
        const next = applyRunEvent(kind, current, e.run, projectId, env);
        if (next !== current) uow.putRun(next);
        break;
      }
      case 'run.heartbeat': {
        const current = uow.getRun(projectId, e.run.id);
        if (current) {
          const next = applyHeartbeat(current, env);
          if (next !== current) uow.putRun(next);
        }
        break;
      }
      case 'step.start':
      case 'step.end': {
        let run = uow.getRun(projectId, e.step.run_id);
        if (!run) {
          run = implicitRun(projectId, e.step.run_id, env);
          uow.putRun(run);
        }
        const current = uow.getStep(projectId, e.step.run_id, e.step.id);
        const next = applyStepEvent(
          e.type === 'step.start' ? 'start' : 'end',
          current,
          e.step,
          projectId,
          run.step_count,
          env,
        );
        if (next !== current) uow.putStep(next, run);
        break;
      }
    }
  }
}
