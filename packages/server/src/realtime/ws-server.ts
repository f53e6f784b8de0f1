import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import {
  TOPIC_PATTERN,
  WsClientMessage,
  assertNever,
  topics,
  PAYLOAD_FIELDS,
  truncatedJson,
  type Run,
  type WsServerMessage,
} from '@runlog/core';
import { isDatabaseUnavailable } from '../db/database.js';
import { INLINE_PAYLOAD_BYTES, PREVIEW_CHARS } from '../db/payloads.js';
import type { EventHub, HubEvent, HubTarget } from './hub.js';
import type { Metrics } from '../metrics/metrics.js';
import type { AuthContext } from '../http/route.js';
import { AppError, parse } from '../http/errors.js';

/** Bounds of the realtime server; tests lower them to reach them quickly. */
export interface RealtimeLimits {
  /** Most topics one connection may hold. */
  maxTopics: number;
  /** Above this many bytes waiting in a socket, updates are coalesced instead of sent. */
  softBufferBytes: number;
  /** Above this many bytes waiting in a socket, the client is dropped. */
  hardBufferBytes: number;
  /** Above this many coalesced updates waiting for one client, it is dropped. */
  maxPending: number;
  /**
   * Above this many bytes of coalesced updates waiting for one client, it is dropped: a
   * run's update carries its input and output (up to 1 MiB each), so a count alone let one
   * paused client hold gigabytes.
   */
  maxPendingBytes: number;
  /**
   * Most connections open at once with one key (a session counts as its key): each may hold
   * `maxTopics` topics and a backlog, so without a bound one key could open them by the
   * thousand. A dashboard tab or a `runlog runs tail` is one.
   */
  maxConnectionsPerKey: number;
  /** How often the server pings; a connection that has not answered the last ping ends. */
  heartbeatMs: number;
  /**
   * How often open connections' keys and sessions are checked again, so a key revoked on
   * another instance (or a session that expired) stops receiving updates; a revocation on
   * this instance closes its connections at once.
   */
  recheckMs: number;
  /** How often slow connections are checked for room to flush their pending updates. */
  drainPollMs: number;
  /** Largest client frame accepted. */
  maxFrameBytes: number;
  /** After a `close` a connection gets this long to finish before it is cut. */
  closeGraceMs: number;
}

export const DEFAULT_REALTIME_LIMITS: RealtimeLimits = {
  maxTopics: 1000,
  softBufferBytes: 1024 * 1024,
  hardBufferBytes: 8 * 1024 * 1024,
  maxPending: 10_000,
  maxPendingBytes: 16 * 1024 * 1024,
  maxConnectionsPerKey: 200,
  heartbeatMs: 30_000,
  recheckMs: 15_000,
  drainPollMs: 10,
  maxFrameBytes: 256 * 1024,
  closeGraceMs: 1000,
};

/** The path of the WebSocket endpoint. */
export const WS_PATH = '/api/v1/ws';

export type Authenticator = (request: IncomingMessage) => Promise<AuthContext | undefined>;

interface Outgoing {
  /** Coalescing key: topic, kind and run or step id. */
  key: string;
  msg: Buffer;
}

class Connection {
  readonly topics = new Set<string>();
  /**
   * Set while the client is slow: the newest message per (topic, run or step), in the
   * order of their latest update. A replaced entry moves to the end, so what is finally
   * sent is a subsequence of the live stream and never an older state after a newer one.
   */
  pending: Map<string, Buffer> | undefined;
  /** The bytes of the messages in `pending`. */
  pendingBytes = 0;
  alive = true;
  dropped = false;

  constructor(
    readonly ws: WebSocket,
    readonly projectId: string,
    /** The upgrade request, whose credentials are checked again while the connection lives. */
    readonly request: IncomingMessage,
  ) {}
}

/**
 * The WebSocket side of the event hub: authenticates upgrades, keeps each connection's
 * topics, and fans committed run and step changes out to the subscribers of their topics
 * within the change's project. Each message is serialised once per topic and the same
 * string goes to every subscriber; slow clients get coalesced updates and are dropped
 * past a bound.
 * @example const rt = new RealtimeServer(ctx.hub, ctx.metrics, authenticate); server.on('upgrade', (req, s, h) => rt.handleUpgrade(req, s, h));
 */
