import { describe, expect, it } from 'vitest';
import { backoffMs, parseRetryAfter } from './http.js';
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
});
