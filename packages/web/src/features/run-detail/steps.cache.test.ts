import { describe, expect, it } from 'vitest';
import type { Step } from '@runlog/core';
import { stepFixture } from '../../../../core/test/fixtures';
import { applyStepUpdate } from './steps.cache';

const T0 = Date.parse('2025-01-01T00:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();

function step(id: string, seq: number, over: Partial<Step> = {}): Step {
  return stepFixture({
    id,
    seq,
    name: id,
    status: 'running',
    started_at: iso(T0 + seq * 10),
    ...over,
  });
}

describe('applyStepUpdate', () => {
  it('inserts new steps in seq order and replaces known ones', () => {
    let steps = applyStepUpdate([], step('b', 2));
    steps = applyStepUpdate(steps, step('a', 1));
    steps = applyStepUpdate(steps, step('b', 2, { status: 'succeeded', duration_ms: 5 }));
    expect(steps.map((s) => [s.id, s.status])).toEqual([
      ['a', 'running'],
      ['b', 'succeeded'],
    ]);
  });

  it('does not reopen an ended step on a late running update', () => {
    const done = [step('a', 1, { status: 'failed' })];
    expect(applyStepUpdate(done, step('a', 1))).toBe(done);
  });
});
