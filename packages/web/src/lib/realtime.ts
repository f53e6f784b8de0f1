import type { WsClientMessage, WsServerMessage } from '@runlog/core';
import { api, shownProjectId } from './api';

export type ConnectionState = 'connecting' | 'open' | 'reconnecting';

type MessageListener = (msg: WsServerMessage) => void;
type SubscribedListener = (topics: string[], confirmedAt: number) => void;

/**
 * One WebSocket to `/api/v1/ws` shared by the whole app. Topics are reference counted
 * (two components watching `runs` cost one subscription); after a lost connection it
 * reconnects with backoff, resubscribes, and tells `onReconnect` listeners to catch up.
 */
export class RealtimeClient {
  private ws: WebSocket | undefined;
  private readonly counts = new Map<string, number>();
  private readonly messageListeners = new Set<MessageListener>();
  private readonly reconnectListeners = new Set<() => void>();
  private readonly subscribedListeners = new Set<SubscribedListener>();
  private readonly stateListeners = new Set<() => void>();
  private state: ConnectionState = 'connecting';
  private attempt = 0;
  private opened = false;
  private running = false;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private pingTimer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly url: () => string,
    /**
     * Asks the API whether the session still holds, after a connection closed: a key or session
     * revoked meanwhile closes the socket (1008) or refuses the handshake, which a browser
     * does not explain. Its 401 sends the user to the login page (`onUnauthorized`).
     */
    private readonly checkSession: () => Promise<unknown> = () => Promise.resolve(),
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.connect();
  }

  stop(): void {
    this.running = false;
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    this.ws?.close();
    this.ws = undefined;
    this.opened = false;
    this.setState('connecting');
  }

  getState = (): ConnectionState => this.state;

  onState = (listener: () => void): (() => void) => {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  };

  onMessage(listener: MessageListener): () => void {
    this.messageListeners.add(listener);
    return () => this.messageListeners.delete(listener);
  }

  /** After a reconnect: messages may have been missed, so cached data must be refetched. */
  onReconnect(listener: () => void): () => void {
    this.reconnectListeners.add(listener);
    return () => this.reconnectListeners.delete(listener);
  }

  /**
   * When the server confirms topics; `confirmedAt` is when the confirmation came. Data read
   * before then may have missed an update: the server may have taken the subscription only
   * after the read, so an update committed between the two reached neither.
   */
  onSubscribed(listener: SubscribedListener): () => void {
    this.subscribedListeners.add(listener);
    return () => this.subscribedListeners.delete(listener);
  }

  /** Watches a topic until the returned function is called. */
  subscribe(topic: string): () => void {
    const n = this.counts.get(topic) ?? 0;
    this.counts.set(topic, n + 1);
    if (n === 0) this.send({ type: 'subscribe', topics: [topic] });
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const left = (this.counts.get(topic) ?? 1) - 1;
      if (left > 0) {
        this.counts.set(topic, left);
        return;
      }
      this.counts.delete(topic);
      this.send({ type: 'unsubscribe', topics: [topic] });
    };
  }

  private send(msg: WsClientMessage): void {
    if (this.ws?.readyState !== WebSocket.OPEN) return; // sent on (re)connect instead
    this.ws.send(JSON.stringify(msg));
  }

  private setState(state: ConnectionState): void {
    if (state === this.state) return;
    this.state = state;
    for (const l of this.stateListeners) l();
  }

  private connect(): void {
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.url());
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      const wasOpened = this.opened;
      this.opened = true;
      this.attempt = 0;
      this.setState('open');
      const topics = [...this.counts.keys()];
      if (topics.length > 0) this.send({ type: 'subscribe', topics });
      clearInterval(this.pingTimer);
      this.pingTimer = setInterval(() => this.send({ type: 'ping' }), 25_000);
      if (wasOpened) for (const l of this.reconnectListeners) l();
    };
    ws.onmessage = (event) => {
      if (this.ws !== ws || typeof event.data !== 'string') return;
      let msg: WsServerMessage;
      try {
        msg = JSON.parse(event.data) as WsServerMessage;
      } catch {
        return;
      }
      if (msg.type === 'subscribed') {
        const confirmedAt = Date.now();
        for (const l of this.subscribedListeners) l(msg.topics, confirmedAt);
      }
      for (const l of this.messageListeners) l(msg);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = undefined;
      clearInterval(this.pingTimer);
      if (!this.running) return;
      // the server down answers nothing here; a session that ended answers 401
      this.checkSession().catch(() => {});
      this.scheduleReconnect();
    };
    ws.onerror = () => {
      // onclose follows and schedules the retry
    };
  }

  private scheduleReconnect(): void {
    this.setState(this.opened ? 'reconnecting' : 'connecting');
    const delay = Math.min(10_000, 500 * 2 ** this.attempt) * (0.8 + Math.random() * 0.4);
    this.attempt += 1;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      if (this.running) this.connect();
    }, delay);
  }
}

export const realtime = new RealtimeClient(
  () => {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    // the project this page shows (a browser sets no headers on a WebSocket): refused when
    // the session is now another project's, whose updates must not reach this page
    const project = shownProjectId();
    return `${proto}//${location.host}/api/v1/ws${project === undefined ? '' : `?project=${encodeURIComponent(project)}`}`;
  },
  () => api('GET', '/session'),
);
