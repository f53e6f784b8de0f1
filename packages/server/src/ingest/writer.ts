import { sql, type Kysely } from 'kysely';
import {
  eventRunId,
  newId,
  type IngestEvent,
  type Run,
  type RunStatus,
  type Step,
} from '@runlog/core';
import { scoreRow } from '../scores/scores.js';
import { isDatabaseUnavailable, type Db } from '../db/database.js';
import type { Database, RunRow, StepRow } from '../db/schema.js';
import type { EventHub } from '../realtime/hub.js';
import type { Metrics } from '../metrics/metrics.js';
import { toRun, toStep } from '../runs/runs.mapper.js';
import type { PriceBook } from './prices.js';
import { UnitOfWork, deletedAmong, lockRuns } from './unit-of-work.js';
import { AppError } from '../http/errors.js';
import { RollupDeltas } from '../stats/rollup.js';
import {
  applyHeartbeat,
  applyRunEvent,
  applyStepEvent,
  implicitRun,
  renewLeaseForStep,
  type ApplyEnv,
} from './apply.js';

export interface WriterOptions {
  maxFieldBytes: number;
  /** How long a running run lives without any event; heartbeats and events extend it. */
  leaseMs?: number;
  /** Most events one group commit takes. */
  maxGroupEvents?: number;
  /** Recording events waiting past which `submit` refuses more (429); default 50,000. */
  maxQueuedEvents?: number;
  /** Told of the runs each commit ends, in that commit (outgoing webhooks). */
  outbox?: EndedRunsOutbox;
}

/**
 * Where the runs a transaction makes terminal are written down, in that transaction: the
 * webhooks' deliveries, so that no acknowledged outcome goes without its deliveries.
 */
export interface EndedRunsOutbox {
  /**
   * Writes what `runs` (just made terminal) call for in `trx`; answers how many rows.
   * `retryOf` gives the automatic retry a run's agent queued for it in the same transaction.
   */
  enqueue(
    trx: Kysely<Database>,
    runs: readonly RunRow[],
    retryOf: (run: RunRow) => RunRow | undefined,
  ): Promise<number>;
  /** Called once a commit that wrote some is durable. */
  written(): void;
}

export const DEFAULT_RUN_LEASE_MS = 15 * 60_000;

interface EventsJob {
  kind: 'events';
  projectId: string;
  events: IngestEvent[];
  /** Called with the events refused (`applyEvents`) once committed. */
  resolve: (refused: Refusal[]) => void;
  reject: (err: unknown) => void;
}

interface OpJob {
  kind: 'op';
  fn: (uow: UnitOfWork, env: ApplyEnv) => Promise<unknown>;
  /** Recording events the change applies, counted like `submit`'s once it commits. */
  events: number;
  /** The project whose prices `fn`'s recording events are costed with, if it records any. */
  projectId: string | undefined;
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
 * Control-plane changes (`transact`) go through the same queue and share the group's
 * commit, each in its own savepoint, so they are ordered with recording, fail alone, and
 * are published the same way.
 */
export class IngestWriter {
  private readonly queue: Job[] = [];
  private running = false;
  private closed = false;
  private idle: Promise<void> = Promise.resolve();
  private markIdle: () => void = () => {};
  private readonly countEvents: (by?: number) => void;
  private readonly countCommits: (by?: number) => void;
  private readonly countRetries: (by?: number) => void;
  /** How long a running run recorded without a worker lives without any event. */
  readonly runLeaseMs: number;
  private readonly maxGroupEvents: number;
  private readonly maxQueuedEvents: number;
  /** Recording events in `queue`, not yet taken into a group. */
  private queuedEvents = 0;
  private readonly countBusy: (by?: number) => void;
  /**
   * When a commit last failed because the database was away (down, unreachable, locked by
   * another process): heartbeats failed then too, and the sweeper gives leases that lapsed
   * meanwhile one more lease.
   */
  lastAwayAt: number | undefined;

