import { createHash } from 'node:crypto';
import type pg from 'pg';
import { newId, type RunStatus } from '@runlog/core';
import type { AppContext } from '../context.js';
import { onWorkerForgotten, workerForgottenElsewhere } from '../control/workers.service.js';
import type { Db } from '../db/database.js';
import type { AgentRow } from '../db/schema.js';
import { stepKeysIn } from '../db/dialect.js';
import { toRun, toStep } from '../runs/runs.mapper.js';
import { findAgent } from '../agents/agents.repository.js';
import { toAgent } from '../agents/agents.mapper.js';
import type { HubEvent, HubTarget } from './hub.js';

/** NOTIFY payloads must stay under 8000 bytes; keep a margin for the envelope. */
const MAX_PAYLOAD_BYTES = 7000;
const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 5000;
const LAST_SEEN_MAX = 20_000;
/**
 * After the LISTEN connection comes back, runs changed since it was lost (less this margin,
 * for clocks of other instances running behind) are read and delivered: NOTIFYs sent while
 * nobody listened are gone.
 */
const CATCH_UP_MARGIN_MS = 5_000;
const CATCH_UP_MAX_RUNS = 5_000;
/**
 * Most changes of other instances waiting to be read back. Past it this instance is too far
 * behind to read each: it forgets the runs and steps waiting (deletions stay) and catches up
 * on what changed since the backlog began, as after a lost LISTEN connection.
 */
export const INCOMING_MAX = 20_000;
/** How long after a failed read-back the bridge tries to catch up. */
const READ_RETRY_MS = 500;
/** A NOTIFY that fails is sent again after 0.5, 1, 2, 4 and 8 s, then given up. */
const NOTIFY_RETRY_MAX_MS = 8_000;
/**
 * How often the LISTEN connection is asked a `SELECT 1`, and how long it has to answer. An
 * idle connection whose peer went silent (a failover without a reset, a stalled proxy) says
 * nothing by itself: TCP keepalive finds it out only after hours, and until then no change of
 * another instance reaches this one.
 */
export const LISTEN_PING_MS = 15_000;

/**
 * One change as it travels between instances: ids only (NOTIFY payloads are small), the
 * receiver re-reads the committed row if a local listener wants it. `r`: [projectId, runId,
 * agentId] (the agent routes `agent:<id>`; instances before it sent no agent); `s`:
 * [projectId, runId, stepId].
 */
/** A change: a run (with its agent), a step, or a run deleted (with its agent: 'd'). */
type Ref =
  ['r', string, string, string?] | ['s', string, string, string] | ['d', string, string, string];

interface Envelope {
  /** The sending instance, so it can skip its own notifications. */
  i: string;
  e: Ref[];
  /** Set when the sender revoked a key or ended a session: drop cached credentials. */
  a?: 1;
  /** Projects whose model prices the sender changed: drop their cached prices. */
  p?: string[];
  /** Projects whose webhook endpoints the sender changed: drop their cached endpoints. */
  h?: string[];
  /** Workers the sender forgot ([projectId, workerId]): their next claim lists them again. */
  w?: [string, string][];
  /** Agents whose settings the sender changed or deleted ([projectId, agentId]). */
  g?: [string, string][];
}

/** The channel of a database (per schema, so instances on other schemas stay apart). */
export function channelName(schema: string | undefined): string {
  if (!schema) return 'runlog_events';
  const name = `runlog_events_${schema}`;
  // identifiers are cut at 63 bytes: keep long schema names apart with a hash
  return name.length <= 63
    ? name
    : `runlog_events_${createHash('sha256').update(schema).digest('hex').slice(0, 32)}`;
}

/** The NOTIFY payload telling other instances that credentials were revoked. */
function revocationPayload(sender: string): string {
  const envelope: Envelope = { i: sender, e: [], a: 1 };
  return JSON.stringify(envelope);
}

