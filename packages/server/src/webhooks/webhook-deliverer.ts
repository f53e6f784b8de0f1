import { createHmac } from 'node:crypto';
import { newId } from '@runlog/core';
import type { Db } from '../db/database.js';
import type { WebhookDeliveryRow, WebhookEndpointRow } from '../db/schema.js';
import type { Metrics } from '../metrics/metrics.js';
import { payloadOf, toWebhookDelivery } from './webhook-endpoints.js';
import type { WebhookTestResult } from '@runlog/core';

/**
 * The waits between a failed attempt and the next: 30 s, 2 min, 10 min, 1 h, 6 h, 16 h.
 * Seven attempts over about a day; after the last, the delivery is given up (`failed`).
 */
export const DEFAULT_WEBHOOK_RETRY_DELAYS_MS = [
  30_000,
  2 * 60_000,
  10 * 60_000,
  3_600_000,
  6 * 3_600_000,
  16 * 3_600_000,
];

/** How long an endpoint has to answer an attempt. */
export const DEFAULT_WEBHOOK_TIMEOUT_MS = 10_000;

/** The signature header's name; `t=<unix s>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. */
export const SIGNATURE_HEADER = 'Runlog-Signature';

/** Most characters of an endpoint's answer kept (in `last_error`, a test's answer). */
const ANSWER_KEPT = 1024;

export interface DelivererOptions {
  retryDelaysMs?: readonly number[];
  timeoutMs?: number;
  /** Most attempts under way at once on this instance. */
  maxInFlight?: number;
}

/** A claimed delivery with what its attempt needs. */
interface Claimed {
  row: WebhookDeliveryRow;
  url: string;
  secret: string;
}

/** What one attempt came to. */
interface AttemptResult {
  ok: boolean;
  statusCode: number | null;
  error: string | null;
  body: string | null;
  durationMs: number;
  /** Cut short by `stop`: the attempt does not count. */
  stopped: boolean;
}

/**
 * `t=<unix s>,v1=<hex>`: the HMAC-SHA256, keyed by the endpoint's secret, of
 * `<t>.<body>`. The SDK's `verifyWebhook` checks it.
 * @example signWebhook('whsec_...', '{"id":"..."}', Math.floor(Date.now() / 1000))
 */
export function signWebhook(secret: string, body: string, t: number): string {
  const mac = createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');
  return `t=${t},v1=${mac}`;
}

/**
 * Sends webhook deliveries: picks the due ones (`deliverDue`), posts each signed to its
 * endpoint, and records the outcome: delivered on a 2xx answer, else tried again after the
 * next of `retryDelaysMs`, and given up after the last. A pick claims its deliveries by
 * moving their `next_attempt_at` past the attempt's timeout in its own transaction (on
 * PostgreSQL with FOR UPDATE SKIP LOCKED), so with several instances each attempt is made
 * once; an instance that dies mid-attempt leaves its claims to lapse and be taken again.
 * Attempts run side by side: a slow or failing endpoint holds up no other.
 */
export class WebhookDeliverer {
  private readonly retryDelaysMs: readonly number[];
  private readonly timeoutMs: number;
  private readonly maxInFlight: number;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly stopping = new AbortController();
  private readonly count: Record<'delivered' | 'retrying' | 'failed', () => void>;

  constructor(
    private readonly db: Db,
    metrics: Metrics,
    options: DelivererOptions = {},
  ) {
    this.retryDelaysMs = options.retryDelaysMs ?? DEFAULT_WEBHOOK_RETRY_DELAYS_MS;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_WEBHOOK_TIMEOUT_MS;
    this.maxInFlight = options.maxInFlight ?? 32;
    const counter = (outcome: string) =>
      metrics.counter(
        'runlog_webhook_deliveries_total',
        'Webhook delivery attempts, by outcome: delivered, retrying (failed, tried again later), failed (given up)',
        { outcome },
      );
    this.count = {
      delivered: counter('delivered'),
      retrying: counter('retrying'),
      failed: counter('failed'),
    };
  }

  /**
   * Claims the deliveries due at `now` (as many as free attempt slots allow) and starts
   * their attempts; resolves once they are recorded. The background loop does not wait for
   * it (`start`); tests do.
   */
  async deliverDue(now = Date.now()): Promise<number> {
    const started = await this.startDue(now);
    await Promise.allSettled(started);
    return started.length;
  }

