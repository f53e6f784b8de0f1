import { IngestEvent, isTerminalStatus, parseEventFast, type IngestResult } from '@runlog/core';
import { AppError, fieldIssues } from '../http/errors.js';

export interface ValidatedBatch {
  valid: IngestEvent[];
  results: IngestResult[];
}

/**
 * Validates each event of a batch on its own: an invalid event gets its own error and never
 * blocks the valid ones beside it.
 */
export function validateEvents(events: unknown[]): ValidatedBatch {
  const valid: IngestEvent[] = [];
  const results: IngestResult[] = [];
  events.forEach((raw, index) => {
    // the plain events most batches hold are checked without zod (the same answers)
    const fast = parseEventFast(raw);
    const parsed = fast ? { success: true as const, data: fast } : IngestEvent.safeParse(raw);
    if (!parsed.success) {
      const details = fieldIssues(parsed.error, `events.${index}`);
      const first = details[0];
      results.push({
        index,
        ok: false,
        error: {
          code: 'invalid_input',
          message: first ? `${first.field}: ${first.message}` : 'invalid event',
          details,
        },
      });
      return;
    }
    const problem = semanticProblem(parsed.data);
    if (problem) {
      results.push({
        index,
        ok: false,
        error: {
          code: 'invalid_input',
          message: `events.${index}.${problem.field}: ${problem.message}`,
          details: [{ field: `events.${index}.${problem.field}`, message: problem.message }],
        },
      });
      return;
    }
    valid.push(parsed.data);
    results.push({ index, ok: true });
  });
  return { valid, results };
}

/**
 * The REST recording routes' check of the one event each builds from its body: the same
 * rules as `/ingest`, answered as a 400 naming the body's field.
 */
export function assertEventValid(e: IngestEvent): void {
  const problem = semanticProblem(e);
  if (!problem) return;
  const field = `body.${problem.field.slice(problem.field.indexOf('.') + 1)}`;
  throw new AppError('invalid_input', `${field}: ${problem.message}`, [
    { field, message: problem.message },
  ]);
}

function semanticProblem(e: IngestEvent): { field: string; message: string } | undefined {
  if (e.type === 'run.end' && e.run.status && !isTerminalStatus(e.run.status)) {
    return {
      field: 'run.status',
      message: `run.end needs a final status (succeeded, failed, cancelled, timed_out), not ${e.run.status}`,
    };
  }
  if (e.type === 'step.end' && e.step.status === 'running') {
    return {
      field: 'step.status',
      message: 'step.end needs a final status (succeeded or failed), not running',
    };
  }
  if ('run' in e && 'started_at' in e.run && 'ended_at' in e.run) {
    const { started_at, ended_at } = e.run as { started_at?: number; ended_at?: number };
    if (started_at !== undefined && ended_at !== undefined && ended_at < started_at) {
      return { field: 'run.ended_at', message: 'must not be before started_at' };
    }
  }
  if (
    'step' in e &&
    e.step.started_at !== undefined &&
    e.step.ended_at !== undefined &&
    e.step.ended_at < e.step.started_at
  ) {
    return { field: 'step.ended_at', message: 'must not be before started_at' };
  }
  if ('step' in e && e.step.parent_step_id === e.step.id) {
    return { field: 'step.parent_step_id', message: 'a step cannot be its own parent' };
  }
  return undefined;
}