  constructor(
    private readonly db: Db,
    private readonly hub: EventHub,
    private readonly prices: PriceBook,
    metrics: Metrics,
    private readonly options: WriterOptions,
  ) {
    this.runLeaseMs = options.leaseMs ?? DEFAULT_RUN_LEASE_MS;
    this.maxGroupEvents = options.maxGroupEvents ?? 5000;
    this.maxQueuedEvents = options.maxQueuedEvents ?? 50_000;
    this.countBusy = metrics.counter(
      'runlog_ingest_busy_total',
      'Recording requests refused with 429 because the write path was too far behind',
    );
    this.countEvents = metrics.counter(
      'runlog_ingest_events_total',
      'Run and step events committed',
    );
    this.countCommits = metrics.counter(
      'runlog_writer_commits_total',
      'Transactions committed by the write path',
    );
    this.countRetries = metrics.counter(
      'runlog_writer_retries_total',
      'Group commits run again after a deadlock or serialization failure (PostgreSQL)',
    );
    metrics.gauge(
      'runlog_writer_queue_jobs',
      'Writes waiting for the next group commit',
      () => this.queue.length,
    );
  }

  /**
   * Applies a project's events; resolves once they are committed, with those refused
   * (`applyEvents`). Refuses them all (429,
   * with Retry-After) while more than `maxQueuedEvents` wait, so memory stays bounded when
   * recording outpaces the disk; a lone batch is always taken.
   */
  submit(projectId: string, events: IngestEvent[]): Promise<Refusal[]> {
    if (events.length === 0) return Promise.resolve([]);
    if (this.behind(events.length))
      return Promise.reject(AppError.busy('the write path is behind', 1));
    return new Promise<Refusal[]>((resolve, reject) => {
      this.enqueue({ kind: 'events', projectId, events, resolve, reject });
    });
  }

  /**
   * Runs a control-plane change on the write path, in its own savepoint of the next group
   * commit; the runs it puts into the unit of work are published once that commit is durable.
   * A change that applies recording events says how many (`opts.events`, for the events
   * metric) and for which project (`opts.projectId`: `env` then prices steps as `submit` does).
   * @example await writer.transact(async (uow) => { await uow.loadRuns(p, [id]); ... })
   */
  transact<T>(
    fn: (uow: UnitOfWork, env: ApplyEnv) => Promise<T>,
    opts: { events?: number; projectId?: string } = {},
  ): Promise<T> {
    // recording through a change (OTLP, the REST sugar) meets the bound `submit` meets
    const events = opts.events ?? 0;
    if (events > 0 && this.behind(events))
      return Promise.reject(AppError.busy('the write path is behind', 1));
    return new Promise<T>((resolve, reject) => {
      this.enqueue({
        kind: 'op',
        fn,
        events: opts.events ?? 0,
        projectId: opts.projectId,
        resolve: resolve as (v: unknown) => void,
        reject,
      });
    });
  }

  /** Finishes what is queued and stops taking work. */
  async close(): Promise<void> {
    this.closed = true;
    await this.idle;
    await Promise.allSettled([...this.flushing]);
  }

  /**
   * Whether `events` more would pass `maxQueuedEvents` (a lone batch is always taken);
   * counts the refusal.
   */
  private behind(events: number): boolean {
    if (this.queuedEvents === 0 || this.queuedEvents + events <= this.maxQueuedEvents) return false;
    this.countBusy();
    return true;
  }

  private env(projectId: string | undefined): ApplyEnv {
    return {
      now: Date.now(),
      maxFieldBytes: this.options.maxFieldBytes,
      leaseMs: this.runLeaseMs,
      price: (model) => (projectId ? this.prices.price(projectId, model) : undefined),
    };
  }