  /** Claims what is due and starts its attempts, without waiting for them. */
  private async startDue(now: number): Promise<Promise<void>[]> {
    const room = this.maxInFlight - this.inFlight.size;
    if (room <= 0 || this.stopping.signal.aborted) return [];
    const claimed = await this.claim(now, room);
    return claimed.map((c) => {
      const p = this.attempt(c).catch(() => {
        // the outcome could not be written (the database away): the claim lapses and the
        // delivery is tried again
      });
      this.inFlight.add(p);
      void p.finally(() => this.inFlight.delete(p));
      return p;
    });
  }

  /**
   * Every `intervalMs`, starts the due deliveries; `kick` looks at once (after a commit that
   * wrote some). Returns the stop: no more attempts start, those under way are cut short
   * and left pending, not counted, for the next start (or instance) to send.
   */
  start(intervalMs: number): () => Promise<void> {
    let running: Promise<unknown> | undefined;
    let again = false;
    const tick = () => {
      if (running) {
        again = true;
        return;
      }
      running = this.startDue(Date.now())
        .catch(() => {
          // the database away: the next tick tries again
        })
        .finally(() => {
          running = undefined;
          if (again && !this.stopping.signal.aborted) {
            again = false;
            tick();
          }
        });
    };
    this.kick = tick;
    const timer = setInterval(tick, intervalMs);
    timer.unref();
    return async () => {
      clearInterval(timer);
      this.kick = () => {};
      this.stopping.abort();
      await running;
      await Promise.allSettled([...this.inFlight]);
    };
  }

  /** Looks for due deliveries now (set by `start`; nothing before). */
  kick: () => void = () => {};

  /** Claims up to `max` due deliveries of enabled endpoints, oldest due first. */
  private async claim(now: number, max: number): Promise<Claimed[]> {
    const lease = now + this.timeoutMs + 60_000;
    return this.db.kysely.transaction().execute(async (trx) => {
      let pick = trx
        .selectFrom('webhook_deliveries as d')
        .innerJoin('webhook_endpoints as e', (j) =>
          j.onRef('e.project_id', '=', 'd.project_id').onRef('e.id', '=', 'd.webhook_id'),
        )
        .select(['d.project_id', 'd.id'])
        .where('d.status', '=', 'pending')
        .where('d.next_attempt_at', '<=', now)
        .where('e.enabled', '=', 1)
        .orderBy('d.next_attempt_at')
        .limit(max);
      if (this.db.dialect === 'postgres') pick = pick.forUpdate('d').skipLocked();
      const picked = await pick.execute();
      if (picked.length === 0) return [];
      const claimed: Claimed[] = [];
      const byProject = new Map<string, string[]>();
      for (const p of picked)
        byProject.set(p.project_id, [...(byProject.get(p.project_id) ?? []), p.id]);
      for (const [projectId, ids] of byProject) {
        await trx
          .updateTable('webhook_deliveries')
          .set((eb) => ({ next_attempt_at: lease, attempts: eb('attempts', '+', 1) }))
          .where('project_id', '=', projectId)
          .where('id', 'in', ids)
          .execute();
        const rows = await trx
          .selectFrom('webhook_deliveries as d')
          .innerJoin('webhook_endpoints as e', (j) =>
            j.onRef('e.project_id', '=', 'd.project_id').onRef('e.id', '=', 'd.webhook_id'),
          )
          .selectAll('d')
          .select(['e.url', 'e.secret'])
          .where('d.project_id', '=', projectId)
          .where('d.id', 'in', ids)
          .execute();
        for (const { url, secret, ...row } of rows) claimed.push({ row, url, secret });
      }
      return claimed;
    });
  }

