import {
  ERROR_STATUS,
  ID_PATTERN,
  type ErrorCode,
  type HeartbeatResponse,
  type HeartbeatResult,
  type HeartbeatRunsBody,
  type HeartbeatRunsResponse,
  type Run,
} from '@runlog/core';
import { RunCancelledError, RunlogApiError, RunlogConnectionError, RunlogError } from './errors.js';
import type { HttpClient } from './http.js';
import type { RunContext } from './run.js';

export interface HeartbeatOptions {
  intervalMs: number;
  /** For a claimed run: the lease each beat renews. */
  leaseMs?: number;
  workerId?: string;
  /** A missing run is gone (claimed runs) rather than not recorded yet (SDK runs). */
  missingIsGone: boolean;
}

/** The most runs `POST /runs/heartbeat` takes in one request. */
const MAX_RUNS_PER_BEAT = 1000;

/**
 * Keeps a client's open runs alive and fires their signals on Stop. Runs that share a worker,
 * a lease and an interval beat together: one `POST /runs/heartbeat` per interval for all of
 * them, however many a worker holds. Timers never keep the process alive.
 */
export class Heartbeats {
  private readonly groups = new Map<string, BeatGroup>();

  constructor(
    private readonly http: HttpClient,
    private readonly onError: (err: Error) => void,
  ) {}

  /**
   * Beats `run` every `intervalMs` until the returned function is called; meanwhile
   * `run.heartbeat()` beats it at once. Called with a promise, the run goes on beating,
   * deaf to the answers, until the promise settles: a run whose end is still on its way
   * (the server away for a while) keeps its lease until the end gets there.
   */
  start(run: RunContext, options: HeartbeatOptions): (until?: Promise<unknown>) => void {
    // an id the server refuses would make it refuse the beat of every run beside it; its
    // events are refused too, which the transport reports
    if (!ID_PATTERN.test(run.id)) return () => {};
    const key = `${options.workerId ?? ''}\u0000${options.leaseMs ?? ''}\u0000${options.intervalMs}`;
    let group = this.groups.get(key);
    if (!group) {
      const created = new BeatGroup(this.http, options, this.onError, () => {
        if (this.groups.get(key) === created) this.groups.delete(key);
      });
      this.groups.set(key, created);
      group = created;
    }
    const joined = group;
    joined.add(run, options.missingIsGone);
    run.beat = () => joined.now(run.id);
    return (until) => {
      run.beat = undefined;
      if (!until) return joined.remove(run);
      joined.quiet(run);
      void until.finally(() => joined.remove(run));
    };
  }
}

interface Member {
  run: RunContext;
  missingIsGone: boolean;
  /** Its code has finished: it still beats, but nothing in the answer is for it any more. */
  quiet?: boolean;
  /** Whether the run the server says has ended is this one is being read. */
  checking?: boolean;
}

type Beat = Extract<HeartbeatResult, { ok: true }>;

class BeatGroup {
  /** The open runs by id (two runs opened with the same id are both kept). */
  private readonly members = new Map<string, Member[]>();
  private readonly body: Omit<HeartbeatRunsBody, 'runs'>;
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  /** Runs whose `run.heartbeat()` waits for the next immediate beat, with their waiters. */
  private asked = new Map<string, (() => void)[]>();
  /** The server answers only `POST /runs/:id/heartbeat` (it predates the batched route). */
  private oneByOne = false;
  /** Beats failed in a row (a 5xx, a 429, a refused key): told to `onError` now and then. */
  private failures = 0;

  constructor(
    private readonly http: HttpClient,
    private readonly options: HeartbeatOptions,
    private readonly onError: (err: Error) => void,
    private readonly onEmpty: () => void,
  ) {
    this.body = {
      ...(options.leaseMs !== undefined ? { lease_ms: options.leaseMs } : {}),
      ...(options.workerId !== undefined ? { worker_id: options.workerId } : {}),
    };
  }

  add(run: RunContext, missingIsGone: boolean): void {
    const same = this.members.get(run.id);
    if (same) same.push({ run, missingIsGone });
    else this.members.set(run.id, [{ run, missingIsGone }]);
    if (!this.timer) {
      this.timer = setInterval(() => void this.tick(), this.options.intervalMs);
      this.timer.unref();
    }
  }

  quiet(run: RunContext): void {
    for (const m of this.members.get(run.id) ?? []) if (m.run === run) m.quiet = true;
  }

  remove(run: RunContext): void {
    const same = this.members.get(run.id)?.filter((m) => m.run !== run);
    if (same?.length) this.members.set(run.id, same);
    else this.members.delete(run.id);
    if (this.members.size > 0) return;
    clearInterval(this.timer);
    this.timer = undefined;
    this.onEmpty();
  }

  /** Beats `id` now, with every other run asked in this turn of the event loop. */
  now(id: string): Promise<void> {
    return new Promise((resolve) => {
      // the first run asked in this turn schedules the beat; the others go along with it
      const first = this.asked.size === 0;
      const waiters = this.asked.get(id);
      if (waiters) waiters.push(resolve);
      else this.asked.set(id, [resolve]);
      if (!first) return;
      setImmediate(() => {
        const asked = this.asked;
        this.asked = new Map();
        void this.send([...asked.keys()]).finally(() => {
          for (const waiters of asked.values()) for (const done of waiters) done();
        });
      });
    });
  }

