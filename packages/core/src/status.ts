import {
  RUN_STATUSES,
  STEP_STATUSES,
  isTerminalStatus,
  type RunStatus,
  type StepStatus,
} from './enums.js';

/**
 * Status names other tools send, mapped onto Runlog's. Keys are lower-case.
 * @example normalizeRunStatus('Completed') // 'succeeded'
 */
const RUN_STATUS_ALIASES: Record<string, RunStatus> = {
  success: 'succeeded',
  successful: 'succeeded',
  succeeded: 'succeeded',
  completed: 'succeeded',
  complete: 'succeeded',
  done: 'succeeded',
  ok: 'succeeded',
  error: 'failed',
  errored: 'failed',
  failure: 'failed',
  failed: 'failed',
  max_steps: 'failed',
  pending: 'queued',
  queued: 'queued',
  scheduled: 'queued',
  started: 'running',
  running: 'running',
  in_progress: 'running',
  timeout: 'timed_out',
  timed_out: 'timed_out',
  timedout: 'timed_out',
  canceled: 'cancelled',
  cancelled: 'cancelled',
  stopped: 'cancelled',
  aborted: 'cancelled',
};

const STEP_STATUS_ALIASES: Record<string, StepStatus> = {
  running: 'running',
  started: 'running',
  in_progress: 'running',
  pending: 'running',
  succeeded: 'succeeded',
  success: 'succeeded',
  completed: 'succeeded',
  complete: 'succeeded',
  done: 'succeeded',
  ok: 'succeeded',
  failed: 'failed',
  error: 'failed',
  errored: 'failed',
  failure: 'failed',
  timeout: 'failed',
  timed_out: 'failed',
  cancelled: 'failed',
  canceled: 'failed',
};

function key(value: string): string {
  return value
    .trim()
    .toLowerCase()
    .replace(/[\s-]+/g, '_');
}

/**
 * The alias table's own entry for `value`: an inherited name (`constructor`, `__proto__`)
 * is no status, and would otherwise pass validation as a function or an object.
 */
function lookUp<S>(aliases: Record<string, S>, value: string): S | undefined {
  const k = key(value);
  return Object.hasOwn(aliases, k) ? aliases[k] : undefined;
}

/** Maps a status or one of its aliases to a run status; `undefined` when unknown. */
export function normalizeRunStatus(value: string): RunStatus | undefined {
  return lookUp(RUN_STATUS_ALIASES, value);
}

/** Maps a status or one of its aliases to a step status; `undefined` when unknown. */
export function normalizeStepStatus(value: string): StepStatus | undefined {
  return lookUp(STEP_STATUS_ALIASES, value);
}

export const RUN_STATUS_HELP = `one of ${RUN_STATUSES.join(', ')} (or an alias such as success, completed, error, pending, timeout, canceled)`;
export const STEP_STATUS_HELP = `one of ${STEP_STATUSES.join(', ')} (or an alias such as success, error)`;

/**
 * Whether a run may move from `from` to `to`. Terminal states are final; a run never
 * goes back to `queued` except through an explicit worker release.
 * @example canTransition('running', 'succeeded') // true
 */
export function canTransition(from: RunStatus, to: RunStatus): boolean {
  if (from === to) return true;
  if (isTerminalStatus(from)) return false;
  if (from === 'running' && to === 'queued') return false;
  return true;
}