  /** One attempt of a claimed delivery, and its outcome recorded. */
  private async attempt(c: Claimed): Promise<void> {
    const result = await this.post(c.url, c.secret, c.row.id, c.row.payload, this.stopping.signal);
    const now = Date.now();
    const { row } = c;
    const where = this.db.kysely
      .updateTable('webhook_deliveries')
      .where('project_id', '=', row.project_id)
      .where('id', '=', row.id)
      .where('status', '=', 'pending');
    if (result.stopped) {
      // shutting down: pending again, due at once, this attempt not counted
      await where
        .set((eb) => ({ next_attempt_at: now, attempts: eb('attempts', '-', 1) }))
        .execute();
      return;
    }
    if (result.ok) {
      await where
        .set({
          status: 'delivered',
          delivered_at: now,
          next_attempt_at: null,
          last_status_code: result.statusCode,
          last_error: null,
        })
        .execute();
      this.count.delivered();
      return;
    }
    const delay = this.retryDelaysMs[Number(row.attempts) - 1];
    const giveUp = delay === undefined;
    await where
      .set({
        status: giveUp ? 'failed' : 'pending',
        next_attempt_at: giveUp ? null : now + delay,
        last_status_code: result.statusCode,
        last_error: result.error,
      })
      .execute();
    (giveUp ? this.count.failed : this.count.retrying)();
  }

  /**
   * Sends a `ping` to an endpoint now and records it as a delivery (not retried): what
   * `POST /webhooks/:id/test` answers.
   */
  async sendTest(endpoint: WebhookEndpointRow): Promise<WebhookTestResult> {
    const id = newId();
    const at = Date.now();
    const body = JSON.stringify(
      payloadOf(id, 'ping', at, {
        webhook: { id: endpoint.id, url: endpoint.url, project_id: endpoint.project_id },
      }),
    );
    const result = await this.post(endpoint.url, endpoint.secret, id, body, undefined);
    const row: WebhookDeliveryRow = {
      project_id: endpoint.project_id,
      id,
      webhook_id: endpoint.id,
      event: 'ping',
      run_id: null,
      agent_id: null,
      payload: body,
      status: result.ok ? 'delivered' : 'failed',
      attempts: 1,
      next_attempt_at: null,
      last_status_code: result.statusCode,
      last_error: result.error,
      delivered_at: result.ok ? Date.now() : null,
      created_at: at,
    };
    await this.db.kysely.insertInto('webhook_deliveries').values(row).execute();
    return {
      ok: result.ok,
      status_code: result.statusCode,
      error: result.error,
      duration_ms: result.durationMs,
      response_body: result.body,
      delivery: toWebhookDelivery(row),
    };
  }

  /** Posts a signed body; never throws: a failure is the result's `error`. */
  private async post(
    url: string,
    secret: string,
    id: string,
    body: string,
    stop: AbortSignal | undefined,
  ): Promise<AttemptResult> {
    const started = Date.now();
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const signal = stop ? AbortSignal.any([timeout, stop]) : timeout;
    const done = (r: Omit<AttemptResult, 'durationMs' | 'stopped'>, stopped = false) => ({
      ...r,
      durationMs: Date.now() - started,
      stopped,
    });
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Runlog-Webhooks/1',
          'runlog-webhook-id': id,
          [SIGNATURE_HEADER.toLowerCase()]: signWebhook(secret, body, Math.floor(started / 1000)),
        },
        body,
        // a redirect is the endpoint's answer, not an address to post the event to
        redirect: 'manual',
        signal,
      });
      const text = await readSome(res, ANSWER_KEPT);
      const ok = res.status >= 200 && res.status < 300;
      return done({
        ok,
        statusCode: res.status,
        error: ok ? null : `HTTP ${res.status}${text ? `: ${text.slice(0, 200)}` : ''}`,
        body: text,
      });
    } catch (err) {
      const error = timeout.aborted
        ? `no answer within ${Math.round(this.timeoutMs / 1000)} s`
        : stop?.aborted
          ? 'cut short: the server stopped'
          : describeFetchError(err);
      return done(
        { ok: false, statusCode: null, error, body: null },
        stop?.aborted === true && !timeout.aborted,
      );
    }
  }
}

/** Up to `max` characters of an answer's body; the rest is not read. */
async function readSome(res: Response, max: number): Promise<string | null> {
  if (!res.body) return null;
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  try {
    while (text.length < max) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  return text === '' ? null : text.slice(0, max);
}

/** fetch's "fetch failed" says nothing: the cause (ECONNREFUSED, ENOTFOUND, a TLS error) does. */
function describeFetchError(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } } | null)?.cause;
  const message = cause?.message ?? (err instanceof Error ? err.message : String(err));
  const said = cause?.code && !message.includes(cause.code) ? `${cause.code}: ${message}` : message;
  return said.slice(0, 300);
}