/**
 * Tells the server instances on `db` that a key was revoked or a session ended outside them
 * (`runlog keys revoke` writes the database directly), so they forget cached credentials at
 * once. Nothing to do on SQLite: its one server sees the file change (PRAGMA data_version).
 */
export async function announceRevocation(db: Db): Promise<void> {
  if (db.dialect !== 'postgres' || !db.pgPool) return;
  await notifyAll(db.pgPool, channelName(db.pgSchema), [revocationPayload(`cli-${newId()}`)]);
}

/** Sends NOTIFY payloads on `channel`, in the order given, in one statement. */
async function notifyAll(pool: pg.Pool, channel: string, payloads: string[]): Promise<void> {
  const calls = payloads.map((_, i) => `pg_notify($1, $${i + 2})`).join(', ');
  await pool.query(`SELECT ${calls}`, [channel, ...payloads]);
}

/**
 * Tells the server instances on `db` that runs were deleted outside them (`runlog cleanup`
 * writes the database directly), so their WebSocket subscribers get `run_deleted` as for a
 * deletion made by an instance. Nothing to do on SQLite: no server shares its process.
 */
export async function announceDeletedRuns(
  db: Db,
  runs: readonly { projectId: string; id: string; agentId: string }[],
): Promise<void> {
  if (db.dialect !== 'postgres' || !db.pgPool || runs.length === 0) return;
  const refs: Ref[] = runs.map((r) => ['d', r.projectId, r.id, r.agentId]);
  await notifyAll(db.pgPool, channelName(db.pgSchema), pack(`cli-${newId()}`, refs));
}

const bridges = new WeakMap<AppContext, PgHubBridge>();

/** The bridge `startHubBridge` started for a server instance, for tests. */
export function hubBridgeOf(ctx: AppContext): PgHubBridge | undefined {
  return bridges.get(ctx);
}

/**
 * On PostgreSQL, relays hub events between server instances over LISTEN/NOTIFY: local
 * publishes go out as ids (coalesced per tick), and other instances' ids that a local
 * listener wants (`EventHub.wants`) are read back from the database and delivered to it.
 */
export async function startHubBridge(ctx: AppContext): Promise<void> {
  const pool = ctx.db.pgPool;
  if (ctx.db.dialect !== 'postgres' || !pool) return;
  const bridge = new PgHubBridge(ctx, pool, channelName(ctx.db.pgSchema));
  bridges.set(ctx, bridge);
  await bridge.start();
  // after the requests in flight and the write path drained: what they commit while the
  // server shuts down is announced too (before, a rolling restart lost those updates on
  // the other instances' dashboards)
  ctx.onDrained.push(() => bridge.stop());
}

export class PgHubBridge {
  readonly instanceId = newId();
  private client: pg.PoolClient | undefined;
  private detach: (() => void) | undefined;
  private stopped = false;
  private backoffMs = BACKOFF_MIN_MS;
  private reconnectTimer: NodeJS.Timeout | undefined;
  /** When the LISTEN connection was lost, until a catch-up after the next LISTEN. */
  private lostAt: number | undefined;
  /**
   * When the LISTEN connection last heard everything: it was listening, or a ping sent then
   * was answered. A connection that goes silent is found out only a ping later, and the
   * NOTIFYs of that while are gone: a catch-up starts here, not when the loss was found out.
   */
  private aliveAt: number | undefined;
  /** Where the catch-up after failed read-backs starts, while one waits on its timer. */
  private retrySince: number | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  /** Ends the wait before a NOTIFY is sent again. */
  private wakeNotify: (() => void) | undefined;
  /** Outgoing refs of this tick, deduplicated. */
  private outgoing = new Map<string, Ref>();
  private sendScheduled = false;
  private sending: Promise<void> = Promise.resolve();
  /** Incoming refs not yet read back, deduplicated; read one batch at a time, in order. */
  private incoming = new Map<string, Ref>();
  /** When the oldest change waiting in `incoming` arrived (epoch ms). */
  private backlogSince: number | undefined;
  /** `INCOMING_MAX`, for tests. */
  incomingMax = INCOMING_MAX;
  /** `LISTEN_PING_MS`, for tests. */
  pingMs = LISTEN_PING_MS;
  /** The least wait before listening again after a lost connection, for tests. */
  reconnectMinMs = BACKOFF_MIN_MS;
  private catchingUp = false;
  private reading = false;
  private readDone: Promise<void> = Promise.resolve();
  /**
   * `updated_at` of the newest state of each recent run and step this instance delivered
   * (its own publishes included), so a read-back that raced a newer local write is not sent
   * after it.
   */
  private readonly lastSeen = new Map<string, number>();
  private unsubscribeHub: (() => void) | undefined;
  private unsubscribeAuth: (() => void) | undefined;
  private unsubscribePrices: (() => void) | undefined;
  private unsubscribeWebhooks: (() => void) | undefined;
  private unsubscribeWorkers: (() => void) | undefined;
  private readonly countIn: (by?: number) => void;
  private readonly countOut: (by?: number) => void;
  private readonly countSkipped: (by?: number) => void;
  private readonly countReads: (by?: number) => void;
  private readonly countOverflows: (by?: number) => void;

