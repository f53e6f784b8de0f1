import http from 'node:http';
import https from 'node:https';
import { RunlogApiError, RunlogConnectionError } from './errors.js';

export interface HttpOptions {
  baseUrl: string;
  apiKey: string | undefined;
  /** Per-request timeout. */
  timeoutMs: number;
}

export interface HttpResponse<T> {
  status: number;
  body: T | undefined;
}

/** Parses `Retry-After` (seconds or an HTTP date) into milliseconds. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * Exponential backoff with full jitter, never shorter than what the server asked for.
 * @example backoffMs(3) // somewhere in [0, 2000)
 */
export function backoffMs(attempt: number, retryAfterMs?: number, baseMs = 250, maxMs = 30_000) {
  const cap = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  const jittered = Math.random() * cap;
  return retryAfterMs !== undefined ? Math.max(retryAfterMs, jittered) : jittered;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS']);

/** A request body already serialised as JSON, sent as it is. */
export class JsonText {
  constructor(readonly text: string) {}
}

interface Exchange {
  req: http.ClientRequest;
  timer: NodeJS.Timeout;
}

/**
 * JSON over node:http(s) with the API key, on a keep-alive agent of its own; errors become
 * `RunlogApiError` / `RunlogConnectionError`. Not `fetch`: on Node 20 a fetch costs several
 * times the CPU of a plain request (web streams, request cloning), and the SDK sends many
 * small requests from the agent's own process.
 */
export class HttpClient {
  private readonly url: URL;
  private readonly agent: http.Agent;
  private readonly send: typeof http.request;
  /** Requests under way, so `close()` can stop them holding the process. */
  private readonly exchanges = new Set<Exchange>();

  constructor(readonly options: HttpOptions) {
    this.url = new URL(options.baseUrl);
    const secure = this.url.protocol === 'https:';
    this.agent = new (secure ? https.Agent : http.Agent)({ keepAlive: true, maxSockets: 64 });
    this.send = secure ? https.request : http.request;
  }

  /**
   * Closes idle connections; requests still under way may finish but no longer keep the
   * process alive (nor do their timeouts). Later requests open new connections as usual.
   */
  close(): void {
    for (const sockets of Object.values(this.agent.freeSockets))
      for (const socket of sockets ?? []) socket.destroy();
    for (const { req, timer } of this.exchanges) {
      timer.unref();
      if (req.socket) req.socket.unref();
      else req.once('socket', (socket) => socket.unref());
    }
  }

  async request<T>(
    method: string,
    path: string,
    body?: unknown,
    init: {
      signal?: AbortSignal;
      timeoutMs?: number;
      /** Sending it twice changes nothing (ids in the body): it may be resent, see `exchange`. */
      idempotent?: boolean;
      /**
       * false: the request does not keep the process alive (nor does its timeout), as a
       * request under way after `close()`. Default true.
       */
      hold?: boolean;
    } = {},
  ): Promise<HttpResponse<T>> {
    init.signal?.throwIfAborted();
    const payload =
      body instanceof JsonText ? body.text : body !== undefined ? JSON.stringify(body) : undefined;
    let res: { status: number; headers: http.IncomingHttpHeaders; text: string };
    try {
      res = await this.exchange(
        method,
        path,
        payload,
        init.timeoutMs ?? this.options.timeoutMs,
        init.signal,
        init.idempotent ?? SAFE_METHODS.has(method),
        init.hold ?? true,
      );
    } catch (err) {
      if (init.signal?.aborted) throw init.signal.reason;
      const reason = (err as Error).message;
      throw new RunlogConnectionError(
        `cannot reach Runlog at ${this.options.baseUrl} (${method} ${path}): ${reason}`,
        { cause: err },
      );
    }
    let parsed: unknown;
    if (res.text) {
      try {
        parsed = JSON.parse(res.text) as unknown;
      } catch {
        parsed = undefined;
      }
    }
    if (res.status < 200 || res.status > 299) {
      const error = (parsed as { error?: { code?: string; message?: string; details?: unknown[] } })
        ?.error;
      const retryAfter = res.headers['retry-after'];
      throw new RunlogApiError(
        res.status,
        error?.code ?? (res.status >= 500 ? 'internal' : 'http_error'),
        error?.message ?? `${method} ${path} answered ${res.status}`,
        error?.details ?? [],
        parseRetryAfter(typeof retryAfter === 'string' ? retryAfter : null),
      );
    }
    return { status: res.status, body: parsed as T | undefined };
  }

  /**
   * One request and its whole answer. A kept-alive connection the server closed while idle
   * fails at once with ECONNRESET; an idempotent request is then sent again once on a new
   * connection (Node's documented pattern, `reusedSocket`). Others fail: a claim or a retry
   * the server did take must not be taken twice.
   */
  private exchange(
    method: string,
    path: string,
    payload: string | undefined,
    timeoutMs: number,
    signal: AbortSignal | undefined,
    resendable: boolean,
    hold: boolean,
    retried = false,
  ): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
    return new Promise((resolve, reject) => {
      const headers: http.OutgoingHttpHeaders = {};
      if (this.options.apiKey) headers.authorization = `Bearer ${this.options.apiKey}`;
      if (payload !== undefined) {
        headers['content-type'] = 'application/json';
        headers['content-length'] = Buffer.byteLength(payload);
      }
      const req = this.send(
        {
          protocol: this.url.protocol,
          hostname: this.url.hostname,
          port: this.url.port,
          path: this.url.pathname.replace(/\/$/, '') + path,
          method,
          headers,
          agent: this.agent,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            settle();
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              text: Buffer.concat(chunks).toString('utf8'),
            });
          });
          res.on('error', fail);
          res.on('close', () => {
            if (!res.complete) fail(new Error('connection lost reading the answer'));
          });
        },
      );
      const timer = setTimeout(() => req.destroy(new Error('timed out')), timeoutMs);
      if (!hold) {
        timer.unref();
        // a kept-alive socket is ref'd again by the agent when a later request reuses it
        req.once('socket', (socket) => socket.unref());
      }
      const exchange: Exchange = { req, timer };
      this.exchanges.add(exchange);
      const onAbort = () => req.destroy(new Error('aborted'));
      signal?.addEventListener('abort', onAbort, { once: true });
      const settle = () => {
        this.exchanges.delete(exchange);
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      function fail(err: Error) {
        settle();
        reject(err);
      }
      req.on('error', (err: NodeJS.ErrnoException) => {
        const reset = err.code === 'ECONNRESET' || err.code === 'EPIPE';
        if (resendable && !retried && req.reusedSocket && reset && !signal?.aborted) {
          settle();
          this.exchange(method, path, payload, timeoutMs, signal, true, hold, true).then(
            resolve,
            reject,
          );
          return;
        }
        fail(err);
      });
      req.end(payload);
    });
  }
}
