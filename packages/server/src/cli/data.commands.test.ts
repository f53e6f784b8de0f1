import { describe, expect, it } from 'vitest';
import { truncatedJson, type Step } from '@runlog/core';
import { runFixture, stepFixture } from '../../../core/test/fixtures.js';
import { MAX_DRAWN_DEPTH, showRun, stepTree } from './data.commands.js';
import { Palette } from './format.js';

const T0 = Date.parse('2026-02-01T08:00:00.000Z');

/** A step with only what the tree reads set; `started` is ms after T0, null for unknown. */
function step(id: string, seq: number, started: number | null, parent: string | null = null): Step {
  return stepFixture({
    id,
    run_id: 'r',
    parent_step_id: parent,
    seq,
    type: 'tool',
    name: id,
    started_at: started === null ? null : new Date(T0 + started).toISOString(),
  });
}

const drawn = (steps: Step[]) => stepTree(steps).map(({ step, prefix }) => `${prefix}${step.id}`);

describe('runs show step tree', () => {
  it('orders siblings by start time, unknown starts last, then by seq, then as listed', () => {
    const steps = [
      step('root', 1, 0),
      step('late', 2, 500, 'root'),
      step('no-start-seq-9', 9, null, 'root'),
      step('early', 3, 100, 'root'),
      step('no-start-seq-4', 4, null, 'root'),
      step('tie-seq-7', 7, 300, 'root'),
      step('tie-seq-6', 6, 300, 'root'),
      step('same-a', 8, 400, 'root'),
      step('same-b', 8, 400, 'root'),
      step('top-second', 10, 50),
    ];
    expect(drawn(steps)).toEqual([
      'root',
      '├─ early',
      '├─ tie-seq-6',
      '├─ tie-seq-7',
      '├─ same-a',
      '├─ same-b',
      '├─ late',
      '├─ no-start-seq-4',
      '└─ no-start-seq-9',
      'top-second',
    ]);
  });

  it('draws grandchildren under the last and the other children', () => {
    const steps = [
      step('a', 1, 0),
      step('a2', 2, 20, 'a'),
      step('a1', 3, 10, 'a'),
      step('a1x', 4, 11, 'a1'),
      step('a2x', 5, 21, 'a2'),
    ];
    expect(drawn(steps)).toEqual(['a', '├─ a1', '│  └─ a1x', '└─ a2', '   └─ a2x']);
  });

  it('puts a step that is its own parent at the top level in start order, and a cycle last', () => {
    const steps = [
      step('loop-1', 1, 0, 'loop-2'),
      step('loop-2', 2, 5, 'loop-1'),
      step('self', 3, 30, 'self'),
      step('top', 4, 20),
    ];
    expect(drawn(steps)).toEqual(['top', 'self', 'loop-1', 'loop-2']);
  });

  it('walks a chain of 50,000 nested steps without running out of stack', () => {
    const depth = 50_000;
    const steps = Array.from({ length: depth }, (_, i) =>
      step(`s${i}`, i + 1, i, i === 0 ? null : `s${i - 1}`),
    );
    const tree = stepTree(steps);
    expect(tree.map((t) => t.step.id)).toEqual(steps.map((s) => s.id));
    // drawn at most MAX_DRAWN_DEPTH deep, marked, so the output stays linear in the steps
    expect(tree[MAX_DRAWN_DEPTH]!.prefix).toBe(`${'   '.repeat(MAX_DRAWN_DEPTH - 1)}└─ `);
    expect(tree[depth - 1]!.prefix).toBe(`${'   '.repeat(MAX_DRAWN_DEPTH - 1)}… └─ `);
  });
});

describe('runs show scores', () => {
  it('lines up what the scores come to after a name of wide characters', () => {
    const run = {
      ...runFixture({
        scores: {
          満足度: { type: 'numeric', n: 2, avg: 4, labels: {} },
          feedback: { type: 'boolean', n: 1, avg: 1, labels: {} },
        },
      }),
      steps: [],
    };
    const lines = showRun(run, new Palette(false))
      .split('\n')
      .filter((l) => / scores? /.test(l));
    expect(lines).toHaveLength(2);
    // the counts start in the same column (each of 満足度 takes two)
    const columns = (text: string) => text.length + (text.match(/[\u3000-\u9fff]/g) ?? []).length;
    const at = lines.map((l) => columns(l.slice(0, l.search(/\d+ scores?/))));
    expect(at[0]).toBe(at[1]);
  });
});

describe('runs show steps', () => {
  it('gives a time to first token column only when a step recorded one', () => {
    const run = (steps: Step[]) =>
      showRun({ ...runFixture({ step_count: 2 }), steps }, new Palette(false));
    const plain = [step('plan', 1, 0), step('fetch', 2, 10)];
    expect(run(plain)).not.toContain('TTFT');
    const streamed = [
      {
        ...step('plan', 1, 0),
        type: 'llm' as const,
        duration_ms: 2400,
        time_to_first_token_ms: 420,
      },
      step('fetch', 2, 10),
    ];
    const lines = run(streamed).split('\n');
    const header = lines.find((l) => l.includes('TTFT'))!;
    expect(header).toMatch(/DURATION\s+TTFT/);
    expect(lines.find((l) => l.includes('llm plan'))).toMatch(/2\.4s\s+420ms/);
  });
});

describe('runs show errors', () => {
  it('shows an error stored truncated by its message and the size it had, not a crash', () => {
    const text = JSON.stringify({
      message: 'stack overflow',
      type: 'RangeError',
      stack: 'x\n'.repeat(9000),
    });
    const run = {
      ...runFixture({ status: 'failed', error: truncatedJson(text, 18_050, 300) }),
      steps: [],
    };
    const shown = showRun(run, new Palette(false));
    expect(shown).toContain('RangeError: stack overflow [cut: the error was 18,050 bytes]');
  });
});

describe('runs show trigger', () => {
  it('says who triggered a run, beside its trigger and source, as the dashboard does', () => {
    const shown = (fields: Parameters<typeof runFixture>[0]) =>
      showRun({ ...runFixture(fields), steps: [] }, new Palette(false))
        .split('\n')
        .find((l) => l.trim().startsWith('trigger'));
    expect(shown({ trigger: 'manual', source: 'slack', triggered_by: 'bob' })).toMatch(
      /trigger\s+manual from slack by bob$/,
    );
    expect(shown({ trigger: 'api', triggered_by: 'ci@example.com' })).toMatch(
      /trigger\s+api by ci@example\.com$/,
    );
    expect(shown({ trigger: 'api' })).toMatch(/trigger\s+api$/);
  });
});
