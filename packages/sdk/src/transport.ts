import { mkdirSync, readFileSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IngestEvent, IngestResponse } from '@runlog/core';
import { RunlogError, isRetryable, RunlogApiError } from './errors.js';
import { backoffMs, type HttpClient } from './http.js';

export interface TransportOptions {
  /** Send when this many events are waiting (default 100). */
  batchSize: number;
  /** Send at least this often while events wait, in ms (default 250). */
  flushIntervalMs: number;
  /** Most events held in memory; past it the oldest are dropped (default 10,000). */
  maxQueue: number;
  /** When set, unsent events are written here and survive outages and restarts. */
  spoolDir: string | undefined;
  onError: (err: Error) => void;
}

/** Events per request; the server takes up to 1000. */
const MAX_REQUEST_EVENTS = 500;

interface Segment {
  /** Held in memory; `null` when only on disk (spooling past `maxQueue`). */
  events: IngestEvent[] | null;
  count: number;
  file: string | undefined;
}

let segmentCounter = 0;

/**
 * Batches recording events and sends them to `POST /ingest` in the background, one request
 * at a time and in order, retrying with backoff and jitter on network errors, 429 and 5xx.
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
  private sending = false;
  private exiting = false;
  private exitTried = false;
  private closed = false;
  private readonly timer: NodeJS.Timeout;
  private wakeSleep: (() => void) | undefined;
  /** flush() callers, told whether everything was sent. */
  private idleWaiters: ((sent: boolean) => void)[] = [];

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
    this.buffer.push(event);
    if (key !== undefined) this.openStarts.set(key, event);
    if (this.buffer.length >= this.options.batchSize) this.cut();
    else if (this.memoryEvents + this.buffer.length > this.options.maxQueue) this.cut();
  }

  /**
   * Queues an end event, merged into its start when that is still in the buffer.
   * `fields` are the end's own fields (they win over the start's).
   */
  pushEnd(key: string, event: IngestEvent): void {
    const start = this.openStarts.get(key);
    if (start) {
      this.openStarts.delete(key);
      if ('run' in start && 'run' in event) {
        start.type = event.type as typeof start.type;
        Object.assign(start.run, event.run);
        return;
      }
      if ('step' in start && 'step' in event) {
        start.type = event.type as typeof start.type;
        Object.assign(start.step, event.step);
        return;
      }
    }
    this.push(event);
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

  /** Flushes and stops; events still unsent stay in the spool (or are reported lost). */
  async close(timeoutMs = 5_000): Promise<void> {
    if (this.closed) return;
    const ok = await this.flush(timeoutMs);
    this.closed = true;
    clearInterval(this.timer);
    this.exiting = true;
    this.wakeSleep?.();
    if (!ok && !this.options.spoolDir) {
      this.options.onError(
        new RunlogError(`shut down with ${this.pending} events unsent (no spoolDir set)`),
      );
    }
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
    this.cut();
  }

  /** Moves the buffer into segments (written to the spool first) and wakes the sender. */
  private cut(): void {
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
      this.bound();
    }
    if (!this.sending && this.segments.length > 0) void this.sendLoop();
  }

  /** Keeps memory bounded: spooled segments go to disk only, unspooled ones are dropped. */
  private bound(): void {
    const max = this.options.maxQueue;
    let dropped = 0;
    // never touch the head while it is being sent
    for (let i = this.segments.length - 1; i >= 1 && this.memoryEvents > max; i--) {
      const s = this.segments[i]!;
      if (s.file && s.events) {
        this.memoryEvents -= s.count;
        s.events = null;
      }
    }
    while (this.memoryEvents > max && this.segments.length > 1) {
      const idx = this.segments.findIndex((s, i) => i > 0 && s.events !== null && !s.file);
      if (idx < 0) break;
      const [s] = this.segments.splice(idx, 1);
      this.memoryEvents -= s!.count;
      dropped += s!.count;
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
      while (this.segments.length > 0) {
        const segment = this.segments[0]!;
        const events = segment.events ?? this.readSpool(segment.file!);
        if (events.length === 0) {
          this.dropHead(segment);
          continue;
        }
        try {
          // events are keyed by ids: a resent batch changes nothing
          const res = await this.http.request<IngestResponse>(
            'POST',
            '/api/v1/ingest',
            { events },
            { idempotent: true },
          );
          attempt = 0;
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
          this.dropHead(segment);
        } catch (err) {
          if (isRetryable(err) && !this.exiting) {
            attempt++;
            if (attempt === 1 || attempt % 10 === 0) this.options.onError(err as Error);
            const retryAfterMs = err instanceof RunlogApiError ? err.retryAfterMs : undefined;
            const notBefore = Date.now() + (retryAfterMs ?? 0);
            await this.sleep(backoffMs(attempt, retryAfterMs));
            // close() gave up waiting: no request of ours goes out after shutdown() returned
            if (this.closed) break;
            // a flush() cuts the backoff short, but never what the server asked for
            while (!this.closed && Date.now() < notBefore) await this.sleep(notBefore - Date.now());
            if (this.closed) break;
            continue;
          }
          if (isRetryable(err)) {
            // exiting: what is spooled is sent by the next process
            this.options.onError(err as Error);
            break;
          }
          this.options.onError(err as Error);
          this.dropHead(segment);
        }
      }
    } finally {
      this.sending = false;
      if (this.segments.length === 0 || this.exiting) {
        const sent = this.segments.length === 0;
        for (const w of this.idleWaiters.splice(0)) w(sent);
      }
    }
    if (this.segments.length > 0 && !this.exiting) void this.sendLoop();
  }

  private dropHead(segment: Segment): void {
    this.segments.shift();
    if (segment.events) this.memoryEvents -= segment.count;
    if (segment.file) {
      try {
        unlinkSync(segment.file);
      } catch {
        // already gone
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      t.unref();
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
    try {
      mkdirSync(dir, { recursive: true });
      writeFileSync(file, events.map((e) => JSON.stringify(e)).join('\n') + '\n');
      return file;
    } catch (err) {
      this.options.onError(
        new RunlogError(`cannot write spool ${file}: ${(err as Error).message}`),
      );
      return undefined;
    }
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
      if (inMemory) this.memoryEvents += events.length;
    }
    if (this.segments.length > 0) void this.sendLoop();
  }
}
