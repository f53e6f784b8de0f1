import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import {
  DEFAULT_WEBHOOK_EVENTS,
  WEBHOOK_EVENTS,
  isTerminalStatus,
  newId,
  toIso,
  webhookEventOf,
  type AgentWebhookEvent,
  type CreateWebhookBody,
  type CreatedWebhook,
  type PatchWebhookBody,
  type RunStatus,
  type WebhookDelivery,
  type WebhookDeliveryStatus,
  type WebhookEndpoint,
  type WebhookEvent,
} from '@runlog/core';
import type { Db } from '../db/database.js';
import type { Database, RunRow, WebhookDeliveryRow, WebhookEndpointRow } from '../db/schema.js';
import { toRun } from '../runs/runs.mapper.js';

/**
 * How long an instance trusts its cached endpoints of a project. A change made on this
 * instance drops them at once, and on PostgreSQL the bridge tells the other instances
 * (`onChange`); this bounds what a lost notification costs.
 */
const CACHE_TTL_MS = 30_000;

/** How many characters of a secret the API shows, to tell two apart: `whsec_` and 6 more. */
const SECRET_PREFIX_LENGTH = 12;

/** An enabled endpoint as the write path matches ended runs against it. */
interface Listener {
  id: string;
  events: ReadonlySet<string>;
  /** null: every agent. */
  agentIds: ReadonlySet<string> | null;
}

interface Entry {
  listeners: Listener[];
  expires: number;
}

/** The body of a delivery as the endpoint receives it. */
export interface WebhookPayload {
  id: string;
  type: WebhookEvent | 'ping';
  created_at: string;
  data: Record<string, unknown>;
}

/**
 * A project's webhook endpoints: stored, managed by the admin routes, and matched by the
 * write path against the runs each commit ends (`enqueueEnded`), which writes their
 * deliveries in that same transaction. The write path reads each project's enabled
 * endpoints from a cache, so a project without any costs one map lookup per ended run.
 */
export class WebhookEndpoints {
  private readonly cache = new Map<string, Entry>();
  /** Bumped by `invalidate`: a load that began before a change does not cache what it read. */
  private readonly generations = new Map<string, number>();
  private readonly listeners = new Set<(projectId: string) => void>();

  constructor(private readonly db: Db) {}

  /**
   * Writes, in `trx` (the transaction that ended them), one pending delivery per ended run
   * and enabled endpoint of its project that takes its event and agent. Answers how many.
   * `runs` are the runs that became terminal in this transaction: a run already terminal
   * that an event touches again (a replayed `run.end`) is not among them.
   */
  async enqueueEnded(
    trx: Kysely<Database>,
    runs: readonly RunRow[],
    /** The automatic retry a run's agent queued for it in the same transaction, if any. */
    retryOf: (run: RunRow) => RunRow | undefined = () => undefined,
    now = Date.now(),
  ) {
    if (runs.length === 0) return 0;
    const rows: WebhookDeliveryRow[] = [];
    for (const run of runs) {
      const status = run.status as RunStatus;
      if (!isTerminalStatus(status)) continue;
      const listeners = await this.listenersOf(trx, run.project_id);
      if (listeners.length === 0) continue;
      const event = webhookEventOf(status);
      let data: Record<string, unknown> | undefined;
      for (const l of listeners) {
        if (!l.events.has(event)) continue;
        if (l.agentIds && !l.agentIds.has(run.agent_id)) continue;
        data ??= { run: toRun(run), retry: retryData(retryOf(run)) };
        rows.push(deliveryRow(run.project_id, l.id, event, run.agent_id, run.id, data, now));
      }
    }
    await insertDeliveries(trx, rows);
    return rows.length;
  }

  /**
   * Writes, in `trx`, one pending delivery of an agent's `event` (`data` its body's `data`)
   * per enabled endpoint of the project that takes the event and the agent. Answers how many.
   */
  async enqueueAgentEvent(
    trx: Kysely<Database>,
    projectId: string,
    agentId: string,
    event: AgentWebhookEvent,
    data: Record<string, unknown>,
    now = Date.now(),
  ): Promise<number> {
    const rows: WebhookDeliveryRow[] = [];
    for (const l of await this.listenersOf(trx, projectId)) {
      if (!l.events.has(event)) continue;
      if (l.agentIds && !l.agentIds.has(agentId)) continue;
      rows.push(deliveryRow(projectId, l.id, event, agentId, null, data, now));
    }
    await insertDeliveries(trx, rows);
    return rows.length;
  }

  /** The project's enabled endpoints, from the cache or read in `trx`. */
  private async listenersOf(trx: Kysely<Database>, projectId: string): Promise<Listener[]> {
    const hit = this.cache.get(projectId);
    if (hit && hit.expires > Date.now()) return hit.listeners;
    const generation = this.generations.get(projectId) ?? 0;
    const rows = await trx
      .selectFrom('webhook_endpoints')
      .select(['id', 'events', 'agent_ids'])
      .where('project_id', '=', projectId)
      .where('enabled', '=', 1)
      .execute();
    const listeners = rows.map((r) => ({
      id: r.id,
      events: new Set(parseList(r.events)),
      agentIds: r.agent_ids === null ? null : new Set(parseList(r.agent_ids)),
    }));
    // a change committed meanwhile may not be in what this transaction read
    if ((this.generations.get(projectId) ?? 0) === generation)
      this.cache.set(projectId, { listeners, expires: Date.now() + CACHE_TTL_MS });
    return listeners;
  }

