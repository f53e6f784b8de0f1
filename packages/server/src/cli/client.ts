import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as NodeWebStream } from 'node:stream/web';
import WebSocket from 'ws';
import { SENDABLE_KEY } from '@runlog/core';

/** A failure the CLI reports as one line; `exitCode` 2 means bad usage. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: 1 | 2 = 1,
    /** The server is away for now (down, restarting): trying again later may work. */
    readonly transient = false,
    /** The HTTP status the server answered, when it answered with an error. */
    readonly status?: number,
    /** The fields a 400 named (`{field, message}`), as the server's error details give them. */
    readonly details?: readonly { field: string; message: string }[],
    /** The server's error code (`not_found`, `conflict`, ...), when it answered with one. */
    readonly code?: string,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export const DEFAULT_URL = 'http://127.0.0.1:4680';

/** An answer's text as JSON; undefined for none or for text that is not JSON. */
function parsedJson(text: string): unknown {
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return undefined;
  }
}

export interface ClientOptions {
  url: string;
  apiKey: string | undefined;
}

const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ECONNRESET',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_SOCKET',
]);

/** The data commands' view of the HTTP API: bearer key, one-line errors. */
export class ApiClient {
  readonly base: string;

  constructor(private readonly opts: ClientOptions) {
    let url: URL;
    try {
      url = new URL(opts.url);
    } catch {
      // quoted: an empty RUNLOG_URL= (a .env line left blank) would read as nothing at all
      throw new CliError(
        `--url (RUNLOG_URL) ${JSON.stringify(opts.url)} is not a valid URL, such as ${DEFAULT_URL}`,
        2,
      );
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new CliError(
        `--url (RUNLOG_URL) must be an http:// or https:// URL, not ${opts.url}`,
        2,
      );
    // a header carries printable ASCII only: fetch's "Cannot convert argument to a ByteString"
    // would say nothing of the key
    if (opts.apiKey !== undefined && !SENDABLE_KEY.test(opts.apiKey))
      throw new CliError(
        '--api-key (RUNLOG_API_KEY) must be printable ASCII without spaces: the key as Runlog printed it (rl_ and letters and digits)',
        2,
      );
    // the server's address: one copied with the API's prefix works as well
    this.base = opts.url.replace(/\/+$/, '').replace(/\/api\/v1$/, '');
  }

  get apiKey(): string | undefined {
    return this.opts.apiKey;
  }

  unreachable(): CliError {
    return new CliError(
      `cannot reach the Runlog server at ${this.base} (is it running? set --url or RUNLOG_URL)`,
      1,
      true,
    );
  }

  /** The key was refused (401): with the status and code a `--json` failure carries. */
  refused(code = 'unauthorized'): CliError {
    return new CliError(
      this.opts.apiKey
        ? 'the API key was refused (check --api-key or RUNLOG_API_KEY)'
        : 'an API key is needed: set --api-key or RUNLOG_API_KEY',
      1,
      false,
      401,
      undefined,
      code,
    );
  }

  async request<T>(
    method: string,
    path: string,
    query?: Record<string, string | number | undefined>,
    body?: unknown,
  ): Promise<T> {
    return (await this.exchange<T>(method, path, query, body)).body;
  }

  /**
   * `request`, answering the success status with the body: where it tells apart outcomes
   * (a retry with `once`: 201 queued, 200 retried already).
   */
  async exchange<T>(
    method: string,
    path: string,
    query?: Record<string, string | number | undefined>,
    body?: unknown,
  ): Promise<{ status: number; body: T }> {
    const res = await this.send(method, path, query, body, {
      accept: 'application/json',
      signal: AbortSignal.timeout(60_000),
    });
    const text = await res.text();
    const data = parsedJson(text);
    if (!res.ok) throw this.failure(res, data);
    if (data === undefined && text)
      throw new CliError(`the server at ${this.base} did not answer JSON (is it a Runlog server?)`);
    return { status: res.status, body: data as T };
  }

  /**
   * A `GET` whose answer is a file (an export), written to `to` as it arrives: a file of a
   * hundred thousand runs is never held whole. Resolves once all of it is written.
   * @example await client.download('/api/v1/runs.csv', { agent_id: 'a' }, createWriteStream('runs.csv'))
   */
  async download(
    path: string,
    query: Record<string, string | number | undefined>,
    to: Writable,
  ): Promise<void> {
    // no time limit on the whole answer: a large file takes what it takes
    const res = await this.send('GET', path, query, undefined, { accept: '*/*' });
    if (!res.ok) throw this.failure(res, parsedJson(await res.text()));
    if (!res.body) return;
    await pipeline(Readable.fromWeb(res.body as NodeWebStream), to, { end: false });
  }

  private async send(
    method: string,
    path: string,
    query: Record<string, string | number | undefined> | undefined,
    body: unknown,
    opts: { accept: string; signal?: AbortSignal },
  ): Promise<Response> {
    const url = new URL(this.base + path);
    for (const [k, v] of Object.entries(query ?? {}))
      if (v !== undefined) url.searchParams.set(k, String(v));
    try {
      return await fetch(url, {
        method,
        headers: {
          accept: opts.accept,
          ...(this.opts.apiKey ? { authorization: `Bearer ${this.opts.apiKey}` } : {}),
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
    } catch (err) {
      const code = (err as { cause?: { code?: string } }).cause?.code;
      if ((code && UNREACHABLE.has(code)) || (err as Error).name === 'TimeoutError')
        throw this.unreachable();
      const cause = (err as { cause?: { message?: string } }).cause?.message;
      throw new CliError(`request to ${this.base} failed: ${cause ?? (err as Error).message}`);
    }
  }

  /** The error a refusal (not 2xx) stands for, from its status and its error body. */
  private failure(res: Response, data: unknown): CliError {
    const error = (
      data as { error?: { message?: string; code?: unknown; details?: unknown[] } } | undefined
    )?.error;
    const message = error?.message;
    const code = typeof error?.code === 'string' ? error.code : undefined;
    if (res.status === 401) return this.refused(code);
    if (res.status === 403)
      return new CliError(
        message ?? 'the API key lacks the scope this command needs',
        1,
        false,
        res.status,
        undefined,
        code,
      );
    return new CliError(
      message ?? `the server answered ${res.status} ${res.statusText}`,
      1,
      false,
      res.status,
      error?.details?.filter(
        (d): d is { field: string; message: string } =>
          typeof (d as { field?: unknown }).field === 'string' &&
          typeof (d as { message?: unknown }).message === 'string',
      ),
      code,
    );
  }

  /**
   * Opens the realtime socket and subscribes to `topics`; resolves once subscribed.
   * @example const ws = await client.subscribe(['runs'], (msg) => console.log(msg))
   */
  subscribe(topics: string[], onMessage: (message: unknown) => void): Promise<WebSocket> {
    const wsUrl = this.base.replace(/^http/, 'ws') + '/api/v1/ws';
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(wsUrl, {
        headers: this.opts.apiKey ? { authorization: `Bearer ${this.opts.apiKey}` } : {},
        handshakeTimeout: 10_000,
      });
      let open = false;
      ws.on('unexpected-response', (_req, res) => {
        reject(
          res.statusCode === 401
            ? this.refused()
            : new CliError(
                `the server refused the WebSocket (${res.statusCode})`,
                1,
                res.statusCode !== undefined && res.statusCode >= 500,
              ),
        );
        ws.terminate();
      });
      ws.on('error', (err: Error & { code?: string }) => {
        if (open) return;
        reject(
          err.code && UNREACHABLE.has(err.code)
            ? this.unreachable()
            : new CliError(`WebSocket to ${wsUrl} failed: ${err.message}`, 1, true),
        );
      });
      ws.on('open', () => {
        ws.send(JSON.stringify({ type: 'subscribe', topics }));
      });
      ws.on('message', (raw) => {
        let msg: unknown;
        try {
          msg = JSON.parse(String(raw));
        } catch {
          return;
        }
        const type = (msg as { type?: string }).type;
        if (!open && type === 'subscribed') {
          open = true;
          resolve(ws);
          return;
        }
        if (!open && type === 'error') {
          const m = (msg as { error?: { message?: string } }).error?.message;
          reject(new CliError(m ?? 'the server refused the subscription'));
          ws.close();
          return;
        }
        onMessage(msg);
      });
    });
  }
}
