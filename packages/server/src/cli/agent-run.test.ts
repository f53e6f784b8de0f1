import { describe, expect, it } from 'vitest';
import { runFixture } from '../../../core/test/fixtures.js';
import { summarizeRuns } from './agent-run.js';

describe('summarizeRuns', () => {
  it('sums runs up: by status (most first), p50 and p95 duration, tokens, cost', () => {
    const runs = [
      ...Array.from({ length: 18 }, (_, i) =>
        runFixture({
          id: `ok-${i}`,
          status: 'succeeded',
          duration_ms: 1000 + i * 100,
          total_tokens: 500,
          cost_usd: 0.01,
        }),
      ),
      runFixture({
        id: 'slow',
        status: 'failed',
        duration_ms: 60_000,
        total_tokens: 1000,
        cost_usd: 0.05,
      }),
      runFixture({ id: 'lapsed', status: 'timed_out', duration_ms: null }),
    ];
    expect(summarizeRuns(runs)).toBe(
      '20 runs: 18 succeeded, 1 failed, 1 timed_out; p50 1.9s, p95 1m 00s; 10k tokens; $0.2300',
    );
  });

  it('leaves out the durations when no run has one', () => {
    expect(summarizeRuns([runFixture({ id: 'q', status: 'cancelled', duration_ms: null })])).toBe(
      '1 run: 1 cancelled; 0 tokens; $0',
    );
  });
});
