import { describe, expect, it } from 'vitest';
import type { Run, Step } from './schemas.js';
import { buildTimeline, orderStepTree } from './timeline.js';
import { runFixture, stepFixture } from '../test/fixtures.js';

const iso = (ms: number) => new Date(ms).toISOString();
const T = Date.parse('2026-05-01T12:00:00.000Z');

function run(over: Partial<Run> = {}): Run {
  return runFixture({
    project_id: 'p',
    agent_id: 'a',
    status: 'succeeded',
    started_at: iso(T),
    ended_at: iso(T + 1000),
    duration_ms: 1000,
    step_count: 2,
    llm_calls: 1,
    tool_calls: 1,
    created_at: iso(T),
    updated_at: iso(T),
    ...over,
  });
}

const step = (over: Partial<Step> & { id: string }): Step => stepFixture(over);

describe('buildTimeline', () => {
  it('keeps nesting in order when a parent ends in the instant its children start and end', () => {
    // what the SDK records for step(() => step(() => step(...))) taking under a millisecond:
    // L1 from T+1 to T+2, L2 and L3 all within T+2; then a sibling starting as L1 ends
    const at = (ms: number) => iso(T + ms);
    const steps = [
      step({ id: 'L1', started_at: at(1), ended_at: at(2), seq: 0 }),
      step({ id: 'L2', parent_step_id: 'L1', started_at: at(2), ended_at: at(2), seq: 1 }),
      step({ id: 'L3', parent_step_id: 'L2', started_at: at(2), ended_at: at(2), seq: 2 }),
      step({ id: 'next', started_at: at(2), ended_at: at(3), seq: 3 }),
    ];
    const tl = buildTimeline(run(), steps, T + 5000);
    // before: L1 ended before L2 started
    expect(tl.events.map((e) => `${e.type}:${String(e.data.step_id ?? '')}`)).toEqual([
      'RUN_STARTED:',
      'STEP_STARTED:L1',
      'STEP_STARTED:L2',
      'STEP_STARTED:L3',
      'STEP_ENDED:L3',
      'STEP_ENDED:L2',
      'STEP_ENDED:L1',
      'STEP_STARTED:next',
      'STEP_ENDED:next',
      'RUN_ENDED:',
    ]);
  });

  it('orders run and step events in time with nested steps linked to their parent', () => {
    const steps = [
      step({
        id: 'child',
        parent_step_id: 'parent',
        type: 'tool',
        started_at: iso(T + 200),
        ended_at: iso(T + 300),
        duration_ms: 100,
        seq: 1,
      }),
      step({
        id: 'parent',
        started_at: iso(T + 100),
        ended_at: iso(T + 900),
        duration_ms: 800,
        seq: 0,
      }),
    ];
    const tl = buildTimeline(run(), steps, T + 5000);
    expect(tl.events.map((e) => `${e.type}:${String(e.data.step_id ?? '')}`)).toEqual([
      'RUN_STARTED:',
      'STEP_STARTED:parent',
      'STEP_STARTED:child',
      'STEP_ENDED:child',
      'STEP_ENDED:parent',
      'RUN_ENDED:',
    ]);
    const child = tl.events.find((e) => e.type === 'STEP_STARTED' && e.data.step_id === 'child');
    expect(child?.data).toMatchObject({ parent_step_id: 'parent', depth: 1, duration_ms: 100 });
    expect(tl.summary).toMatchObject({ in_progress: false, duration_ms: 1000, max_depth: 1 });
  });

  it('measures an in-progress run and its running steps up to now', () => {
    const r = run({ status: 'running', ended_at: null, duration_ms: null });
    const tl = buildTimeline(
      r,
      [step({ id: 's', status: 'running', started_at: iso(T + 100) })],
      T + 2500,
    );
    expect(tl.summary).toMatchObject({ in_progress: true, duration_ms: 2500 });
    expect(tl.events.find((e) => e.type === 'STEP_STARTED')?.data).toMatchObject({
      in_progress: true,
      duration_ms: 2400,
    });
    expect(tl.events.some((e) => e.type === 'STEP_ENDED' || e.type === 'RUN_ENDED')).toBe(false);
  });

  it('leaves the duration of a step that only reported its end unknown', () => {
    const steps = [
      step({ id: 'late', started_at: null, ended_at: iso(T + 500), duration_ms: null, seq: 1 }),
    ];
    const events = buildTimeline(run(), steps, T + 2000).events.filter((e) =>
      e.type.startsWith('STEP_'),
    );
    expect(events.map((e) => [e.type, e.data.duration_ms])).toEqual([
      ['STEP_STARTED', null],
      ['STEP_ENDED', null],
    ]);
  });

  it('gives each step of a chain nested 5,000 deep its depth, walking each step once', () => {
    // listed deepest first: each step's walk up meets the depths its parent's walk found
    const chain = Array.from({ length: 5000 }, (_, i) =>
      step({ id: `c${i}`, seq: i, parent_step_id: i ? `c${i - 1}` : null, started_at: iso(T + i) }),
    ).reverse();
    const timeline = buildTimeline(run(), chain, T);
    expect(timeline.summary.max_depth).toBe(4999);
    const depths = new Map(
      timeline.events
        .filter((e) => e.type === 'STEP_STARTED')
        .map((e) => [e.data.step_id, e.data.depth]),
    );
    expect(depths.get('c0')).toBe(0);
    expect(depths.get('c1234')).toBe(1234);
    expect(depths.get('c4999')).toBe(4999);
  });

  it('survives a parent cycle in caller data', () => {
    const steps = [
      step({ id: 'a', parent_step_id: 'b', started_at: iso(T) }),
      step({ id: 'b', parent_step_id: 'a', started_at: iso(T) }),
    ];
    expect(buildTimeline(run(), steps, T).events.length).toBeGreaterThan(0);
  });
});