  /**
   * Drops a project's cached endpoints after they changed. A change made here (`origin`
   * 'local') is told to `onChange` listeners: on PostgreSQL, the bridge passes it to the other
   * instances, which drop theirs ('remote').
   */
  invalidate(projectId: string, origin: 'local' | 'remote' = 'local'): void {
    this.cache.delete(projectId);
    this.generations.set(projectId, (this.generations.get(projectId) ?? 0) + 1);
    if (origin === 'local') for (const listener of this.listeners) listener(projectId);
  }

  /** Calls `listener` with each project whose endpoints change here; returns the unsubscribe. */
  onChange(listener: (projectId: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // ---- management ---------------------------------------------------------------------

  async create(projectId: string, body: CreateWebhookBody): Promise<CreatedWebhook> {
    const now = Date.now();
    const row: WebhookEndpointRow = {
      project_id: projectId,
      id: newId(),
      url: body.url,
      description: body.description ?? null,
      events: JSON.stringify(normalEvents(body.events ?? DEFAULT_WEBHOOK_EVENTS)),
      agent_ids: body.agent_ids ? JSON.stringify([...new Set(body.agent_ids)]) : null,
      secret: `whsec_${randomBytes(32).toString('base64url')}`,
      enabled: body.enabled === false ? 0 : 1,
      created_at: now,
      updated_at: now,
    };
    await this.db.kysely.insertInto('webhook_endpoints').values(row).execute();
    this.invalidate(projectId);
    return { ...toWebhookEndpoint(row, null), secret: row.secret };
  }

  /** The project's endpoints, oldest first, each with its latest delivery. */
  async list(projectId: string): Promise<WebhookEndpoint[]> {
    const rows = await this.db.kysely
      .selectFrom('webhook_endpoints')
      .selectAll()
      .where('project_id', '=', projectId)
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    const out: WebhookEndpoint[] = [];
    for (const row of rows) out.push(toWebhookEndpoint(row, await this.lastDelivery(row)));
    return out;
  }

  /** An endpoint with its latest delivery; undefined when the project has none of that id. */
  async get(projectId: string, id: string): Promise<WebhookEndpoint | undefined> {
    const row = await this.findRow(projectId, id);
    return row && toWebhookEndpoint(row, await this.lastDelivery(row));
  }

  /** The stored endpoint, secret included (the deliverer signs with it). */
  findRow(projectId: string, id: string): Promise<WebhookEndpointRow | undefined> {
    return this.db.kysely
      .selectFrom('webhook_endpoints')
      .selectAll()
      .where('project_id', '=', projectId)
      .where('id', '=', id)
      .executeTakeFirst();
  }

  async update(
    projectId: string,
    id: string,
    patch: PatchWebhookBody,
  ): Promise<WebhookEndpoint | undefined> {
    const set: Partial<WebhookEndpointRow> = {};
    if (patch.url !== undefined) set.url = patch.url;
    if (patch.events !== undefined) set.events = JSON.stringify(normalEvents(patch.events));
    if (patch.agent_ids !== undefined)
      set.agent_ids =
        patch.agent_ids === null ? null : JSON.stringify([...new Set(patch.agent_ids)]);
    if (patch.description !== undefined) set.description = patch.description;
    if (patch.enabled !== undefined) set.enabled = patch.enabled ? 1 : 0;
    if (Object.keys(set).length > 0) {
      const res = await this.db.kysely
        .updateTable('webhook_endpoints')
        .set({ ...set, updated_at: Date.now() })
        .where('project_id', '=', projectId)
        .where('id', '=', id)
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) === 0) return undefined;
      this.invalidate(projectId);
    }
    return this.get(projectId, id);
  }

  /** Deletes an endpoint and its deliveries; false when there is none of that id. */
  async delete(projectId: string, id: string): Promise<boolean> {
    const gone = await this.db.kysely.transaction().execute(async (trx) => {
      await trx
        .deleteFrom('webhook_deliveries')
        .where('project_id', '=', projectId)
        .where('webhook_id', '=', id)
        .execute();
      const res = await trx
        .deleteFrom('webhook_endpoints')
        .where('project_id', '=', projectId)
        .where('id', '=', id)
        .executeTakeFirst();
      return Number(res.numDeletedRows) > 0;
    });
    if (gone) this.invalidate(projectId);
    return gone;
  }