export class RealtimeServer {
  readonly limits: RealtimeLimits;
  private readonly wss: WebSocketServer;
  private readonly connections = new Set<Connection>();
  /** Subscribers by `projectId \0 topic`. */
  private readonly index = new Map<string, Set<Connection>>();
  private readonly slow = new Set<Connection>();
  /** Open connections per key id. */
  private readonly perKey = new Map<string, number>();
  private drainTimer: NodeJS.Timeout | undefined;
  private readonly heartbeatTimer: NodeJS.Timeout;
  /** Set while at least one client is connected: with none, the write path shapes no events. */
  private unsubscribeHub: (() => void) | undefined;
  private closing = false;
  private queue: HubEvent[] = [];
  private fanOutScheduled = false;
  private readonly countSent: (by?: number) => void;
  private readonly countDropped: (by?: number) => void;
  private readonly countCoalesced: (by?: number) => void;

  constructor(
    private readonly hub: EventHub,
    metrics: Metrics,
    private readonly authenticate: Authenticator,
    limits: Partial<RealtimeLimits> = {},
  ) {
    this.limits = { ...DEFAULT_REALTIME_LIMITS, ...limits };
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: this.limits.maxFrameBytes,
    });
    this.countSent = metrics.counter(
      'runlog_ws_messages_sent_total',
      'Realtime updates sent to WebSocket clients',
    );
    this.countDropped = metrics.counter(
      'runlog_ws_slow_clients_dropped_total',
      'WebSocket clients closed for not keeping up',
    );
    this.countCoalesced = metrics.counter(
      'runlog_ws_updates_coalesced_total',
      'Updates for slow clients replaced by a newer state before being sent',
    );
    metrics.gauge(
      'runlog_ws_connections',
      'Open WebSocket connections',
      () => this.connections.size,
    );
    this.heartbeatTimer = setInterval(() => this.heartbeat(), this.limits.heartbeatMs);
    this.heartbeatTimer.unref();
    this.recheckTimer = setInterval(() => void this.recheck(), this.limits.recheckMs);
    this.recheckTimer.unref();
  }

  private readonly recheckTimer: NodeJS.Timeout;
  private rechecking: Promise<void> | undefined;
  /** A recheck asked for while one ran: it may have checked a key before its revocation. */
  private recheckAgain: Promise<void> | undefined;

  /**
   * Authenticates every open connection's credentials again (once per distinct key or
   * session) and closes, with 1008, the connections whose credentials no longer hold. Asked
   * while a recheck runs, it runs once more after it (a second revocation folded into the
   * first's pass could otherwise wait for the periodic one).
   */
  recheck(): Promise<void> {
    if (this.rechecking) {
      this.recheckAgain ??= this.rechecking.then(() => {
        this.recheckAgain = undefined;
        return this.recheck();
      });
      return this.recheckAgain;
    }
    this.rechecking = (async () => {
      const byCredential = new Map<string, Connection[]>();
      for (const conn of this.connections) {
        const h = conn.request.headers;
        const credential = `${h.authorization ?? ''}\u0000${h.cookie ?? ''}`;
        const list = byCredential.get(credential);
        if (list) list.push(conn);
        else byCredential.set(credential, [conn]);
      }
      for (const conns of byCredential.values()) {
        let auth: AuthContext | undefined;
        try {
          auth = await this.authenticate(conns[0]!.request);
        } catch {
          continue; // the database did not answer: keep the connections, check next time
        }
        for (const conn of conns) {
          if (auth?.projectId === conn.projectId) continue;
          conn.ws.close(1008, 'the key or session of this connection is no longer valid');
        }
      }
    })().finally(() => (this.rechecking = undefined));
    return this.rechecking;
  }

  /** Open connections. */
  get connectionCount(): number {
    return this.connections.size;
  }

  /** Updates waiting for slow clients, over all connections. */
  get pendingCount(): number {
    let n = 0;
    for (const conn of this.slow) n += conn.pending?.size ?? 0;
    return n;
  }

  /** Handles an HTTP upgrade to `WS_PATH`: 401 without a valid key or session. */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => {});
    if (this.closing) {
      refuse(socket, 503, 'unavailable', 'the server is shutting down');
      return;
    }
    this.authenticate(request).then(
      (auth) => {
        if (!auth) {
          refuse(
            socket,
            401,
            'unauthorized',
            'a valid API key is required (Authorization: Bearer <key>) or a session cookie',
          );
          return;
        }
        if (this.closing || socket.destroyed) {
          refuse(socket, 503, 'unavailable', 'the server is shutting down');
          return;
        }
        if ((this.perKey.get(auth.keyId) ?? 0) >= this.limits.maxConnectionsPerKey) {
          refuse(
            socket,
            429,
            'rate_limited',
            `at most ${this.limits.maxConnectionsPerKey} open connections per key`,
          );
          return;
        }
        this.wss.handleUpgrade(request, socket, head, (ws) =>
          this.accept(ws, auth.projectId, request, auth.keyId),
        );
      },
      // the database not answering (restarting, a failover) is an outage to come back after,
      // as it is for every HTTP request, not a server fault
      (err: unknown) =>
        err instanceof AppError
          ? refuse(socket, err.status, err.code, err.message, undefined, err.details)
          : isDatabaseUnavailable(err)
            ? refuse(
                socket,
                503,
                'unavailable',
                'the database is not available right now; try again shortly',
                5,
              )
            : refuse(socket, 500, 'internal', 'internal error'),
    );
  }

  /** Closes every connection (1001) and stops; connections that do not finish in time are cut. */
  async close(): Promise<void> {
    this.closing = true;
    this.queue = [];
    this.unsubscribeHub?.();
    this.unsubscribeHub = undefined;
    clearInterval(this.heartbeatTimer);
    clearInterval(this.recheckTimer);
    this.stopDrainTimer();
    const open = [...this.connections];
    await Promise.all(
      open.map(
        (conn) =>
          new Promise<void>((resolve) => {
            if (conn.ws.readyState === WebSocket.CLOSED) return resolve();
            conn.ws.once('close', () => resolve());
            const cut = setTimeout(() => conn.ws.terminate(), this.limits.closeGraceMs);
            cut.unref();
            conn.ws.close(1001, 'server shutting down');
          }),
      ),
    );
    this.wss.close();
  }

  private accept(ws: WebSocket, projectId: string, request: IncomingMessage, keyId: string): void {
    const conn = new Connection(ws, projectId, request);
    this.connections.add(conn);
    this.perKey.set(keyId, (this.perKey.get(keyId) ?? 0) + 1);
    this.unsubscribeHub ??= this.hub.subscribe(
      (event) => this.publish(event),
      (target) => this.listensTo(target),
    );
    ws.on('error', () => {});
    ws.on('pong', () => (conn.alive = true));
    ws.on('message', (data, isBinary) => {
      conn.alive = true;
      this.onFrame(conn, data, isBinary);
    });
    ws.on('close', () => {
      this.forget(conn);
      this.connections.delete(conn);
      const left = (this.perKey.get(keyId) ?? 1) - 1;
      if (left > 0) this.perKey.set(keyId, left);
      else this.perKey.delete(keyId);
      if (this.connections.size === 0) {
        this.unsubscribeHub?.();
        this.unsubscribeHub = undefined;
      }
    });
  }

  private onFrame(conn: Connection, data: RawData, isBinary: boolean): void {
    try {
      if (isBinary) throw AppError.invalid('message', 'send JSON text frames');
      let value: unknown;
      try {
        value = JSON.parse(rawText(data));
      } catch {
        throw AppError.invalid('message', 'not valid JSON');
      }
      const msg = parse(WsClientMessage, value, 'message');
      switch (msg.type) {
        case 'ping':
          this.reply(conn, { type: 'pong' });
          return;
        case 'subscribe':
          this.subscribe(conn, msg.topics);
          return;
        case 'unsubscribe':
          this.unsubscribe(conn, msg.topics);
          return;
        default:
          assertNever(msg);
      }
    } catch (err) {
      const e = err instanceof AppError ? err : AppError.invalid('message', 'not understood');
      this.reply(conn, {
        type: 'error',
        // every error names what it is about, as the HTTP API's bodies do
        error: {
          code: e.code,
          message: e.message,
          details: e.details ?? [{ field: 'message', message: e.message }],
        },
      });
    }
  }

  private subscribe(conn: Connection, wanted: string[]): void {
    checkTopics(wanted);
    const fresh = [...new Set(wanted)].filter((t) => !conn.topics.has(t));
    if (conn.topics.size + fresh.length > this.limits.maxTopics) {
      throw AppError.invalid(
        'message.topics',
        `at most ${this.limits.maxTopics} topics per connection (${conn.topics.size} held)`,
      );
    }
    if (conn.dropped) return;
    for (const topic of fresh) {
      conn.topics.add(topic);
      const key = indexKey(conn.projectId, topic);
      let subs = this.index.get(key);
      if (!subs) {
        subs = new Set();
        this.index.set(key, subs);
      }
      subs.add(conn);
    }
    this.reply(conn, { type: 'subscribed', topics: [...new Set(wanted)] });
  }

  private unsubscribe(conn: Connection, unwanted: string[]): void {
    checkTopics(unwanted);
    const gone = new Set(unwanted);
    for (const topic of gone) {
      if (!conn.topics.delete(topic)) continue;
      this.unindex(conn, topic);
    }
    if (conn.pending) {
      for (const [key, msg] of conn.pending) {
        if (!gone.has(key.slice(0, key.indexOf('\u0000')))) continue;
        conn.pending.delete(key);
        conn.pendingBytes -= msg.length;
      }
    }
    this.reply(conn, { type: 'unsubscribed', topics: [...gone] });
  }

  /**
   * Answers a client's message. A client that sends and never reads would pile up answers
   * in its socket (a ping is a few bytes, its answer as many): past the hard bound it is
   * dropped, as for updates.
   */
  private reply(conn: Connection, msg: WsServerMessage): void {
    if (conn.ws.readyState !== WebSocket.OPEN) return;
    if (conn.ws.bufferedAmount > this.limits.hardBufferBytes) {
      this.drop(conn);
      return;
    }
    conn.ws.send(JSON.stringify(msg));
  }

  /**
   * Takes a committed change from the hub. The fan-out runs on the next turn of the event
   * loop, so the write path that published is not held up, and everything published in
   * one turn (a group commit) goes to each socket in one write.
   */
  private publish(event: HubEvent): void {
    if (this.connections.size === 0 || this.closing) return;
    this.queue.push(event);
    if (this.fanOutScheduled) return;
    this.fanOutScheduled = true;
    setImmediate(() => this.fanOut());
  }

  /** Whether a connection here subscribed to a topic another instance's change would reach. */
  private listensTo(t: HubTarget): boolean {
    const has = (topic: string) => this.index.has(indexKey(t.projectId, topic));
    if (t.kind === 'agent') return has(topics.agents) || has(topics.agent(t.agentId));
    if (has(topics.run(t.runId))) return true;
    if (t.kind !== 'run') return false;
    // a change announced without its agent may be for any agent topic
    return has(topics.runs) || t.agentId === undefined || has(topics.agent(t.agentId));
  }

  /** Sends queued changes to the subscribers of their topics in each change's project. */
  private fanOut(): void {
    this.fanOutScheduled = false;
    const events = this.queue;
    this.queue = [];
    const outbox = new Map<Connection, Outgoing[]>();
    const post = (projectId: string, topic: string, key: string, text: () => string) => {
      const subs = this.index.get(indexKey(projectId, topic));
      if (!subs || subs.size === 0) return;
      const msg = Buffer.from(text());
      const item: Outgoing = { key: `${topic}\u0000${key}`, msg };
      for (const conn of subs) {
        const list = outbox.get(conn);
        if (list) list.push(item);
        else outbox.set(conn, [item]);
      }
    };
    for (const event of events) {
      // routed by ids: the run or step is shaped only for a topic someone subscribed to
      if (event.kind === 'run') {
        let data: string | undefined;
        let listed: string | undefined;
        const own = topics.run(event.runId);
        for (const topic of [topics.runs, topics.agent(event.agentId), own]) {
          post(event.projectId, topic, `r\u0000${event.runId}`, () => {
            data ??= JSON.stringify(event.run);
            // the list topics carry what a list of runs carries: large fields as previews
            // (a run with a 500 KB input sent it to every dashboard tab on each update);
            // run:<id> carries the run whole
            const text = topic === own ? data : (listed ??= listForm(event.run, data));
            return `{"type":"run_update","topic":${JSON.stringify(topic)},"data":${text}}`;
          });
        }
      } else if (event.kind === 'agent') {
        // the agent's key: an update pending for a slow client is replaced by the newest
        const data = event.agent ? JSON.stringify(event.agent) : undefined;
        for (const topic of [topics.agents, topics.agent(event.agentId)]) {
          post(event.projectId, topic, `a\u0000${event.agentId}`, () =>
            data !== undefined
              ? `{"type":"agent_update","topic":${JSON.stringify(topic)},"data":${data}}`
              : `{"type":"agent_deleted","topic":${JSON.stringify(topic)},"data":${JSON.stringify({ id: event.agentId })}}`,
          );
        }
      } else if (event.kind === 'run_deleted') {
        // the run's key: a pending update of the run is replaced by its deletion, never sent after
        const data = JSON.stringify({ id: event.runId, agent_id: event.agentId });
        for (const topic of [topics.runs, topics.agent(event.agentId), topics.run(event.runId)]) {
          post(
            event.projectId,
            topic,
            `r\u0000${event.runId}`,
            () => `{"type":"run_deleted","topic":${JSON.stringify(topic)},"data":${data}}`,
          );
        }
      } else {
        const topic = topics.run(event.runId);
        post(
          event.projectId,
          topic,
          `s\u0000${event.stepId}`,
          () =>
            `{"type":"step_update","topic":${JSON.stringify(topic)},"data":${JSON.stringify(event.step)}}`,
        );
      }
    }
    for (const [conn, list] of outbox) {
      if (conn.pending) {
        // judged on what the client left unread, before this turn's updates: one commit's
        // updates (shared by every subscriber) may pass the bound alone, and a client reading
        // at full speed was dropped as too slow for them
        this.flush(conn);
        if (conn.dropped) continue;
        if (conn.pending && this.overBound(conn)) {
          this.drop(conn);
          continue;
        }
      }
      if (list.length === 1) {
        this.send(conn, list[0]!.msg, list[0]!.key);
        continue;
      }
      // ws has no public cork; its own sender corks this same socket around every frame
      const socket = (conn.ws as unknown as { _socket?: Socket })._socket;
      socket?.cork();
      for (const item of list) this.send(conn, item.msg, item.key);
      socket?.uncork();
    }
  }

  /** `msg` is encoded once and shared by every subscriber of its topic. */
  private send(conn: Connection, msg: Buffer, key: string): void {
    const pending = conn.pending;
    if (pending) {
      const older = pending.get(key);
      if (older) {
        pending.delete(key);
        conn.pendingBytes -= older.length;
        this.countCoalesced();
      }
      pending.set(key, msg);
      conn.pendingBytes += msg.length;
      return;
    }
    const ws = conn.ws;
    if (ws.readyState !== WebSocket.OPEN) return;
    const buffered = ws.bufferedAmount;
    if (buffered > this.limits.softBufferBytes) {
      if (buffered > this.limits.hardBufferBytes) {
        this.drop(conn);
        return;
      }
      conn.pending = new Map([[key, msg]]);
      conn.pendingBytes = msg.length;
      this.slow.add(conn);
      this.startDrainTimer();
      return;
    }
    ws.send(msg, TEXT);
    this.countSent();
  }

  /** Sends a slow connection's pending updates, oldest first, while its socket has room. */
  private flush(conn: Connection): void {
    const pending = conn.pending;
    const ws = conn.ws;
    if (!pending || ws.readyState !== WebSocket.OPEN) {
      conn.pending = undefined;
      conn.pendingBytes = 0;
      this.slow.delete(conn);
      return;
    }
    const buffered = ws.bufferedAmount;
    if (buffered > this.limits.hardBufferBytes) {
      this.drop(conn);
      return;
    }
    let sent = 0;
    while (pending.size > 0 && ws.bufferedAmount <= this.limits.softBufferBytes) {
      const first = pending.entries().next().value;
      if (!first) break;
      pending.delete(first[0]);
      conn.pendingBytes -= first[1].length;
      ws.send(first[1], TEXT);
      sent++;
    }
    if (sent > 0) this.countSent(sent);
    if (pending.size === 0) {
      conn.pending = undefined;
      this.slow.delete(conn);
    }
  }

  /** Whether a slow client's backlog is past the bound (in updates or in bytes). */
  private overBound(conn: Connection): boolean {
    return (
      (conn.pending?.size ?? 0) > this.limits.maxPending ||
      conn.pendingBytes > this.limits.maxPendingBytes
    );
  }

  /** Ends a client that cannot keep up, before its backlog grows the server's memory. */
  private drop(conn: Connection): void {
    if (conn.dropped) return;
    conn.dropped = true;
    this.countDropped();
    this.forget(conn);
    conn.ws.close(1013, 'too slow');
    // the close frame waits behind what the client has not read: cut it if it does not go out
    const cut = setTimeout(() => conn.ws.terminate(), this.limits.closeGraceMs);
    cut.unref();
  }

  /** Removes a connection from every topic and drops its backlog. */
  private forget(conn: Connection): void {
    for (const topic of conn.topics) this.unindex(conn, topic);
    conn.topics.clear();
    conn.pending = undefined;
    conn.pendingBytes = 0;
    this.slow.delete(conn);
  }

  private unindex(conn: Connection, topic: string): void {
    const key = indexKey(conn.projectId, topic);
    const subs = this.index.get(key);
    if (!subs) return;
    subs.delete(conn);
    if (subs.size === 0) this.index.delete(key);
  }

  private startDrainTimer(): void {
    if (this.drainTimer) return;
    this.drainTimer = setInterval(() => {
      for (const conn of this.slow) this.flush(conn);
      if (this.slow.size === 0) this.stopDrainTimer();
    }, this.limits.drainPollMs);
    this.drainTimer.unref();
  }

  private stopDrainTimer(): void {
    if (this.drainTimer) clearInterval(this.drainTimer);
    this.drainTimer = undefined;
  }

  /**
   * Ends connections that did not answer the previous ping and pings the rest; runs every
   * `heartbeatMs`.
   */
  heartbeat(): void {
    for (const conn of this.connections) {
      if (!conn.alive) {
        conn.ws.terminate();
        continue;
      }
      conn.alive = false;
      if (conn.ws.readyState === WebSocket.OPEN) conn.ws.ping();
    }
  }
}