describe('buildTimeline at one instant', () => {
  it("puts a step's own start before its end when both fall in the same millisecond", () => {
    const steps = [
      step({ id: 'a', seq: 0, started_at: iso(T + 5), ended_at: iso(T + 5) }),
      step({ id: 'b', seq: 1, started_at: iso(T + 5), ended_at: iso(T + 5) }),
      step({ id: 'c', seq: 2, started_at: iso(T + 1), ended_at: iso(T + 5) }),
      // only an end was recorded: the step is placed at that instant
      step({ id: 'd', seq: 3, ended_at: iso(T + 5) }),
    ];
    const events = buildTimeline(run(), steps, T + 2000).events.map(
      (e) => `${e.type}:${(e.data as { step_id?: string }).step_id ?? ''}`,
    );
    expect(events).toEqual([
      'RUN_STARTED:',
      'STEP_STARTED:c',
      'STEP_ENDED:c',
      'STEP_STARTED:a',
      'STEP_ENDED:a',
      'STEP_STARTED:b',
      'STEP_ENDED:b',
      'STEP_STARTED:d',
      'STEP_ENDED:d',
      'RUN_ENDED:',
    ]);
  });

  it('nests steps that start or end in the same millisecond: parents open first, close last', () => {
    // the SDK's nested steps, seq in the order each was first seen: a child's end usually
    // shares its parent's millisecond; OTLP exporters send children before their parents
    const steps = [
      step({ id: 'outer', seq: 0, started_at: iso(T + 10), ended_at: iso(T + 20) }),
      step({
        id: 'inner',
        seq: 1,
        parent_step_id: 'outer',
        started_at: iso(T + 10),
        ended_at: iso(T + 20),
      }),
      step({
        id: 'child-first',
        seq: 2,
        parent_step_id: 'late-parent',
        started_at: iso(T + 30),
        ended_at: iso(T + 40),
      }),
      step({ id: 'late-parent', seq: 3, started_at: iso(T + 30), ended_at: iso(T + 40) }),
    ];
    const events = buildTimeline(run(), steps, T + 2000).events.map(
      (e) => `${e.type}:${(e.data as { step_id?: string }).step_id ?? ''}`,
    );
    expect(events).toEqual([
      'RUN_STARTED:',
      'STEP_STARTED:outer',
      'STEP_STARTED:inner',
      'STEP_ENDED:inner',
      'STEP_ENDED:outer',
      'STEP_STARTED:late-parent',
      'STEP_STARTED:child-first',
      'STEP_ENDED:child-first',
      'STEP_ENDED:late-parent',
      'RUN_ENDED:',
    ]);
  });
});

describe('orderStepTree', () => {
  it('places a step recorded only by its end at its end, where its bar is drawn', () => {
    const steps = [
      step({ id: 'a', seq: 1, started_at: iso(T), ended_at: iso(T + 5) }),
      step({ id: 'c', seq: 3, started_at: iso(T + 30) }),
      step({ id: 'b', seq: 2, started_at: null, ended_at: iso(T + 15) }),
      step({ id: 'none', seq: 4, started_at: null, ended_at: null }),
    ];
    expect(orderStepTree(steps).map((p) => p.step.id)).toEqual(['a', 'b', 'c', 'none']);
  });

  it('places children under their parent with depth, in start order, and marks last siblings', () => {
    const steps = [
      step({ id: 'root', seq: 0, type: 'agent', started_at: iso(T) }),
      step({ id: 'child2', seq: 1, parent_step_id: 'root', started_at: iso(T + 30) }),
      step({ id: 'child1', seq: 3, parent_step_id: 'root', started_at: iso(T + 10) }),
      step({ id: 'grandchild', seq: 2, parent_step_id: 'child1', started_at: iso(T + 20) }),
      step({ id: 'after', seq: 4, started_at: iso(T + 40) }),
    ];
    expect(
      orderStepTree(steps).map((p) => `${p.step.id}:${p.depth}:${p.last}:${p.hasChildren}`),
    ).toEqual([
      'root:0:false:true',
      'child1:1:false:true',
      'grandchild:2:true:false',
      'child2:1:true:false',
      'after:0:true:false',
    ]);
  });

  it('puts steps without a start after the others, by seq', () => {
    const steps = [
      step({ id: 'b', seq: 5 }),
      step({ id: 'a', seq: 9, started_at: iso(T) }),
      step({ id: 'c', seq: 2 }),
    ];
    expect(orderStepTree(steps).map((p) => p.step.id)).toEqual(['a', 'c', 'b']);
  });

  it('shows steps caught in a parent cycle instead of looping', () => {
    const steps = [
      step({ id: 'x', parent_step_id: 'y' }),
      step({ id: 'y', seq: 1, parent_step_id: 'x' }),
    ];
    expect(
      orderStepTree(steps)
        .map((p) => p.step.id)
        .sort(),
    ).toEqual(['x', 'y']);
  });
});