  /** The interval's beat of every run; skipped while the previous one is still under way. */
  private async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      await this.send([...this.members.keys()]);
    } finally {
      this.ticking = false;
    }
  }

  private async send(ids: string[]): Promise<void> {
    for (let i = 0; i < ids.length; i += MAX_RUNS_PER_BEAT) {
      const runs = ids.slice(i, i + MAX_RUNS_PER_BEAT).filter((id) => this.members.has(id));
      if (runs.length === 0) continue;
      try {
        if (this.oneByOne) {
          await Promise.all(runs.map((id) => this.sendOne(id)));
          continue;
        }
        const res = await this.http.request<HeartbeatRunsResponse>(
          'POST',
          '/api/v1/runs/heartbeat',
          { ...this.body, runs } satisfies HeartbeatRunsBody,
          { idempotent: true },
        );
        this.failures = 0;
        for (const result of res.body?.runs ?? []) this.apply(result);
      } catch (err) {
        // only the batched request throws here (sendOne reports its own errors); a 404 is its
        // route missing even when another beat sent at the same time heard it first
        if (err instanceof RunlogApiError && err.status === 404) {
          // a server from before batched heartbeats: one request per run, as it knows
          this.oneByOne = true;
          await Promise.all(runs.map((id) => this.sendOne(id)));
        } else if (!(err instanceof RunlogConnectionError)) {
          // the server being away is the normal case a heartbeat rides out
          this.failed(err as Error);
        }
      }
    }
  }

  /** One run's beat through `POST /runs/:id/heartbeat`, answered as in a batch. */
  private async sendOne(id: string): Promise<void> {
    try {
      const res = await this.http.request<HeartbeatResponse>(
        'POST',
        `/api/v1/runs/${encodeURIComponent(id)}/heartbeat`,
        this.body,
        { idempotent: true },
      );
      this.failures = 0;
      if (res.body) this.apply({ id, ok: true, ...res.body });
    } catch (err) {
      if (err instanceof RunlogApiError && err.status < 500 && err.status !== 429)
        this.apply({ id, ok: false, error: { code: err.code, message: err.message } });
      else if (!(err instanceof RunlogConnectionError)) this.failed(err as Error);
    }
  }

  /**
   * A beat failed: the first failure in a row and every tenth after it reach `onError`, as the
   * recording's do. A proxy answering 503 through an outage told it every 2 s, per run.
   */
  private failed(err: Error): void {
    this.failures += 1;
    if (this.failures === 1 || this.failures % 10 === 0) this.onError(err);
  }

  /**
   * Stops a `run()` run the server says has ended, once a read shows it is this one (the same
   * start): a run() given the id of a run that ended before it (a job run again under its job
   * id) is not stopped for that; the server keeps that run's outcome and this one's steps, and
   * `onError` hears so once. Unread (no read scope, a failure): stopped, as before the check.
   */
  private async stopIfOurs(member: Member, result: Beat): Promise<void> {
    if (member.checking || member.run.signal.aborted) return;
    member.checking = true;
    let stored: Run | undefined;
    try {
      const path = `/api/v1/runs/${encodeURIComponent(result.id)}`;
      stored = (await this.http.request<Run>('GET', path)).body;
    } catch {
      // stopped, as the beat says
    }
    member.checking = false;
    if (member.quiet) return;
    // either way, what later beats say of that ended run is not for this code
    member.quiet = true;
    const startedAt = stored?.started_at ? Date.parse(stored.started_at) : undefined;
    if (startedAt !== undefined && startedAt !== member.run.startedAt) {
      this.onError(
        new RunlogError(
          `run ${result.id} had already ended ${result.status} before this run() of that id ` +
            'started: its steps are recorded, its end and status stay those of the first',
        ),
      );
      return;
    }
    stop(member.run, result);
  }

  private apply(result: HeartbeatResult): void {
    // a run that ended meanwhile no longer listens
    for (const member of this.members.get(result.id) ?? []) {
      const { run, missingIsGone, quiet } = member;
      if (quiet) continue;
      if (result.ok && missingIsGone && result.status === 'queued') {
        // a claimed run back in the queue (released under this worker's id, or by hand): the
        // next worker to claim it executes it, so this code stops and records nothing more
        run.detach(
          new RunlogError('run was released back to the queue; another worker will execute it'),
        );
      } else if (!result.ok && missingIsGone && result.error.code === 'conflict') {
        // another worker claimed it since: two handlers would execute it, and this one's end
        // would be taken for the other's
        run.detach(new RunlogError(result.error.message));
      } else if (result.ok) {
        const ended = result.status !== 'running' && result.status !== 'queued';
        // a run() given an id: the ended run may be an earlier one of that id
        if (ended && run.startedAt !== undefined) void this.stopIfOurs(member, result);
        else stop(run, result);
      } else if (result.error.code === 'not_found') {
        // a recorded run's start may still be on its way; a claimed run was deleted
        if (missingIsGone) {
          // deleted while it ran: nothing more of it is recorded, or it would come back
          run.detach(new RunlogError('run no longer exists on the server'));
        }
      } else {
        const status = ERROR_STATUS[result.error.code as ErrorCode] ?? 409;
        this.onError(new RunlogApiError(status, result.error.code, result.error.message));
        return;
      }
    }
  }
}

/** Fires `run.signal` as a beat's answer says: Stop was pressed, or the server ended the run. */
function stop(run: RunContext, result: Beat): void {
  if (result.cancel_requested) run.abort(new RunCancelledError('run stopped from Runlog'));
  else if (result.status !== 'running' && result.status !== 'queued')
    // the server ended it (a limit passed, a timeout): the agent's code hears why
    run.abort(
      new RunlogError(
        `run already ended ${result.status} on the server${
          result.end_reason ? `: ${result.end_reason}` : ''
        }`,
      ),
    );
}