  constructor(
    private readonly ctx: AppContext,
    private readonly pool: pg.Pool,
    readonly channel: string,
  ) {
    this.countIn = ctx.metrics.counter(
      'runlog_bridge_events_received_total',
      'Changes from other server instances delivered to local subscribers',
    );
    this.countOut = ctx.metrics.counter(
      'runlog_bridge_notifies_total',
      'NOTIFY messages sent to other server instances',
    );
    this.countSkipped = ctx.metrics.counter(
      'runlog_bridge_changes_skipped_total',
      'Changes from other server instances not read back: no local listener wanted them',
    );
    this.countReads = ctx.metrics.counter(
      'runlog_bridge_reads_total',
      'Queries reading changes of other server instances back from the database',
    );
    this.countOverflows = ctx.metrics.counter(
      'runlog_bridge_backlog_overflows_total',
      'Times the changes of other instances waiting to be read back passed their bound: ' +
        'forgotten and caught up on instead',
    );
  }

  async start(): Promise<void> {
    this.ctx.hub.onPublish = (event) => this.enqueueOut(event);
    this.unsubscribeHub = this.ctx.hub.subscribe(
      (event) => {
        if (event.kind === 'run_deleted' || event.kind === 'agent') return;
        const key = seenKey(
          event.projectId,
          event.runId,
          event.kind === 'step' ? event.stepId : undefined,
        );
        this.lastSeen.delete(key);
        this.lastSeen.set(key, event.updatedAt);
        if (this.lastSeen.size > LAST_SEEN_MAX) {
          const oldest = this.lastSeen.keys().next().value;
          if (oldest !== undefined) this.lastSeen.delete(oldest);
        }
      },
      // bookkeeping of what was delivered: no remote change is read back for it alone
      () => false,
    );
    // a revocation here reaches the others at once, not after their credential cache lapses
    this.unsubscribeAuth = this.ctx.auth.onRevoke((origin) => {
      if (origin === 'local') void this.notify([revocationPayload(this.instanceId)]);
    });
    // so do price changes: the others price the next steps with the new prices
    this.unsubscribePrices = this.ctx.prices.onChange((projectId) => {
      const envelope: Envelope = { i: this.instanceId, e: [], p: [projectId] };
      void this.notify([JSON.stringify(envelope)]);
    });
    // and webhook endpoints: the others' write paths match ended runs against the new ones
    this.unsubscribeWebhooks = this.ctx.webhooks.onChange((projectId) => {
      const envelope: Envelope = { i: this.instanceId, e: [], h: [projectId] };
      void this.notify([JSON.stringify(envelope)]);
    });
    // and workers forgotten here: a claim of one on another instance lists it again at once
    this.unsubscribeWorkers = onWorkerForgotten(this.ctx, (projectId, workerId) => {
      const envelope: Envelope = { i: this.instanceId, e: [], w: [[projectId, workerId]] };
      void this.notify([JSON.stringify(envelope)]);
    });
    try {
      await this.listen();
    } catch {
      // the database may be restarting: keep trying in the background
      this.scheduleReconnect();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wakeNotify?.();
    this.ctx.hub.onPublish = undefined;
    this.unsubscribeHub?.();
    this.unsubscribeAuth?.();
    this.unsubscribePrices?.();
    this.unsubscribeWebhooks?.();
    this.unsubscribeWorkers?.();
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    await this.flushOut();
    await this.sending;
    await this.readDone;
    const client = this.client;
    this.client = undefined;
    if (client) {
      this.detach?.();
      try {
        await client.query(`UNLISTEN "${this.channel}"`);
        client.release();
      } catch (err) {
        client.release(err instanceof Error ? err : true);
      }
    }
  }

  private async listen(): Promise<void> {
    const client = await this.pool.connect();
    if (this.stopped) {
      client.release();
      return;
    }
    const onNotification = (msg: pg.Notification) => {
      if (msg.channel === this.channel && msg.payload) this.onNotification(msg.payload);
    };
    const onEnd = () => lost(new Error('connection ended'));
    const ping = setInterval(() => {
      let timer: NodeJS.Timeout | undefined;
      const silent = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('LISTEN connection not answering')), this.pingMs);
      });
      const sentAt = Date.now();
      void Promise.race([client.query('SELECT 1'), silent])
        .then(() => {
          if (this.client === client) this.aliveAt = Math.max(this.aliveAt ?? 0, sentAt);
        })
        .catch(lost)
        .finally(() => clearTimeout(timer));
    }, this.pingMs);
    ping.unref();
    const detach = () => {
      clearInterval(ping);
      client.off('error', lost);
      client.off('end', onEnd);
      client.off('notification', onNotification);
    };
    const lost = (err: unknown) => {
      if (this.client !== client) return;
      this.client = undefined;
      this.lostAt ??= this.aliveAt ?? Date.now();
      detach();
      // a broken client must not go back to the pool
      client.release(err instanceof Error ? err : true);
      this.scheduleReconnect();
    };
    client.on('error', lost);
    client.on('end', onEnd);
    client.on('notification', onNotification);
    this.client = client;
    this.detach = detach;
    const listenAt = Date.now();
    try {
      await client.query(`LISTEN "${this.channel}"`);
    } catch (err) {
      lost(err);
      return;
    }
    this.backoffMs = BACKOFF_MIN_MS;
    this.aliveAt = listenAt;
    if (this.lostAt !== undefined) {
      const since = this.lostAt - CATCH_UP_MARGIN_MS;
      this.lostAt = undefined;
      // a revocation may have gone by unheard too
      this.ctx.auth.forgetCached();
      if (!(await this.catchUp(since))) this.catchUpLater(since);
    }
  }

  /**
   * Queues for read-back the runs changed since `since` (newest last, at most
   * CATCH_UP_MAX_RUNS) that a local listener wants, and the steps changed since then of
   * those runs someone here watches (`run:<id>`), then the runs deleted since then: the
   * changes other instances announced while this one was not listening. A state this instance already delivered is skipped
   * as usual. `false` when the database did not answer.
   */
  private async catchUp(since: number): Promise<boolean> {
    let rows: { project_id: string; id: string; agent_id: string }[];
    let deleted: { project_id: string; run_id: string; agent_id: string | null }[];
    let agents: AgentRow[];
    // agents deleted meanwhile: of the deleted runs' agents, those gone
    const goneAgents: { project_id: string; agent_id: string }[] = [];
    const steps: { project_id: string; run_id: string; id: string }[] = [];
    try {
      const k = this.ctx.db.kysely;
      // deletions leave no row to read back: their NOTIFY, missed, is read from the ids they
      // hold (before, a run deleted meanwhile stayed on this instance's dashboards)
      deleted = await k
        .selectFrom('deleted_runs')
        .select(['project_id', 'run_id', 'agent_id'])
        .where('deleted_at', '>=', since)
        .orderBy('deleted_at')
        .limit(CATCH_UP_MAX_RUNS)
        .execute();
      // an agent deleted leaves no row: its runs' deletions name it (one that never ran
      // leaves nothing to read, and its subscribers learn of it at their next refresh)
      const byProject = new Map<string, Set<string>>();
      for (const row of deleted) {
        if (row.agent_id === null) continue;
        const ids = byProject.get(row.project_id) ?? new Set<string>();
        ids.add(row.agent_id);
        byProject.set(row.project_id, ids);
      }
      for (const [projectId, ids] of byProject) {
        const still = new Set(
          (
            await k
              .selectFrom('agents')
              .select('id')
              .where('project_id', '=', projectId)
              .where('id', 'in', [...ids])
              .execute()
          ).map((r) => r.id),
        );
        for (const id of ids)
          if (!still.has(id)) goneAgents.push({ project_id: projectId, agent_id: id });
      }
      // agents whose settings changed
      agents = await k
        .selectFrom('agents')
        .selectAll()
        .where('updated_at', '>=', since)
        .orderBy('updated_at')
        .limit(CATCH_UP_MAX_RUNS)
        .execute();
      rows = await k
        .selectFrom('runs')
        .select(['project_id', 'id', 'agent_id', 'updated_at'])
        .where('updated_at', '>=', since)
        .orderBy('updated_at', 'desc')
        .limit(CATCH_UP_MAX_RUNS)
        .execute();
      // a step's change moves its run's updated_at (its counts), so its run is among these
      const watched = rows.filter((r) =>
        this.ctx.hub.wants({
          kind: 'step',
          projectId: r.project_id,
          runId: r.id,
          agentId: undefined,
        }),
      );
      // one read per project for all its watched runs, not one per run
      const watchedOf = new Map<string, string[]>();
      for (const run of watched) {
        const ids = watchedOf.get(run.project_id);
        if (ids) ids.push(run.id);
        else watchedOf.set(run.project_id, [run.id]);
      }
      for (const [projectId, runIds] of watchedOf) {
        steps.push(
          ...(await k
            .selectFrom('steps')
            .select(['project_id', 'run_id', 'id'])
            .where('project_id', '=', projectId)
            .where('run_id', 'in', runIds)
            .where('updated_at', '>=', since)
            .orderBy('updated_at')
            .limit(CATCH_UP_MAX_RUNS)
            .execute()),
        );
      }
    } catch {
      // the database went away again: the caller catches up from as far back later
      return false;
    }
    // a catch-up is bounded itself (CATCH_UP_MAX_RUNS): it never overflows into another
    this.catchingUp = true;
    try {
      for (const step of steps) this.enqueueIn(['s', step.project_id, step.run_id, step.id]);
      for (const row of rows.reverse()) this.enqueueIn(['r', row.project_id, row.id, row.agent_id]);
      for (const row of deleted)
        if (row.agent_id !== null) this.enqueueIn(['d', row.project_id, row.run_id, row.agent_id]);
    } finally {
      this.catchingUp = false;
    }
    for (const row of agents) {
      const target = { kind: 'agent', projectId: row.project_id, agentId: row.id } as const;
      if (!this.ctx.hub.wants(target)) continue;
      this.countIn();
      this.ctx.hub.deliver({ ...target, agent: toAgent(row) });
    }
    for (const row of goneAgents) {
      const target = { kind: 'agent', projectId: row.project_id, agentId: row.agent_id } as const;
      if (!this.ctx.hub.wants(target)) continue;
      this.countIn();
      this.ctx.hub.deliver({ ...target, agent: null });
    }
    this.startReading();
    return true;
  }

  /**
   * Catches up from `since` once the database answers again, trying every
   * `READ_RETRY_MS`: for read-backs that failed while the LISTEN connection stayed up (a
   * lost LISTEN connection catches up when it is back).
   */
  private catchUpLater(since: number): void {
    this.retrySince = Math.min(this.retrySince ?? since, since);
    if (this.stopped || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      const from = this.retrySince;
      this.retrySince = undefined;
      if (from === undefined || this.stopped) return;
      void this.catchUp(from).then((done) => {
        if (!done) this.catchUpLater(from);
      });
    }, READ_RETRY_MS);
    this.retryTimer.unref();
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.reconnectTimer) return;
    const delay = Math.max(this.backoffMs, this.reconnectMinMs);
    this.backoffMs = Math.min(this.backoffMs * 2, BACKOFF_MAX_MS);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.listen().catch(() => this.scheduleReconnect());
    }, delay);
    this.reconnectTimer.unref();
  }

  // ---- outgoing -----------------------------------------------------------------------

  private enqueueOut(event: HubEvent): void {
    if (this.stopped) return;
    if (event.kind === 'agent') {
      // not a ref: the others read the agent back whole (few changes, made by hand)
      const envelope: Envelope = {
        i: this.instanceId,
        e: [],
        g: [[event.projectId, event.agentId]],
      };
      void this.notify([JSON.stringify(envelope)]);
      return;
    }
    const ref: Ref =
      event.kind === 'run'
        ? ['r', event.projectId, event.runId, event.agentId]
        : event.kind === 'run_deleted'
          ? ['d', event.projectId, event.runId, event.agentId]
          : ['s', event.projectId, event.runId, event.stepId];
    this.outgoing.set(JSON.stringify(ref), ref);
    if (this.sendScheduled) return;
    this.sendScheduled = true;
    // everything one commit publishes goes out in one NOTIFY
    setImmediate(() => void this.flushOut());
  }

  private flushOut(): Promise<void> {
    this.sendScheduled = false;
    if (this.outgoing.size === 0) return this.sending;
    const refs = [...this.outgoing.values()];
    this.outgoing = new Map();
    return this.notify(pack(this.instanceId, refs));
  }

  /** Sends NOTIFY payloads, one batch at a time, so batches leave in the order given. */
  private notify(payloads: string[]): Promise<void> {
    this.sending = this.sending.then(async () => {
      // a database that does not answer for a moment: sent again, in order, for a while (the
      // writes these announce committed); past that, other instances miss them
      for (let wait = READ_RETRY_MS; ; wait *= 2) {
        try {
          await notifyAll(this.pool, this.channel, payloads);
          this.countOut(payloads.length);
          return;
        } catch {
          if (this.stopped || wait > NOTIFY_RETRY_MAX_MS) return;
          // stop() ends the wait: a shutdown does not sit out the backoff
          await new Promise<void>((resolve) => {
            this.wakeNotify = resolve;
            setTimeout(resolve, wait).unref();
          });
          this.wakeNotify = undefined;
          if (this.stopped) return;
        }
      }
    });
    return this.sending;
  }

  // ---- incoming -----------------------------------------------------------------------

  private onNotification(payload: string): void {
    let envelope: Envelope;
    try {
      envelope = JSON.parse(payload) as Envelope;
    } catch {
      return;
    }
    if (envelope.i === this.instanceId || !Array.isArray(envelope.e)) return;
    if (envelope.a === 1) this.ctx.auth.forgetCached();
    if (Array.isArray(envelope.p))
      for (const projectId of envelope.p)
        if (typeof projectId === 'string') this.ctx.prices.invalidate(projectId, 'remote');
    if (Array.isArray(envelope.h))
      for (const projectId of envelope.h)
        if (typeof projectId === 'string') this.ctx.webhooks.invalidate(projectId, 'remote');
    if (Array.isArray(envelope.w))
      for (const worker of envelope.w)
        if (Array.isArray(worker) && typeof worker[0] === 'string' && typeof worker[1] === 'string')
          workerForgottenElsewhere(this.ctx, worker[0], worker[1]);
    if (Array.isArray(envelope.g))
      for (const agent of envelope.g)
        if (Array.isArray(agent) && typeof agent[0] === 'string' && typeof agent[1] === 'string')
          this.readAgent(agent[0], agent[1]);
    for (const ref of envelope.e) {
      if (!Array.isArray(ref) || (ref[0] !== 'r' && ref[0] !== 's' && ref[0] !== 'd')) continue;
      this.enqueueIn(ref);
    }
    this.startReading();
  }

  /** Agent read-backs, one after another: a newer change is never delivered before an older. */
  private agentReads: Promise<void> = Promise.resolve();

  /**
   * Reads back an agent another instance changed, when a local listener wants it, and
   * delivers it as it is now (null: deleted). Those changed while the LISTEN connection was
   * down are delivered by the catch-up (`catchUp`), but for deletions, which leave no row.
   */
  private readAgent(projectId: string, agentId: string): void {
    if (!this.ctx.hub.wants({ kind: 'agent', projectId, agentId })) {
      this.countSkipped();
      return;
    }
    this.agentReads = this.agentReads.then(async () => {
      try {
        this.countReads();
        const row = await findAgent(this.ctx.db, projectId, agentId);
        this.countIn();
        this.ctx.hub.deliver({
          kind: 'agent',
          projectId,
          agentId,
          agent: row ? toAgent(row) : null,
        });
      } catch {
        // the database went away: this change is missed, as one sent while not listening
      }
    });
  }

  /** Queues a change for read-back, unless no local listener wants it. */
  private enqueueIn(ref: Ref): void {
    if (!this.ctx.hub.wants(targetOf(ref))) {
      this.countSkipped();
      return;
    }
    const key = JSON.stringify(ref);
    // re-inserted at the end: read after whatever came before it
    this.incoming.delete(key);
    if (this.incoming.size === 0) this.backlogSince = Date.now();
    this.incoming.set(key, ref);
    if (this.incoming.size > this.incomingMax && !this.catchingUp) this.overflow();
  }

  /**
   * Too far behind to read each change back: the runs and steps waiting are forgotten (a
   * deletion stays: nothing in the database says it happened) and read again by a catch-up
   * from when the backlog began, which takes the latest state of each run at once.
   */
  private overflow(): void {
    this.countOverflows();
    const since = (this.backlogSince ?? Date.now()) - CATCH_UP_MARGIN_MS;
    for (const [key, ref] of this.incoming) if (ref[0] !== 'd') this.incoming.delete(key);
    this.backlogSince = this.incoming.size > 0 ? this.backlogSince : undefined;
    this.catchUpLater(since);
  }

  private startReading(): void {
    if (this.incoming.size === 0 || this.reading) return;
    this.reading = true;
    this.readDone = this.readLoop();
  }

  /**
   * Reads the notified rows back, one batch after another: each read starts after the
   * previous one ended, so a subscriber never gets an older state after a newer one.
   */
  private async readLoop(): Promise<void> {
    try {
      while (this.incoming.size > 0 && !this.stopped) {
        const batch = [...this.incoming.values()].slice(0, 500);
        for (const ref of batch) this.incoming.delete(JSON.stringify(ref));
        if (this.incoming.size === 0) this.backlogSince = undefined;
        try {
          await this.deliver(batch);
        } catch {
          // the database did not answer: these changes (and any others since) are read
          // again by a catch-up once it does, never silently dropped; from far enough back
          // for a NOTIFY another instance sent late, after its retries
          this.catchUpLater(Date.now() - CATCH_UP_MARGIN_MS - 2 * NOTIFY_RETRY_MAX_MS);
        }
      }
    } finally {
      this.reading = false;
    }
  }

  private async deliver(refs: Ref[]): Promise<void> {
    const k = this.ctx.db.kysely;
    const runsByProject = new Map<string, Set<string>>();
    const stepsByProject = new Map<string, { run_id: string; id: string }[]>();
    // nothing to read back: delivered after the reads of this batch, so after any state of
    // the run read in it
    const deleted: HubEvent[] = [];
    for (const ref of refs) {
      if (ref[0] === 'd') {
        deleted.push({ kind: 'run_deleted', projectId: ref[1], runId: ref[2], agentId: ref[3] });
      } else if (ref[0] === 'r') {
        let ids = runsByProject.get(ref[1]);
        if (!ids) runsByProject.set(ref[1], (ids = new Set()));
        ids.add(ref[2]);
      } else {
        let keys = stepsByProject.get(ref[1]);
        if (!keys) stepsByProject.set(ref[1], (keys = []));
        keys.push({ run_id: ref[2], id: ref[3] });
      }
    }
    const events: HubEvent[] = [];
    // steps first, as the writer publishes them
    for (const [projectId, keys] of stepsByProject) {
      const rows = await k
        .selectFrom('steps')
        .selectAll()
        .where('project_id', '=', projectId)
        .where(stepKeysIn(keys))
        .execute();
      this.countReads();
      for (const row of rows) {
        const seen = this.lastSeen.get(seenKey(projectId, row.run_id, row.id));
        if (seen !== undefined && row.updated_at < seen) continue;
        events.push({
          kind: 'step',
          projectId,
          runId: row.run_id,
          stepId: row.id,
          updatedAt: row.updated_at,
          step: toStep(row),
        });
      }
    }
    for (const [projectId, ids] of runsByProject) {
      const rows = await k
        .selectFrom('runs')
        .selectAll()
        .where('project_id', '=', projectId)
        .where('id', 'in', [...ids])
        .execute();
      this.countReads();
      for (const row of rows) {
        const seen = this.lastSeen.get(seenKey(projectId, row.id));
        if (seen !== undefined && row.updated_at < seen) continue;
        events.push({
          kind: 'run',
          projectId,
          runId: row.id,
          agentId: row.agent_id,
          status: row.status as RunStatus,
          updatedAt: row.updated_at,
          run: toRun(row),
        });
      }
    }
    events.push(...deleted);
    for (const event of events) this.ctx.hub.deliver(event);
    this.countIn(events.length);
  }
}