const TEXT = { binary: false } as const;

function indexKey(projectId: string, topic: string): string {
  return `${projectId}\u0000${topic}`;
}

function checkTopics(list: string[]): void {
  const bad = list.findIndex((t) => !TOPIC_PATTERN.test(t));
  if (bad >= 0) {
    throw new AppError(
      'invalid_input',
      `message.topics.${bad}: not a topic (use "runs", "agents", "agent:<agent_id>" or "run:<run_id>")`,
      [{ field: `message.topics.${bad}`, message: 'not a topic' }],
    );
  }
}

/**
 * A run as the `runs` and `agent:<id>` topics send it, given its whole JSON: an input,
 * output, error or metadata over `INLINE_PAYLOAD_BYTES` of JSON text becomes the marker of a
 * truncated value with a preview, as in a page of runs past its budget. A run that small is
 * sent as it is.
 */
function listForm(run: Run, json: string): string {
  if (json.length <= INLINE_PAYLOAD_BYTES) return json;
  const listed: Record<string, unknown> = { ...run };
  for (const field of PAYLOAD_FIELDS) {
    const text = JSON.stringify(listed[field]);
    if (text === undefined || text.length <= INLINE_PAYLOAD_BYTES) continue;
    listed[field] = truncatedJson(text, Buffer.byteLength(text), PREVIEW_CHARS);
  }
  return JSON.stringify(listed);
}

function rawText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return data.toString('utf8');
}

/**
 * Answers an upgrade request with a plain HTTP error and the API's error body (and
 * `Retry-After`, when `retryAfterSeconds` is given), its `details` naming the field.
 */
export function refuse(
  socket: Duplex,
  status: number,
  code: string,
  message: string,
  retryAfterSeconds?: number,
  details: unknown[] = [],
): void {
  if (socket.destroyed) return;
  const body = JSON.stringify({ error: { code, message, details } });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
      'Content-Type: application/json; charset=utf-8\r\n' +
      (retryAfterSeconds !== undefined ? `Retry-After: ${retryAfterSeconds}\r\n` : '') +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      'Connection: close\r\n\r\n' +
      body,
  );
}
