import { mkdirSync, readFileSync, readdirSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { IngestEvent, eventRunId, truncatedJson, type IngestResponse } from '@runlog/core';
import { RunlogConnectionError, RunlogError, isRetryable, RunlogApiError } from './errors.js';
import { JsonText, backoffMs, type HttpClient } from './http.js';

export interface TransportOptions {
  /** Send when this many events are waiting (default 100). */
  batchSize: number;
  /** Send at least this often while events wait, in ms (default 250). */
  flushIntervalMs: number;
  /** Most events held in memory; past it the oldest are dropped (default 10,000). */
  maxQueue: number;
  /** When set, unsent events are written here and survive outages and restarts. */
  spoolDir: string | undefined;
  /**
   * Most bytes the spool holds: past it, new batches stay in memory only (and past
   * `maxQueue` the oldest of those go), so an outage cannot fill the disk.
   */
  spoolMaxBytes: number;
  /**
   * How long the process's normal exit may wait for a busy or restarting server (its
   * Retry-After, backoff between tries) before what is unsent is given up (default 5,000;
   * 0: one try at once).
   */
  exitTimeoutMs: number;
  onError: (err: Error) => void;
}

/** Events per request: the server takes up to 1000. */
const MAX_REQUEST_EVENTS = 1000;
/** Bytes of events per request, well under the server's body limit (64 MiB by default). */
const MAX_REQUEST_BYTES = 4 * 1024 * 1024;
/** Why a retry under way is abandoned at exit, to be sent again at once (see `beforeExit`). */
const EXITING = new RunlogError('the process is exiting: the request is sent again');

/** At exit, the least time a request gets, so `exitTimeoutMs: 0` still makes its one try. */
const EXIT_REQUEST_MIN_MS = 1_000;

/**
 * An answer that refuses the key (401, 403): the events are kept and tried again with
 * backoff, so a mistyped or revoked key loses nothing (with `spoolDir`, not even across a
 * restart with the key fixed).
 */
function refusesKey(err: unknown): boolean {
  return err instanceof RunlogApiError && (err.status === 401 || err.status === 403);
}

/** A proxy in front of the server answered for it: the server is down or not answering. */
function gatewayFailed(err: unknown): boolean {
  return err instanceof RunlogApiError && (err.status === 502 || err.status === 504);
}

/** The body was over the server's limit: the batch is sent again in smaller parts. */
function tooLarge(err: unknown): boolean {
  return err instanceof RunlogApiError && err.status === 413;
}

/**
 * The metadata of a start and its end merged as the server merges them when they come apart
 * (the end's keys win), so a short step keeps the metadata it started with.
 */
function mergedMetadata(start: object, end: object): { metadata?: Record<string, unknown> } {
  const from = (start as { metadata?: Record<string, unknown> }).metadata;
  const to = (end as { metadata?: Record<string, unknown> }).metadata;
  return from && to ? { metadata: { ...from, ...to } } : {};
}

/**
 * When an event alone is over the server's body limit, each of its payloads over this many
 * bytes of JSON is sent as the server stores one over its field limit (1 MiB by default).
 */
const SHRUNK_PAYLOAD_BYTES = 1024 * 1024;
/** The payloads of an event that may be sent truncated (an error must stay an error). */
const SHRINKABLE = ['input', 'output', 'metadata'] as const;

/**
 * `event` with each payload over `SHRUNK_PAYLOAD_BYTES` replaced by the marker the server
 * stores such a field as (its size and the start of its text), so the event is recorded, as
 * the server records one it is sent whole; `undefined` when none is that large.
 */
function shrunk(event: IngestEvent): IngestEvent | undefined {
  const kind = 'step' in event ? 'step' : 'score' in event ? 'score' : 'run';
  const fields = { ...(event as unknown as Record<string, Record<string, unknown>>)[kind] };
  let changed = false;
  for (const key of SHRINKABLE) {
    if (fields[key] === undefined) continue;
    const text = JSON.stringify(fields[key]);
    const size = Buffer.byteLength(text);
    if (size <= SHRUNK_PAYLOAD_BYTES) continue;
    fields[key] = truncatedJson(text, size, Math.floor((SHRUNK_PAYLOAD_BYTES - 256) / 3));
    changed = true;
  }
  return changed ? ({ ...event, [kind]: fields } as IngestEvent) : undefined;
}

interface Segment {
  /** Held in memory; `null` when only on disk (spooling past `maxQueue`). */
  events: IngestEvent[] | null;
  count: number;
  file: string | undefined;
}

let segmentCounter = 0;

/** `JSON.stringify(event)`, or `undefined` when JSON cannot write it. */
function jsonOf(event: IngestEvent): string | undefined {
  try {
    return JSON.stringify(event);
  } catch {
    return undefined;
  }
}

/** What one request to `/ingest` sends: the segments at the head of the queue, as JSON. */
interface Batch {
  segments: Segment[];
  body: JsonText;
  events: number;
  bytes: number;
}

/**
 * The fields without which an event is not worth sending: its ids and, for a score, what it
 * says and of what (a score without its value, or moved from its step to the whole run,
 * would record something the agent never said).
 */
const VITAL = new Set(['', 'id', 'run_id']);
const VITAL_TO_A_SCORE = new Set([...VITAL, 'name', 'value', 'step_id']);

/**
 * Batches recording events and sends them to `POST /ingest` in the background, one request
 * at a time and in order, each taking everything waiting (up to the server's limit), retrying with backoff and jitter on network errors, 429 and 5xx.
 * Nothing here ever throws into the agent: problems go to `onError`.
 *
 * A start event still waiting in the buffer when its end arrives is merged into one
 * complete event, so a short step costs one event, not two.
 */
export class Transport {
  private buffer: IngestEvent[] = [];
  private readonly openStarts = new Map<string, IngestEvent>();
  private readonly segments: Segment[] = [];
  private memoryEvents = 0;
  /** Bytes of the spool files this process holds, by file, and in all. */
  private spoolFiles = new Map<string, number>();
  private spoolBytes = 0;
  private spoolFullReported = false;
  private sending = false;
  /** Segments at the head of `segments` that the request under way carries. */
  private inFlight = 0;
  private exiting = false;
  private exitTried = false;
  /** Set at the process's normal exit: the last tries must be done by then. */
  private exitDeadline = 0;
  /** The exit's last tries are over: nothing starts sending again (the interval's cut). */
  private exitGaveUp = false;
  /** Aborts a retry under way, which does not hold the process: see `sendLoop`. */
  private unheldRetry: AbortController | undefined;
  private closed = false;
  private lossReported = false;
  private readonly timer: NodeJS.Timeout;
  private wakeSleep: (() => void) | undefined;
  /** A run's end waits in the buffer: it goes out without waiting for the interval. */
  private urgent = false;
  private hurrying = false;
  /** flush() callers, told whether everything was sent. */
  private idleWaiters: ((sent: boolean) => void)[] = [];
  /** `sent()` callers, by the segment whose leaving the queue they wait for. */
  private readonly segmentWaiters = new Map<Segment, (() => void)[]>();
  /** `sent()` callers waiting on what is still in the buffer. */
  private bufferWaiters: (() => void)[] = [];
  /**
   * The last request could not reach the server (a refused connection, a network error) or its
   * key was refused: the sender waits to try again, and a failing `run()` does not wait for it. A busy server's
   * 429 or 503 is not this: it takes the events after its Retry-After.
   */
  private unreachable = false;
  /**
   * A `sentSoon()` waited its whole time and the events did not go: the server keeps failing
   * (a 503 after 503, a proxy's 502). Until a request succeeds, failing runs do not wait.
   */
  private stalled = false;
  /** `sentSoon()` callers, told when a request fails (and the sender starts to wait). */
  private failWaiters: (() => void)[] = [];
  /** Bytes per request; lowered when the server answers 413. */
  private maxRequestBytes = MAX_REQUEST_BYTES;

  constructor(
    private readonly http: HttpClient,
    private readonly options: TransportOptions,
  ) {
    this.timer = setInterval(() => this.cut(), options.flushIntervalMs);
    this.timer.unref();
    if (options.spoolDir) this.replaySpool(options.spoolDir);
  }

  /** Events not yet acknowledged by the server. */
  get pending(): number {
    return this.buffer.length + this.segments.reduce((n, s) => n + s.count, 0);
  }

  /** Queues an event; `key` lets a later `end` merge into it while it is unsent. */
  push(event: IngestEvent, key?: string): void {
    if (this.closed) {
      this.options.onError(new RunlogError('runlog was shut down; event not recorded'));
      return;
    }
    // a run's start is checked where it is made (Runlog.run), so it is not refused there
    if (event.type !== 'run.start' && !this.recordable(event)) return;
    this.buffer.push(event);
    if (key !== undefined) this.openStarts.set(key, event);
    if (this.buffer.length >= this.options.batchSize) this.cut();
    // past maxQueue the oldest go: without a spool each new event makes room at once; with
    // one, nothing is dropped and the buffer goes to disk a batch at a time, as before the
    // bound (a file per event would cost a synchronous write per event)
    else if (
      !this.options.spoolDir &&
      this.memoryEvents + this.buffer.length > this.options.maxQueue
    )
      this.cut();
  }

  /**
   * Sends what is buffered without waiting for the interval: on the next turn of the event
   * loop when nothing is being sent (events pushed meanwhile go along), else right after the
   * request under way, so a busy process still sends one request at a time, each carrying
   * everything that waited for it.
   */
  hurry(): void {
    this.urgent = true;
    if (this.sending || this.hurrying || this.closed) return;
    this.hurrying = true;
    setImmediate(() => {
      this.hurrying = false;
      if (this.urgent) this.cut();
    });
  }

  /**
   * Queues an end event, merged into its start when that is still in the buffer.
   * `fields` are the end's own fields (they win over the start's).
   */
  pushEnd(key: string, event: IngestEvent): void {
    if (!this.recordable(event)) return;
    const start = this.openStarts.get(key);
    if (start) {
      this.openStarts.delete(key);
      if ('run' in start && 'run' in event) {
        this.foldUpdates(start);
        start.type = event.type as typeof start.type;
        Object.assign(start.run, event.run, mergedMetadata(start.run, event.run));
        return;
      }
      if ('step' in start && 'step' in event) {
        start.type = event.type as typeof start.type;
        Object.assign(start.step, event.step, mergedMetadata(start.step, event.step));
        return;
      }
    }
    this.push(event);
  }

  /**
   * Folds the `run.update`s of a run queued after its still unsent start into that start, in
   * order, before the start becomes the run's end: the merged event goes where the start
   * was, ahead of them, and an update reaching an ended run only fills gaps (the server keeps
   * what a finished run has), so a short run would lose what its updates changed.
   */
  private foldUpdates(start: IngestEvent & { run: { id: string } }): void {
    const at = this.buffer.indexOf(start);
    if (at < 0) return;
    const run = start.run as { tags?: string[] };
    this.buffer = this.buffer.filter((e, i) => {
      if (i <= at || e.type !== 'run.update' || e.run.id !== start.run.id) return true;
      const tags = run.tags && e.run.tags ? [...new Set([...run.tags, ...e.run.tags])] : undefined;
      Object.assign(start.run, e.run, mergedMetadata(start.run, e.run), tags ? { tags } : {});
      return false;
    });
  }

  /** Tells `onError` of a problem with what the agent's code recorded. */
  report(err: Error): void {
    this.options.onError(err);
  }

  /**
   * Checks an event as the server will: a field it would refuse (a negative token count, a
   * name over its length, a NUL) is left out and reported to `onError`, so the rest of the
   * step or update is still recorded; an event whose ids are bad, or a score whose name,
   * value or step is, is dropped (`false`).
   */
  private recordable(event: IngestEvent): boolean {
    const checked = IngestEvent.safeParse(event);
    if (checked.success) {
      if ('step' in event) this.checkUsage(event.step);
      return true;
    }
    const fields: Record<string, unknown> =
      'step' in event ? event.step : 'score' in event ? event.score : event.run;
    const bad = new Set(checked.error.issues.map((i) => String(i.path[1] ?? '')));
    const problems = checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    const what =
      'step' in event
        ? `step ${event.step.id} of run ${event.step.run_id}`
        : 'score' in event
          ? `score ${event.score.name} of run ${event.score.run_id}`
          : `run ${event.run.id}`;
    const vital = 'score' in event ? VITAL_TO_A_SCORE : VITAL;
    if ([...bad].some((field) => vital.has(field))) {
      this.options.onError(new RunlogError(`${what} not recorded: ${problems.join('; ')}`));
      return false;
    }
    for (const field of bad) delete (fields as Record<string, unknown>)[field];
    this.options.onError(
      new RunlogError(`${what}: left out ${[...bad].join(', ')} (${problems.join('; ')})`),
    );
    return true;
  }

  /**
   * Tells `onError` of token counts that cannot be what they say: cached input tokens are
   * part of `input_tokens`, reasoning tokens part of `output_tokens`. Anthropic reports cache
   * reads beside its input tokens, so `cached_input_tokens` passed as it comes, over
   * `input_tokens`, would be priced low without a word. Recorded as given all the same.
   */
  private checkUsage(step: {
    id: string;
    run_id: string;
    input_tokens?: number | null | undefined;
    cached_input_tokens?: number | null | undefined;
    output_tokens?: number | null | undefined;
    reasoning_tokens?: number | null | undefined;
  }): void {
    const over = (part: number | null | undefined, whole: number | null | undefined) =>
      typeof part === 'number' && typeof whole === 'number' && part > whole;
    const problems: string[] = [];
    if (over(step.cached_input_tokens, step.input_tokens))
      problems.push(
        `cached_input_tokens (${step.cached_input_tokens}) is more than input_tokens (${step.input_tokens}), of which it is a part: with Anthropic's usage, add cache_read_input_tokens (and cache_creation_input_tokens) to input_tokens`,
      );
    if (over(step.reasoning_tokens, step.output_tokens))
      problems.push(
        `reasoning_tokens (${step.reasoning_tokens}) is more than output_tokens (${step.output_tokens}), of which it is a part`,
      );
    if (problems.length > 0)
      this.options.onError(
        new RunlogError(
          `step ${step.id} of run ${step.run_id}: ${problems.join('; ')}; its cost is counted from these figures`,
        ),
      );
  }

  /**
   * Sends what is queued now without waiting for the interval, and resolves once it has left
   * the queue or after `timeoutMs`; at once while the server cannot be reached or refuses the
   * key, so a caller never waits for what cannot go now. A busy server (429, 503) is waited
   * for: it takes the events after its Retry-After; but once a wait ran out with the server
   * still failing, no caller waits again until a request goes through. Unlike `flush()` it
   * does not cut a backoff short.
   */
  async sentSoon(timeoutMs: number): Promise<void> {
    if (this.closed || this.unreachable || this.stalled) return;
    const sent = this.sent();
    this.hurry();
    let timer: NodeJS.Timeout | undefined;
    let failed: (() => void) | undefined;
    await Promise.race([
      sent,
      new Promise<void>(
        (resolve) =>
          (timer = setTimeout(() => {
            this.stalled = true;
            resolve();
          }, timeoutMs)),
      ),
      // the server could not be reached (a refused connection): nothing will go for a while
      new Promise<void>((resolve) => this.failWaiters.push((failed = resolve))),
    ]);
    clearTimeout(timer);
    this.failWaiters = this.failWaiters.filter((w) => w !== failed);
  }

  /**
   * Sends everything queued so far; resolves `true` once the server has it, `false` when
   * `timeoutMs` passed first (what is left stays queued, or spooled).
   */
  async flush(timeoutMs = 10_000): Promise<boolean> {
    this.cut();
    if (this.segments.length === 0 && !this.sending) return true;
    this.wakeSleep?.();
    let timer: NodeJS.Timeout | undefined;
    const done = await Promise.race([
      new Promise<boolean>((resolve) => this.idleWaiters.push(resolve)),
      new Promise<boolean>((resolve) => {
        // not unref'd: whoever awaits a flush wants the process to wait for it
        timer = setTimeout(() => resolve(false), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    return done;
  }

  /**
   * Resolves once every event queued so far has left the queue: acknowledged by the server,
   * or given up on (and reported). Unlike `flush()` it sends nothing early and has no end.
   */
  sent(): Promise<void> {
    if (this.closed) return Promise.resolve();
    // what is buffered goes with its batch as usual: the waiter rides on the segment it becomes
    if (this.buffer.length > 0) return new Promise((resolve) => this.bufferWaiters.push(resolve));
    const last = this.segments.at(-1);
    if (!last) return Promise.resolve();
    return new Promise((resolve) => this.waitOn(last, [resolve]));
  }

  private waitOn(segment: Segment, waiters: (() => void)[]): void {
    const list = this.segmentWaiters.get(segment);
    if (list) list.push(...waiters);
    else this.segmentWaiters.set(segment, waiters);
  }

  /** A segment left the queue: whoever waits on it goes on. */
  private left(segment: Segment): void {
    const waiters = this.segmentWaiters.get(segment);
    if (!waiters) return;
    this.segmentWaiters.delete(segment);
    for (const done of waiters) done();
  }

  /** Flushes and stops; events still unsent stay in the spool (or are reported lost). */
  async close(timeoutMs = 5_000): Promise<void> {
    if (this.closed) return;
    const ok = await this.flush(timeoutMs);
    this.closed = true;
    clearInterval(this.timer);
    this.exiting = true;
    this.wakeSleep?.();
    if (!ok) this.reportLoss('shut down');
    for (const segment of [...this.segmentWaiters.keys()]) this.left(segment);
    for (const done of this.bufferWaiters.splice(0)) done();
  }

  /**
   * Reports, once, the events that will not reach the server; with `spoolDir` nothing is
   * lost (the next process sends them).
   */
  private reportLoss(when: string): void {
    if (this.options.spoolDir || this.lossReported || this.pending === 0) return;
    this.lossReported = true;
    this.options.onError(
      new RunlogError(
        `${when} with ${this.pending} ${this.pending === 1 ? 'event' : 'events'} unsent (no spoolDir set)`,
      ),
    );
  }

  /**
   * The process is exiting: try one more time, do not wait through backoffs. Only once: a
   * failed try empties the event loop again and Node emits `beforeExit` again, so trying
   * on every call would spin forever while the server is down.
   */
  beforeExit(): void {
    if (this.exitTried) return;
    this.exitTried = true;
    this.exiting = true;
    this.exitDeadline = Date.now() + this.options.exitTimeoutMs;
    // a retry under way did not hold the process: sent again, it does, for the exit's time
    this.unheldRetry?.abort(EXITING);
    this.cut();
    // a backoff pause does not hold the process: end it, the last try goes out now
    this.wakeSleep?.();
  }

  /**
   * The process is ending (`exit`: nothing asynchronous runs any more): writes what is
   * buffered to the spool, or reports what is lost without one.
   */
  onExit(): void {
    if (this.closed) return;
    this.exiting = true;
    this.spoolBuffer();
    this.reportLoss('the process exited');
  }

  /** Moves the buffer into segments (written to the spool first) and wakes the sender. */
  private cut(): void {
    this.urgent = false;
    this.spoolBuffer();
    if (!this.sending && !this.exitGaveUp && this.segments.length > 0) void this.sendLoop();
  }

  /** Moves the buffer into segments, written to the spool first when there is one. */
  private spoolBuffer(): void {
    if (this.buffer.length > 0) {
      const events = this.buffer;
      this.buffer = [];
      this.openStarts.clear();
      for (let i = 0; i < events.length; i += MAX_REQUEST_EVENTS) {
        const chunk = events.slice(i, i + MAX_REQUEST_EVENTS);
        const segment: Segment = { events: chunk, count: chunk.length, file: undefined };
        if (this.options.spoolDir) segment.file = this.writeSpool(chunk);
        this.segments.push(segment);
        this.memoryEvents += chunk.length;
      }
      if (this.bufferWaiters.length > 0) {
        this.waitOn(this.segments.at(-1)!, this.bufferWaiters);
        this.bufferWaiters = [];
      }
      this.bound();
    }
  }

  /** Keeps memory bounded: spooled segments go to disk only, unspooled ones are dropped. */
  private bound(): void {
    const max = this.options.maxQueue;
    let dropped = 0;
    // never touch the head, nor what is being sent
    const first = Math.max(1, this.inFlight);
    for (let i = this.segments.length - 1; i >= first && this.memoryEvents > max; i--) {
      const s = this.segments[i]!;
      if (s.file && s.events) {
        this.memoryEvents -= s.count;
        s.events = null;
      }
    }
    while (this.memoryEvents > max && this.segments.length > 1) {
      const idx = this.segments.findIndex((s, i) => i >= first && s.events !== null && !s.file);
      if (idx < 0) break;
      const [s] = this.segments.splice(idx, 1);
      this.memoryEvents -= s!.count;
      dropped += s!.count;
      this.left(s!);
    }
    if (dropped > 0)
      this.options.onError(
        new RunlogError(`event queue full (${max}): dropped the ${dropped} oldest events`),
      );
  }

  private async sendLoop(): Promise<void> {
    this.sending = true;
    let attempt = 0;
    try {
      // after close() nothing of ours goes out any more
      for (;;) {
        // what hurried in while the last request was under way goes in this one
        if (this.urgent) {
          this.urgent = false;
          this.spoolBuffer();
        }
        if (this.segments.length === 0 || this.closed) break;
        const batch = this.nextBatch();
        if (batch.events === 0) {
          this.dropSent(batch);
          continue;
        }
        this.inFlight = batch.segments.length;
        // A retry does not hold the process: when a script has ended while its server fails,
        // Node then says it is exiting (a backoff pause short enough ends before it does),
        // and beforeExit() sends it again at once with the exit's time instead of letting it
        // hold the process for a whole requestTimeoutMs more.
        const unheld = attempt > 0 && !this.exiting ? new AbortController() : undefined;
        this.unheldRetry = unheld;
        try {
          // events are keyed by ids: a resent batch changes nothing
          const res = await this.http.request<IngestResponse>(
            'POST',
            '/api/v1/ingest',
            batch.body,
            {
              idempotent: true,
              // at exit, a server that does not answer holds the process as long as the exit
              // allows, not a whole requestTimeoutMs more
              ...(this.exiting ? { timeoutMs: this.exitRequestMs() } : {}),
              ...(unheld ? { hold: false, signal: unheld.signal } : {}),
            },
          );
          this.unheldRetry = undefined;
          attempt = 0;
          this.unreachable = false;
          this.stalled = false;
          if (res.status === 207 && res.body?.results) {
            const bad = res.body.results.filter((r) => !r.ok);
            this.options.onError(
              new RunlogError(
                `Runlog rejected ${bad.length} events: ${bad
                  .slice(0, 3)
                  .map((r) => r.error?.message)
                  .join('; ')}`,
              ),
            );
          }
          this.dropSent(batch);
        } catch (err) {
          this.inFlight = 0;
          this.unheldRetry = undefined;
          // the process began to exit while the retry was under way: it goes again now
          if (err === EXITING) continue;
          if (tooLarge(err)) {
            if (batch.events > 1) {
              // smaller requests until they fit; the events all go, none is dropped for it
              this.maxRequestBytes = Math.max(1, Math.floor(batch.bytes / 2));
              continue;
            }
            // one event over the server's whole body limit: its large payloads go truncated,
            // as the server would store them, so its run or step still ends
            if (this.shrinkBatch(batch)) continue;
            // still over it: it alone is given up
            this.options.onError(
              new RunlogError(
                `dropped an event of ${batch.bytes} bytes, over the server's body limit (run ${
                  batch.segments[0]?.events?.[0] ? eventRunId(batch.segments[0].events[0]) : '?'
                })`,
              ),
            );
            this.dropSent(batch);
            continue;
          }
          const keep = isRetryable(err) || refusesKey(err);
          const retryAfterMs = err instanceof RunlogApiError ? err.retryAfterMs : undefined;
          let pause = keep ? backoffMs(attempt + 1, retryAfterMs) : 0;
          // at exit, only a busy or unreachable server is worth waiting for, not a refused key,
          // and until the exit's deadline: a pause past it is cut short for one last try there
          const waitAtExit = isRetryable(err) && Date.now() < this.exitDeadline;
          if (this.exiting) pause = Math.min(pause, Math.max(0, this.exitDeadline - Date.now()));
          if (keep && (!this.exiting || waitAtExit)) {
            attempt++;
            // the server cannot be reached (also behind a proxy answering 502 or 504), or
            // refuses the key: nothing will go for a while
            this.unreachable =
              err instanceof RunlogConnectionError || refusesKey(err) || gatewayFailed(err);
            if (this.unreachable)
              for (const stopWaiting of this.failWaiters.splice(0)) stopWaiting();
            if (attempt === 1 || attempt % 10 === 0) this.options.onError(err as Error);
            const notBefore = Date.now() + (retryAfterMs ?? 0);
            await this.sleep(pause, this.exiting);
            // a flush() cuts the backoff short, but never what the server asked for; the
            // process exiting waits for it only as long as its exit allows, then tries at once
            for (;;) {
              const left = notBefore - Date.now();
              if (this.closed || left <= 0) break;
              if (this.exiting && Date.now() + left > this.exitDeadline) break;
              await this.sleep(left, this.exiting);
            }
            continue;
          }
          if (keep) {
            // exiting: what is spooled is sent by the next process, the rest is lost
            this.exitGaveUp = true;
            this.options.onError(err as Error);
            this.reportLoss('the process is exiting');
            break;
          }
          this.options.onError(err as Error);
          this.dropSent(batch);
        }
      }
    } finally {
      this.sending = false;
      this.inFlight = 0;
      if (this.segments.length === 0 || this.exiting) {
        const sent = this.segments.length === 0;
        for (const w of this.idleWaiters.splice(0)) w(sent);
      }
    }
    if (this.segments.length > 0 && !this.exiting) void this.sendLoop();
  }

  /** How long a request at exit may take: what is left of `exitTimeoutMs`, or one short try. */
  private exitRequestMs(): number {
    const left = Math.max(EXIT_REQUEST_MIN_MS, this.exitDeadline - Date.now());
    return Math.min(this.http.options.timeoutMs, left);
  }

  /**
   * The next request: everything waiting at the head of the queue, up to the server's limit
   * of events and a sane body size (a segment holds at most that many events, so the first
   * one always fits). An event that cannot be written as JSON is left out and reported
   * rather than failing the request, and with it every healthy run of the batch.
   */
  private nextBatch(): Batch {
    const segments: Segment[] = [];
    const parts: string[] = [];
    let count = 0;
    let bytes = 0;
    for (let i = 0; i < this.segments.length; i++) {
      const segment = this.segments[i]!;
      const full = count + segment.count > MAX_REQUEST_EVENTS || bytes >= this.maxRequestBytes;
      if (segments.length > 0 && full) break;
      const events = segment.events ?? this.readSpool(segment.file!);
      const bad: IngestEvent[] = [];
      let taken = 0;
      for (const event of events) {
        const text = jsonOf(event);
        if (text === undefined) {
          bad.push(event);
          continue;
        }
        // a request holds at least one event, and stops before the byte limit
        if (parts.length > 0 && bytes + text.length > this.maxRequestBytes) break;
        parts.push(text);
        bytes += text.length;
        taken++;
      }
      if (bad.length > 0) this.dropBadEvents(segment, bad);
      if (taken + bad.length < events.length) {
        // the rest of this segment waits for the next request
        this.splitSegment(i, events, bad, taken);
        segments.push(segment);
        count += segment.count;
        break;
      }
      segments.push(segment);
      count += segment.count;
    }
    return {
      segments,
      body: new JsonText(`{"events":[${parts.join(',')}]}`),
      events: parts.length,
      bytes,
    };
  }

  /**
   * Cuts segment `i` after its first `keep` sendable events (of `events`, leaving out `bad`):
   * the rest becomes a segment of its own right behind it, in its own spool file.
   */
  private splitSegment(i: number, events: IngestEvent[], bad: IngestEvent[], keep: number): void {
    const segment = this.segments[i]!;
    const good = bad.length > 0 ? events.filter((e) => !bad.includes(e)) : events;
    const head = good.slice(0, keep);
    const tail = good.slice(keep);
    const rest: Segment = {
      events: segment.events ? tail : null,
      count: tail.length,
      file: undefined,
    };
    if (segment.file) {
      rest.file = this.writeSpool(tail);
      if (!rest.file) rest.events = tail; // the disk refused it: held in memory instead
      const rewritten = this.writeSpool(head);
      if (rewritten) {
        this.removeSpool(segment.file);
        segment.file = rewritten;
      }
    }
    if (segment.events) segment.events = head;
    else if (rest.events) this.memoryEvents += rest.count;
    segment.count = head.length;
    this.segments.splice(i + 1, 0, rest);
  }

  /**
   * Replaces the events of `batch` that have payloads over `SHRUNK_PAYLOAD_BYTES` with their
   * `shrunk` form, in memory and in the spool; `false` when none had.
   */
  private shrinkBatch(batch: Batch): boolean {
    let changed = false;
    for (const segment of batch.segments) {
      const events = segment.events ?? this.readSpool(segment.file!);
      let shrank = false;
      const next = events.map((e) => {
        const small = shrunk(e);
        if (small) shrank = true;
        return small ?? e;
      });
      if (!shrank) continue;
      changed = true;
      const file = segment.file ? this.writeSpool(next) : undefined;
      if (file) {
        this.removeSpool(segment.file!);
        segment.file = file;
      } else if (!segment.events) {
        // the disk refused the smaller copy: it is held in memory instead
        this.memoryEvents += segment.count;
      }
      if (segment.events || !file) segment.events = next;
    }
    return changed;
  }

  /** Leaves out of `segment` events JSON cannot write (snapshots make them rare) and says so. */
  private dropBadEvents(segment: Segment, bad: IngestEvent[]): void {
    if (segment.events) {
      segment.events = segment.events.filter((e) => !bad.includes(e));
      this.memoryEvents -= bad.length;
    }
    segment.count -= bad.length;
    const runs = [...new Set(bad.map(eventRunId))].join(', ');
    this.options.onError(
      new RunlogError(`dropped ${bad.length} events that cannot be sent as JSON (runs ${runs})`),
    );
  }

  /** Removes the segments a request carried (acknowledged or given up on). */
  private dropSent(batch: Batch): void {
    for (const segment of batch.segments) {
      const i = this.segments.indexOf(segment);
      if (i >= 0) this.segments.splice(i, 1);
      if (segment.events) this.memoryEvents -= segment.count;
      this.left(segment);
      if (segment.file) this.removeSpool(segment.file);
    }
    this.inFlight = 0;
  }

  /** A pause `flush()` and the exit can cut short; `hold`: it keeps the process alive. */
  private sleep(ms: number, hold = false): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      if (!hold) t.unref();
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wakeSleep = done;
    });
  }

  private writeSpool(events: IngestEvent[]): string | undefined {
    const dir = this.options.spoolDir!;
    const name = `${Date.now().toString().padStart(15, '0')}-${process.pid}-${(segmentCounter++)
      .toString()
      .padStart(8, '0')}.jsonl`;
    const file = join(dir, name);
    // an event JSON cannot write stays in memory only; the sender reports it
    const text =
      events
        .map(jsonOf)
        .filter((line) => line !== undefined)
        .join('\n') + '\n';
    const bytes = Buffer.byteLength(text);
    if (this.spoolBytes + bytes > this.options.spoolMaxBytes) {
      if (!this.spoolFullReported) {
        this.spoolFullReported = true;
        this.options.onError(
          new RunlogError(
            `spool full (spoolMaxBytes ${this.options.spoolMaxBytes}): new events are kept in memory only, and the oldest of them dropped past maxQueue, until the server takes what is spooled`,
          ),
        );
      }
      return undefined;
    }
    try {
      mkdirSync(dir, { recursive: true });
      writeFileSync(file, text);
    } catch (err) {
      this.options.onError(
        new RunlogError(`cannot write spool ${file}: ${(err as Error).message}`),
      );
      return undefined;
    }
    this.spoolFiles.set(file, bytes);
    this.spoolBytes += bytes;
    return file;
  }

  /** Deletes a spool file its events no longer need, and counts its bytes out. */
  private removeSpool(file: string): void {
    try {
      unlinkSync(file);
    } catch {
      // already gone
    }
    this.spoolBytes -= this.spoolFiles.get(file) ?? 0;
    this.spoolFiles.delete(file);
    if (this.spoolBytes < this.options.spoolMaxBytes) this.spoolFullReported = false;
  }

  private readSpool(file: string): IngestEvent[] {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return [];
    }
    const events: IngestEvent[] = [];
    for (const line of text.split('\n')) {
      if (!line) continue;
      try {
        events.push(JSON.parse(line) as IngestEvent);
      } catch {
        // a line cut short by a crash while writing
      }
    }
    return events;
  }

  /** Queues what an earlier process left in the spool, oldest first. */
  private replaySpool(dir: string): void {
    let names: string[];
    try {
      names = readdirSync(dir).filter((n) => n.endsWith('.jsonl'));
    } catch {
      return;
    }
    names.sort();
    for (const name of names) {
      const file = join(dir, name);
      const events = this.readSpool(file);
      if (events.length === 0) {
        try {
          unlinkSync(file);
        } catch {
          // already gone
        }
        continue;
      }
      const inMemory = this.memoryEvents + events.length <= this.options.maxQueue;
      this.segments.push({ events: inMemory ? events : null, count: events.length, file });
      try {
        const bytes = statSync(file).size;
        this.spoolFiles.set(file, bytes);
        this.spoolBytes += bytes;
      } catch {
        // gone meanwhile: it counts for nothing
      }
      if (inMemory) this.memoryEvents += events.length;
    }
    if (this.segments.length > 0) void this.sendLoop();
  }
}