  private enqueue(job: Job): void {
    if (this.closed) {
      job.reject(new Error('the write path is closed'));
      return;
    }
    this.queue.push(job);
    this.queuedEvents += eventsOf(job);
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
        const group: Job[] = [];
        let weight = 0;
        while (this.queue.length > 0) {
          const next = this.queue[0]!;
          const w = weightOf(next);
          if (group.length > 0 && weight + w > this.maxGroupEvents) break;
          group.push(this.queue.shift()!);
          this.queuedEvents -= eventsOf(next);
          weight += w;
        }
        await this.runGroup(group);
      }
    } finally {
      this.running = false;
      this.markIdle();
    }
  }

  private async runGroup(group: Job[]): Promise<void> {
    let outcome: GroupOutcome;
    try {
      outcome = await this.withRetry(() => this.commitGroup(group));
    } catch (err) {
      // the database away (down, unreachable, locked by another process) fails every job
      // alike: each alone would fail the same way, one wait (a connection timeout, SQLite's
      // busy timeout) after another, and the last request would be answered minutes later
      if (group.length === 1 || databaseAway(err)) {
        for (const job of group) job.reject(err);
        return;
      }
      // one bad job must not fail the others that shared its commit
      for (const job of group) await this.runGroup([job]);
      return;
    }
    let events = 0;
    for (const job of group) {
      if (job.kind === 'events')
        events += job.events.length - (outcome.refused.get(job)?.length ?? 0);
      else {
        const result = outcome.results.get(job);
        if (result && !result.ok) job.reject(result.error);
        else events += job.events;
      }
    }
    this.countEvents(events);
    // acknowledge once durable, but let the next group commit meanwhile
    this.afterDurable(
      () => {
        for (const job of group) {
          if (job.kind === 'events') job.resolve(outcome.refused.get(job) ?? []);
          else {
            const result = outcome.results.get(job);
            if (result?.ok) job.resolve(result.value);
          }
        }
        this.publish(outcome.changes);
        if (outcome.outboxed > 0) this.options.outbox?.written();
      },
      (err) => {
        for (const job of group) job.reject(err);
      },
    );
  }

  /**
   * One transaction for a group of jobs. Recording events share one unit of work; each
   * control change runs in its own savepoint and unit of work, so its failure (a 404, a 409)
   * is its own and the rest of the group still commits.
   */
  private async commitGroup(group: Job[]): Promise<GroupOutcome> {
    const projects = new Set<string>();
    for (const job of group) if (job.projectId !== undefined) projects.add(job.projectId);
    for (const p of projects) await this.prices.load(p);
    const outcome = await this.db.kysely.transaction().execute(async (trx) => {
      // every run the group's recording names, locked up front in one order: jobs locking
      // their own runs one job after another would let two instances deadlock
      const recorded = this.db.dialect === 'postgres' ? recordedRuns(group) : [];
      const locked = this.db.dialect === 'postgres' ? await lockRuns(trx, recorded) : undefined;
      // which of them were deleted lately, asked once for the group when a recording first
      // meets a run not stored; a control change may delete more, and the recording after it
      // asks again
      const lookup = () => {
        let found: Promise<ReadonlySet<string>> | undefined;
        return () => (found ??= deletedAmong(trx, recorded));
      };
      let lockedDeleted = recorded.length > 0 ? lookup() : undefined;
      const changes: Changes = { runs: [], steps: [], deleted: [] };
      const results = new Map<OpJob, OpResult>();
      const refused = new Map<EventsJob, Refusal[]>();
      // the group's rollup changes, written once at its end
      const rollups = new RollupDeltas();
      let recording: UnitOfWork | undefined;
      let outboxed = 0;
      const flushRecording = async () => {
        if (!recording) return;
        const flushed = await recording.flush(rollups);
        outboxed += await this.toOutbox(trx, flushed);
        changes.runs.push(...flushed.runs);
        changes.steps.push(...flushed.steps);
        changes.deleted.push(...flushed.deleted);
        recording = undefined;
      };
      for (const job of group) {
        if (job.kind === 'events') {
          recording ??= new UnitOfWork(trx, this.db, locked, lockedDeleted);
          const skipped = await applyEvents(
            recording,
            job.projectId,
            job.events,
            this.env(job.projectId),
          );
          if (skipped.length > 0) refused.set(job, skipped);
          continue;
        }
        // a control change sees every recording event queued before it
        await flushRecording();
        lockedDeleted = undefined;
        await sql`SAVEPOINT runlog_op`.execute(trx);
        try {
          const uow = new UnitOfWork(trx, this.db, locked);
          const value = await job.fn(uow, this.env(job.projectId));
          const own = new RollupDeltas();
          const flushed = await uow.flush(own);
          // inside the savepoint: a change that fails writes no deliveries either
          const written = await this.toOutbox(trx, flushed);
          await sql`RELEASE SAVEPOINT runlog_op`.execute(trx);
          outboxed += written;
          rollups.merge(own);
          changes.runs.push(...flushed.runs);
          changes.steps.push(...flushed.steps);
          changes.deleted.push(...flushed.deleted);
          results.set(job, { ok: true, value });
        } catch (error) {
          // the database failing (SQLite may have rolled the whole transaction back itself)
          // fails the group, whose jobs then run alone, rather than this job alone
          if (isRetryable(error) || isDatabaseUnavailable(error)) throw error;
          await sql`ROLLBACK TO SAVEPOINT runlog_op`.execute(trx);
          await sql`RELEASE SAVEPOINT runlog_op`.execute(trx);
          results.set(job, { ok: false, error });
        }
      }
      await flushRecording();
      if (!rollups.empty) await rollups.flush(trx, this.db);
      return { changes, results, refused, outboxed };
    });
    this.countCommits();
    return outcome;
  }

  private async toOutbox(
    trx: Kysely<Database>,
    flushed: { ended: readonly RunRow[]; retryOf: (run: RunRow) => RunRow | undefined },
  ): Promise<number> {
    if (flushed.ended.length === 0 || !this.options.outbox) return 0;
    return this.options.outbox.enqueue(trx, flushed.ended, flushed.retryOf);
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
        if (attempt < 4 && isRetryable(err)) {
          this.countRetries();
          continue;
        }
        if (isDatabaseUnavailable(err)) this.lastAwayAt = Date.now();
        throw err;
      }
    }
  }

  private publish(changes: Changes): void {
    if (!this.hub.active) return;
    for (const row of changes.steps) {
      let step: Step | undefined;
      this.hub.publish({
        kind: 'step',
        projectId: row.project_id,
        runId: row.run_id,
        stepId: row.id,
        updatedAt: row.updated_at,
        get step() {
          return (step ??= toStep(row));
        },
      });
    }
    for (const row of changes.runs) {
      let run: Run | undefined;
      this.hub.publish({
        kind: 'run',
        projectId: row.project_id,
        runId: row.id,
        agentId: row.agent_id,
        status: row.status as RunStatus,
        updatedAt: row.updated_at,
        get run() {
          return (run ??= toRun(row));
        },
      });
    }
    for (const row of changes.deleted) {
      this.hub.publish({
        kind: 'run_deleted',
        projectId: row.project_id,
        runId: row.id,
        agentId: row.agent_id,
      });
    }
  }
}

