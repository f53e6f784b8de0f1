import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { HttpClient, backoffMs, parseRetryAfter } from './http.js';
import { RunlogApiError, RunlogConnectionError, isRetryable } from './errors.js';
import { toRunError } from './run.js';

describe('retry policy', () => {
  it('reads Retry-After as seconds or as an HTTP date', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    const now = Date.parse('2026-03-01T10:00:00Z');
    expect(parseRetryAfter('Sun, 01 Mar 2026 10:00:05 GMT', now)).toBe(5000);
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(parseRetryAfter('soon')).toBeUndefined();
  });

  it('backs off exponentially with jitter, capped, and never sooner than Retry-After', () => {
    for (let i = 0; i < 200; i++) {
      expect(backoffMs(1)).toBeLessThan(250);
      expect(backoffMs(4)).toBeLessThan(2000);
      expect(backoffMs(30)).toBeLessThanOrEqual(30_000);
      expect(backoffMs(1, 1500)).toBeGreaterThanOrEqual(1500);
    }
  });

  it('retries network errors, 408, 429 and 5xx but not other client errors', () => {
    expect(isRetryable(new RunlogConnectionError('down'))).toBe(true);
    expect(isRetryable(new RunlogApiError(429, 'rate_limited', 'slow down'))).toBe(true);
    expect(isRetryable(new RunlogApiError(503, 'unavailable', 'x'))).toBe(true);
    expect(isRetryable(new RunlogApiError(400, 'invalid_input', 'x'))).toBe(false);
    expect(isRetryable(new RunlogApiError(401, 'unauthorized', 'x'))).toBe(false);
    expect(isRetryable(new Error('other'))).toBe(false);
  });

  it('records thrown values as errors with message, type and stack', () => {
    const e = toRunError(new RangeError('too far'));
    expect(e).toMatchObject({ message: 'too far', type: 'RangeError' });
    expect(e.stack).toContain('too far');
    expect(toRunError('plain text')).toEqual({ message: 'plain text' });
    expect(toRunError({ code: 7 })).toEqual({ message: '{"code":7}' });
  });

  it("keeps the fields code tells errors apart by, not the error's other fields", () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), {
      code: 'ECONNREFUSED',
      errno: -111,
      syscall: 'connect',
      port: 9,
    });
    const api = Object.assign(new Error('Rate limit reached', { cause: refused }), {
      status: 429,
      type: 'rate_limit_error',
      request_id: 'req_1',
      headers: { authorization: 'Bearer sk-secret' },
      retry: { after: 2 },
    });
    const { stack } = toRunError(api);
    const lines = stack!.split('\n');
    // the fields follow the error's own frames, before what it wraps
    expect(lines).toContain(`{ status: 429, type: "rate_limit_error", request_id: "req_1" }`);
    expect(lines).toContain(`{ code: "ECONNREFUSED", errno: -111, syscall: "connect", port: 9 }`);
    expect(
      lines.indexOf(`{ status: 429, type: "rate_limit_error", request_id: "req_1" }`),
    ).toBeLessThan(lines.findIndex((l) => l.startsWith('[cause]:')));
    expect(stack).not.toContain('sk-secret');
    expect(stack).not.toContain('after');
    // without a stack, the fields still come after the message
    const bare = Object.assign(new Error('gone'), { code: 'E_GONE' });
    bare.stack = undefined;
    expect(toRunError(bare).stack).toBe('Error: gone\n{ code: "E_GONE" }');
    // a getter that throws loses the fields, not the error
    const hostile = new Error('hostile');
    Object.defineProperty(hostile, 'code', {
      get() {
        throw new Error('no');
      },
    });
    expect(toRunError(hostile)).toMatchObject({ message: 'hostile', type: 'Error' });
  });
});

describe('kept-alive connections', () => {
  /**
   * A server that drops the connection, unanswered, on the second request it gets over one
   * connection: what a client meets when the server closes an idle kept-alive connection just
   * as a request goes out on it.
   */
  async function droppingServer() {
    const requests: string[] = [];
    const perSocket = new WeakMap<Socket, number>();
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      requests.push(`${req.method} ${req.url}`);
      const n = (perSocket.get(req.socket) ?? 0) + 1;
      perSocket.set(req.socket, n);
      req.resume();
      if (n === 2) {
        req.socket.destroy();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    const client = new HttpClient({
      baseUrl: `http://127.0.0.1:${port}`,
      apiKey: undefined,
      timeoutMs: 5_000,
    });
    return {
      client,
      requests,
      close: () => {
        client.close();
        server.closeAllConnections();
        return new Promise<void>((r) => server.close(() => r()));
      },
    };
  }

  it('sends an idempotent request again on a new connection, once', async () => {
    const s = await droppingServer();
    try {
      await s.client.request('GET', '/first');
      const res = await s.client.request(
        'POST',
        '/api/v1/ingest',
        { events: [] },
        {
          idempotent: true,
        },
      );
      expect(res.body).toEqual({ ok: true });
      expect(s.requests).toEqual(['GET /first', 'POST /api/v1/ingest', 'POST /api/v1/ingest']);
    } finally {
      await s.close();
    }
  });

  it('does not send a request that is not idempotent twice (a claim, a retry)', async () => {
    const s = await droppingServer();
    try {
      await s.client.request('GET', '/first');
      await expect(s.client.request('POST', '/api/v1/workers/claim', {})).rejects.toBeInstanceOf(
        RunlogConnectionError,
      );
      expect(s.requests).toEqual(['GET /first', 'POST /api/v1/workers/claim']);
    } finally {
      await s.close();
    }
  });
});
