import { describe, expect, it } from 'vitest';
import { QueryClient } from '@tanstack/react-query';
import { TRUNCATED_MARKER, type RunWithSteps } from '@runlog/core';
import { runFixture } from '../../../core/test/fixtures';
import { runDetailKey } from '../features/run-detail/runDetail.queries';
import { foldRun } from './live';

describe('foldRun and a run page', () => {
  const input = 'i'.repeat(70_000);
  const cached = (client: QueryClient) => {
    const run = runFixture({ id: 'r1', input, updated_at: '2026-01-01T00:00:00.000Z' });
    client.setQueryData<RunWithSteps>(runDetailKey('r1'), { ...run, steps: [] });
    return run;
  };
  const preview = { [TRUNCATED_MARKER]: true, original_size: 70_002, preview: '"iii' };

  it('keeps the whole fields of a page when a list topic sends them as previews', () => {
    const client = new QueryClient();
    const run = cached(client);
    const later = { ...run, status: 'succeeded' as const, updated_at: '2026-01-01T00:00:01.000Z' };
    foldRun(client, { ...later, input: preview }, { listed: true });
    const detail = client.getQueryState(runDetailKey('r1'));
    // before, the page's input became the preview, shown until the page refetched
    expect(client.getQueryData<RunWithSteps>(runDetailKey('r1'))!.input).toBe(input);
    expect(detail?.isInvalidated).toBe(true);
    // the run's own topic carries it whole and is folded
    foldRun(client, later, { listed: false });
    expect(client.getQueryData<RunWithSteps>(runDetailKey('r1'))).toMatchObject({
      status: 'succeeded',
      input,
    });
  });

  it('folds a list topic update without previews as before', () => {
    const client = new QueryClient();
    const run = cached(client);
    foldRun(
      client,
      { ...run, status: 'failed', updated_at: '2026-01-01T00:00:01.000Z' },
      { listed: true },
    );
    expect(client.getQueryData<RunWithSteps>(runDetailKey('r1'))?.status).toBe('failed');
  });
});
