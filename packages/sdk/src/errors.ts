/** Base class of every error the SDK throws. */
export class RunlogError extends Error {
  override name = 'RunlogError';
}

/**
 * The server answered with an error status.
 * @example try { await runlog.runs.get('nope') } catch (e) { if (e instanceof RunlogApiError && e.status === 404) ... }
 */
export class RunlogApiError extends RunlogError {
  override name = 'RunlogApiError';
  constructor(
    /** The HTTP status. */
    readonly status: number,
    /** The API's error code (`not_found`, `invalid_input`, `rate_limited`, ...). */
    readonly code: string,
    message: string,
    readonly details: unknown[] = [],
    /** From `Retry-After`, when the server sent one. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

/** The server could not be reached (refused, reset, DNS, timeout). */
export class RunlogConnectionError extends RunlogError {
  override name = 'RunlogConnectionError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The reason `run.signal` carries when someone pressed Stop. */
export class RunCancelledError extends RunlogError {
  override name = 'RunCancelledError';
}

/**
 * The reason `run.signal` fires when the process is told to end (SIGTERM, SIGINT) while a
 * `run()` is still running: the run is recorded `cancelled`, its error saying so.
 */
export class RunInterruptedError extends RunCancelledError {
  override name = 'RunInterruptedError';
}

/** Whether sending again later may succeed: network errors, 408, 429 and 5xx. */
export function isRetryable(err: unknown): boolean {
  if (err instanceof RunlogConnectionError) return true;
  if (err instanceof RunlogApiError)
    return err.status === 408 || err.status === 429 || err.status >= 500;
  return false;
}

/**
 * A webhook delivery that `verifyWebhook` refused: no or a malformed `Runlog-Signature`, a
 * signature that does not match the body, or one older than the tolerance (a replay).
 */
export class RunlogWebhookError extends RunlogError {
  override name = 'RunlogWebhookError';
}