  /** An endpoint's deliveries, newest first. */
  async deliveries(
    projectId: string,
    id: string,
    opts: { limit: number; status?: WebhookDeliveryStatus | undefined },
  ): Promise<WebhookDelivery[]> {
    let q = this.db.kysely
      .selectFrom('webhook_deliveries')
      .selectAll()
      .where('project_id', '=', projectId)
      .where('webhook_id', '=', id);
    if (opts.status) q = q.where('status', '=', opts.status);
    const rows = await q
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(opts.limit)
      .execute();
    return rows.map(toWebhookDelivery);
  }

  /**
   * Sends a delivery again: pending, due now, with a whole retry schedule ahead of it (its
   * attempts counted from 0). Undefined when the endpoint has no delivery of that id.
   */
  async redeliver(
    projectId: string,
    webhookId: string,
    id: string,
  ): Promise<WebhookDelivery | undefined> {
    const now = Date.now();
    const res = await this.db.kysely
      .updateTable('webhook_deliveries')
      .set({ status: 'pending', next_attempt_at: now, attempts: 0, delivered_at: null })
      .where('project_id', '=', projectId)
      .where('webhook_id', '=', webhookId)
      .where('id', '=', id)
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) return undefined;
    const row = await this.db.kysely
      .selectFrom('webhook_deliveries')
      .selectAll()
      .where('project_id', '=', projectId)
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    return toWebhookDelivery(row);
  }

  private async lastDelivery(row: WebhookEndpointRow): Promise<WebhookDeliveryRow | null> {
    const last = await this.db.kysely
      .selectFrom('webhook_deliveries')
      .selectAll()
      .where('project_id', '=', row.project_id)
      .where('webhook_id', '=', row.id)
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirst();
    return last ?? null;
  }
}

/**
 * What a delivery says of the retry its run's agent queued for it (`retry` policy): its id,
 * attempt and when a worker may take it; null when none was queued, so a receiver can alert
 * only on a failure that will not be tried again.
 */
function retryData(retry: RunRow | undefined) {
  if (!retry) return null;
  return { id: retry.id, attempt: retry.attempt, queued_at: toIso(retry.queued_at) };
}

/** The body of a delivery: the same for every attempt, so its signature's subject too. */
export function payloadOf(
  id: string,
  type: WebhookPayload['type'],
  at: number,
  data: Record<string, unknown>,
): WebhookPayload {
  return { id, type, created_at: toIso(at), data };
}

/** Events in their canonical order (`WEBHOOK_EVENTS`), each once. */
function normalEvents(events: readonly WebhookEvent[]): WebhookEvent[] {
  const want = new Set(events);
  return WEBHOOK_EVENTS.filter((e) => want.has(e));
}

/** A pending delivery of `event` to endpoint `webhookId`, its body built now. */
function deliveryRow(
  projectId: string,
  webhookId: string,
  event: WebhookEvent,
  agentId: string,
  runId: string | null,
  data: Record<string, unknown>,
  now: number,
): WebhookDeliveryRow {
  const id = newId();
  return {
    project_id: projectId,
    id,
    webhook_id: webhookId,
    event,
    run_id: runId,
    agent_id: agentId,
    payload: JSON.stringify(payloadOf(id, event, now, data)),
    status: 'pending',
    attempts: 0,
    next_attempt_at: now,
    last_status_code: null,
    last_error: null,
    delivered_at: null,
    created_at: now,
  };
}

async function insertDeliveries(
  trx: Kysely<Database>,
  rows: readonly WebhookDeliveryRow[],
): Promise<void> {
  for (let i = 0; i < rows.length; i += 200)
    await trx
      .insertInto('webhook_deliveries')
      .values(rows.slice(i, i + 200))
      .execute();
}

function parseList(text: string): string[] {
  const value: unknown = JSON.parse(text);
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

export function toWebhookEndpoint(
  row: WebhookEndpointRow,
  last: WebhookDeliveryRow | null,
): WebhookEndpoint {
  return {
    id: row.id,
    project_id: row.project_id,
    url: row.url,
    description: row.description,
    events: parseList(row.events) as WebhookEvent[],
    agent_ids: row.agent_ids === null ? null : parseList(row.agent_ids),
    enabled: row.enabled === 1,
    secret_prefix: row.secret.slice(0, SECRET_PREFIX_LENGTH),
    created_at: toIso(row.created_at),
    updated_at: toIso(row.updated_at),
    last_delivery: last && {
      status: last.status as WebhookDeliveryStatus,
      event: last.event,
      status_code: last.last_status_code,
      at: toIso(last.delivered_at ?? last.created_at),
    },
  };
}

export function toWebhookDelivery(row: WebhookDeliveryRow): WebhookDelivery {
  return {
    id: row.id,
    webhook_id: row.webhook_id,
    event: row.event,
    run_id: row.run_id,
    agent_id: row.agent_id,
    status: row.status as WebhookDeliveryStatus,
    attempts: Number(row.attempts),
    last_status_code: row.last_status_code,
    last_error: row.last_error,
    next_attempt_at:
      row.status === 'pending' && row.next_attempt_at !== null ? toIso(row.next_attempt_at) : null,
    delivered_at: row.delivered_at === null ? null : toIso(row.delivered_at),
    created_at: toIso(row.created_at),
  };
}
