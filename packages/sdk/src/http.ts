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

/** JSON over fetch with the API key; errors become `RunlogApiError` / `RunlogConnectionError`. */
export class HttpClient {
  constructor(readonly options: HttpOptions) {}

  async request<T>(
    method: string,
    path: string,
    body?: unknown,
    init: { signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<HttpResponse<T>> {
    const timeout = AbortSignal.timeout(init.timeoutMs ?? this.options.timeoutMs);
    const signal = init.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
    let res: Response;
    try {
      res = await fetch(this.options.baseUrl + path, {
        method,
        headers: {
          ...(this.options.apiKey ? { authorization: `Bearer ${this.options.apiKey}` } : {}),
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal,
      });
    } catch (err) {
      if (init.signal?.aborted) throw err;
      const reason = timeout.aborted ? 'timed out' : ((err as Error).cause as Error)?.message;
      throw new RunlogConnectionError(
        `cannot reach Runlog at ${this.options.baseUrl} (${method} ${path}): ${reason ?? (err as Error).message}`,
        { cause: err },
      );
    }
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      throw new RunlogConnectionError(`connection lost reading ${method} ${path}`, { cause: err });
    }
    let parsed: unknown;
    if (text) {
      try {
        parsed = JSON.parse(text) as unknown;
      } catch {
        parsed = undefined;
      }
    }
    if (!res.ok) {
      const error = (parsed as { error?: { code?: string; message?: string; details?: unknown[] } })
        ?.error;
      throw new RunlogApiError(
        res.status,
        error?.code ?? (res.status >= 500 ? 'internal' : 'http_error'),
        error?.message ?? `${method} ${path} answered ${res.status}`,
        error?.details ?? [],
        parseRetryAfter(res.headers.get('retry-after')),
      );
    }
    return { status: res.status, body: parsed as T | undefined };
  }
}