/**
 * Whether `err` says the database cannot be used now, whatever the group held. Not among
 * them: out of disk (the group's largest job may be what does not fit) and a deadlock that
 * outlasted the retries (smaller transactions take fewer locks); the jobs alone may commit.
 */
function databaseAway(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^(53100|40001|40P01|SQLITE_FULL)/.test(code)) return false;
  return isDatabaseUnavailable(err);
}

/** PostgreSQL serialization failure or deadlock: the whole transaction is safe to run again. */
function isRetryable(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  return code === '40001' || code === '40P01';
}

type OpResult = { ok: true; value: unknown } | { ok: false; error: unknown };

interface GroupOutcome {
  changes: Changes;
  results: Map<OpJob, OpResult>;
  /** The events jobs with events refused, and which. */
  refused: Map<EventsJob, Refusal[]>;
  /** Rows the outbox wrote (webhook deliveries). */
  outboxed: number;
}

interface Changes {
  runs: RunRow[];
  steps: StepRow[];
  /** Runs deleted (as they were). */
  deleted: RunRow[];
}

/**
 * An event the write path refused: it names a run deleted lately (`UnitOfWork.deletedLately`),
 * which it would otherwise bring back, or it is a new score of a run that holds
 * `MAX_SCORES_PER_RUN` already.
 */
