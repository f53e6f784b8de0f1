import { describe, expect, it } from 'vitest';
import { RUN_STATUSES, isTerminalStatus } from './enums.js';
import { canTransition, normalizeRunStatus, normalizeStepStatus } from './status.js';

describe('run statuses', () => {
  it.each([
    ['success', 'succeeded'],
    ['Completed', 'succeeded'],
    ['error', 'failed'],
    ['max_steps', 'failed'],
    ['pending', 'queued'],
    ['started', 'running'],
    ['timeout', 'timed_out'],
    ['canceled', 'cancelled'],
    ['stopped', 'cancelled'],
    ['in-progress', 'running'],
  ])('maps the alias %s to %s', (alias, status) => {
    expect(normalizeRunStatus(alias)).toBe(status);
  });

  it('knows no status for unknown text', () => {
    expect(normalizeRunStatus('exploded')).toBeUndefined();
    expect(normalizeStepStatus('exploded')).toBeUndefined();
  });

  it('knows no status named like an Object property', () => {
    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      expect(normalizeRunStatus(name)).toBeUndefined();
      expect(normalizeStepStatus(name)).toBeUndefined();
    }
  });

  it('maps step aliases', () => {
    expect(normalizeStepStatus('ok')).toBe('succeeded');
    expect(normalizeStepStatus('error')).toBe('failed');
  });

  it('never leaves a terminal status', () => {
    for (const from of RUN_STATUSES.filter(isTerminalStatus)) {
      for (const to of RUN_STATUSES) expect(canTransition(from, to)).toBe(from === to);
    }
  });

  it('moves forward through the lifecycle', () => {
    expect(canTransition('queued', 'running')).toBe(true);
    expect(canTransition('queued', 'cancelled')).toBe(true);
    expect(canTransition('queued', 'timed_out')).toBe(true);
    expect(canTransition('running', 'succeeded')).toBe(true);
    expect(canTransition('running', 'queued')).toBe(false);
  });
});