function targetOf(ref: Ref): HubTarget {
  return ref[0] !== 's'
    ? {
        kind: 'run',
        projectId: ref[1],
        runId: ref[2],
        agentId: typeof ref[3] === 'string' ? ref[3] : undefined,
      }
    : { kind: 'step', projectId: ref[1], runId: ref[2], agentId: undefined };
}

/** Splits refs into NOTIFY payloads under the size limit. */
function pack(instanceId: string, refs: Ref[]): string[] {
  const payloads: string[] = [];
  const head = `{"i":${JSON.stringify(instanceId)},"e":[`;
  let parts: string[] = [];
  let size = head.length + 2;
  for (const ref of refs) {
    const text = JSON.stringify(ref);
    const bytes = Buffer.byteLength(text) + 1;
    if (parts.length > 0 && size + bytes > MAX_PAYLOAD_BYTES) {
      payloads.push(`${head}${parts.join(',')}]}`);
      parts = [];
      size = head.length + 2;
    }
    parts.push(text);
    size += bytes;
  }
  if (parts.length > 0) payloads.push(`${head}${parts.join(',')}]}`);
  return payloads;
}

/** The `lastSeen` key of a run, or of one of its steps. */
function seenKey(projectId: string, runId: string, stepId?: string): string {
  return stepId === undefined
    ? `${projectId}\u0000${runId}`
    : `${projectId}\u0000${runId}\u0000${stepId}`;
}