export interface Refusal {
  index: number;
  reason: 'deleted_run' | 'too_many_scores';
}

/**
 * Applies recording events in order inside a unit of work. Answers the events it refused
 * (`Refusal`); the others are applied.
 */
export async function applyEvents(
  uow: UnitOfWork,
  projectId: string,
  events: IngestEvent[],
  env: ApplyEnv,
): Promise<Refusal[]> {
  const runIds = events.map(eventRunId);
  await uow.loadRuns(projectId, runIds);
  const deleted = await uow.deletedLately(projectId, runIds);
  const refused: Refusal[] = [];
  const stepKeys: { run_id: string; id: string }[] = [];
  // a score sent without an id is a new one: the id is made here, once
  const scoreIds: (string | undefined)[] = [];
  const scoreKeys: { run_id: string; id: string; fresh: boolean }[] = [];
  for (let i = 0; i < events.length; i++) {
    if (deleted.has(runIds[i]!)) refused.push({ index: i, reason: 'deleted_run' });
    else {
      const e = events[i]!;
      if ('step' in e) stepKeys.push({ run_id: e.step.run_id, id: e.step.id });
      else if ('score' in e) {
        const id = e.score.id ?? newId();
        scoreIds[i] = id;
        scoreKeys.push({ run_id: e.score.run_id, id, fresh: e.score.id === undefined });
      }
    }
  }
  await uow.loadSteps(projectId, stepKeys);
  await uow.loadScores(projectId, scoreKeys);
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    if (deleted.has(runIds[i]!)) continue;
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
        if (next !== current) run = uow.putStep(next, run);
        const renewed = renewLeaseForStep(run, env);
        if (renewed !== run) uow.putRun(renewed);
        break;
      }
      case 'score': {
        // a score arriving before its run creates it, as a step does
        if (!uow.getRun(projectId, e.score.run_id))
          uow.putRun(implicitRun(projectId, e.score.run_id, env));
        const id = scoreIds[i]!;
        const current = uow.getScore(projectId, e.score.run_id, id);
        const row = scoreRow(projectId, { ...e.score, id }, current, env);
        if (!(await uow.putScore(row))) refused.push({ index: i, reason: 'too_many_scores' });
        break;
      }
    }
  }
  return refused.sort((a, b) => a.index - b.index);
}

/** The runs a group's recording events name, each once. */
function recordedRuns(group: readonly Job[]): { projectId: string; id: string }[] {
  const seen = new Set<string>();
  const runs: { projectId: string; id: string }[] = [];
  for (const job of group) {
    if (job.kind !== 'events') continue;
    for (const event of job.events) {
      const id = eventRunId(event);
      const key = `${job.projectId}\u0000${id}`;
      if (seen.has(key)) continue;
      seen.add(key);
      runs.push({ projectId: job.projectId, id });
    }
  }
  return runs;
}

/** The recording events a job applies (those `maxQueuedEvents` bounds). */
function eventsOf(job: Job): number {
  return job.kind === 'events' ? job.events.length : job.events;
}

/** What a job weighs in a group: its recording events, and a change without any as one. */
function weightOf(job: Job): number {
  return Math.max(1, eventsOf(job));
}
