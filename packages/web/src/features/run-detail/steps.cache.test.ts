import { describe, expect, it } from 'vitest';
import type { Step } from '@runlog/core';
import { stepFixture } from '../../../../core/test/fixtures';
import { orderStepTree } from '@runlog/core';
import { applyStepUpdates, stepOrder } from './steps.cache';

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

describe('applyStepUpdates, one at a time', () => {
  it('inserts new steps in seq order and replaces known ones', () => {
    let steps = applyStepUpdates([], [step('b', 2)]);
    steps = applyStepUpdates(steps, [step('a', 1)]);
    steps = applyStepUpdates(steps, [step('b', 2, { status: 'succeeded', duration_ms: 5 })]);
    expect(steps.map((s) => [s.id, s.status])).toEqual([
      ['a', 'running'],
      ['b', 'succeeded'],
    ]);
  });

  it('does not reopen an ended step on a late running update', () => {
    const done = [step('a', 1, { status: 'failed' })];
    expect(applyStepUpdates(done, [step('a', 1)])).toBe(done);
  });
});

describe('applyStepUpdates', () => {
  // the fold one update at a time, as it was: the batched one must give the same steps
  function oneByOne(steps: Step[], updates: Step[]): Step[] {
    let list = steps;
    for (const u of updates) {
      const i = list.findIndex((s) => s.id === u.id);
      if (i >= 0) {
        if (list[i]!.status !== 'running' && u.status === 'running') continue;
        list = list.map((s, j) => (j === i ? u : s));
        continue;
      }
      let at = list.findIndex((s) => stepOrder(u, s) < 0);
      if (at < 0) at = list.length;
      list = [...list.slice(0, at), u, ...list.slice(at)];
    }
    return list;
  }

  it('folds a frame of updates as they would fold one by one, in or out of order', () => {
    let seed = 7;
    const random = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
    for (let round = 0; round < 50; round++) {
      const before = oneByOne(
        [],
        Array.from({ length: Math.floor(random() * 20) }, (_, i) => step(`s${i}`, i)),
      );
      const updates = Array.from({ length: 1 + Math.floor(random() * 30) }, () => {
        const seq = Math.floor(random() * 40);
        const status = random() < 0.5 ? 'running' : 'succeeded';
        return step(`s${seq}`, seq, { status, duration_ms: Math.floor(random() * 100) });
      });
      expect(applyStepUpdates(before, updates)).toEqual(oneByOne(before, updates));
    }
  });

  it('places steps in the order the server lists them: by time, not by seq', () => {
    // an OTLP parent span gets its seq after its children, and starts before them
    const parent = step('parent', 3, { started_at: iso(T0) });
    const before = [parent, step('a', 1, { started_at: iso(T0 + 10) })];
    const after = applyStepUpdates(before, [
      step('c', 2, { started_at: iso(T0 + 30) }),
      step('b', 4, { started_at: iso(T0 + 20) }),
    ]);
    expect(after.map((s) => s.id)).toEqual(['parent', 'a', 'b', 'c']);
  });

  it('appends the steps of a live run at the end and leaves the list as it was when nothing changes', () => {
    const before = [step('a', 1), step('b', 2)];
    const after = applyStepUpdates(before, [step('c', 3), step('d', 4)]);
    expect(after.map((s) => s.id)).toEqual(['a', 'b', 'c', 'd']);
    expect(before).toHaveLength(2);
    const done = [step('a', 1, { status: 'succeeded' })];
    expect(applyStepUpdates(done, [step('a', 1)])).toBe(done);
  });
});

describe('the timeline order (core orderStepTree) with the live fold', () => {
  // recorded only by step.end: no start, drawn at its end
  const endOnly = (id: string, seq: number, endedAt: number, over: Partial<Step> = {}) =>
    step(id, seq, { started_at: null, ended_at: iso(endedAt), status: 'succeeded', ...over });

  it('places a step with no start by its end among its siblings, where its bar is', () => {
    const steps = applyStepUpdates(
      [],
      [step('a', 1), endOnly('b', 2, T0 + 15), step('c', 3), endOnly('d', 4, T0 + 45)],
    );
    expect(orderStepTree(steps).map((p) => p.step.id)).toEqual(['a', 'b', 'c', 'd']);
    // the rows keep the steps as recorded, without a start
    expect(orderStepTree(steps)[1]!.step.started_at).toBeNull();
  });

  it('orders nested siblings the same way, and as the live fold lists them', () => {
    const parent = step('p', 0, { started_at: iso(T0) });
    const kids = [
      step('x', 1, { parent_step_id: 'p', started_at: iso(T0 + 50) }),
      endOnly('y', 2, T0 + 20, { parent_step_id: 'p' }),
      step('z', 3, { parent_step_id: 'p', started_at: iso(T0 + 30) }),
    ];
    const folded = applyStepUpdates([], [parent, ...kids]);
    expect(folded.map((s) => s.id)).toEqual(['p', 'y', 'z', 'x']);
    expect(orderStepTree(folded).map((p) => [p.step.id, p.depth])).toEqual([
      ['p', 0],
      ['y', 1],
      ['z', 1],
      ['x', 1],
    ]);
  });
});
