import type { HeartbeatBody, HeartbeatResponse } from '@runlog/core';
import { RunCancelledError, RunlogApiError, RunlogConnectionError, RunlogError } from './errors.js';
import type { HttpClient } from './http.js';
import type { RunContext } from './run.js';

export interface HeartbeatOptions {
  intervalMs: number;
  /** For a claimed run: the lease each beat renews. */
  leaseMs?: number;
  workerId?: string;
  /** A 404 means the run is gone (claimed runs) rather than not recorded yet (SDK runs). */
  missingIsGone: boolean;
  onError: (err: Error) => void;
}

/**
 * Keeps a run alive while it is open and fires its signal on Stop: beats every
 * `intervalMs` until the returned function is called. The timer never keeps the process alive.
 */
export function startHeartbeat(
  http: HttpClient,
  run: RunContext,
  options: HeartbeatOptions,
): () => void {
  let stopped = false;
  let inFlight = false;
  const body: HeartbeatBody = {
    ...(options.leaseMs !== undefined ? { lease_ms: options.leaseMs } : {}),
    ...(options.workerId !== undefined ? { worker_id: options.workerId } : {}),
  };
  const beat = async () => {
    if (stopped || inFlight) return;
    inFlight = true;
    try {
      const res = await http.request<HeartbeatResponse>(
        'POST',
        `/api/v1/runs/${encodeURIComponent(run.id)}/heartbeat`,
        body,
        { idempotent: true },
      );
      if (stopped || !res.body) return;
      if (res.body.cancel_requested) run.abort(new RunCancelledError('run stopped from Runlog'));
      else if (res.body.status !== 'running' && res.body.status !== 'queued')
        run.abort(new RunlogError(`run already ended ${res.body.status} on the server`));
    } catch (err) {
      if (err instanceof RunlogApiError && err.status === 404) {
        if (options.missingIsGone) run.abort(new RunlogError('run no longer exists on the server'));
      } else if (!(err instanceof RunlogConnectionError)) {
        options.onError(err as Error);
      }
    } finally {
      inFlight = false;
    }
  };
  const timer = setInterval(() => void beat(), options.intervalMs);
  timer.unref();
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}
