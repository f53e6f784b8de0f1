import { expect, it } from 'vitest';
import { TRUNCATED_MARKER, type ThreadSummary } from '@runlog/core';
import { runFixture } from '../../../core/test/fixtures.js';
import { Palette } from './format.js';
import { showThread } from './data.commands.js';

it('runlog threads show: says a turn whose input the server stored truncated by its text, not the marker', () => {
  const thread = {
    thread_id: 't',
    runs: 1,
    failed: 0,
    active: 0,
    agent_ids: ['a'],
    user_id: null,
    first_at: '2025-01-01T00:00:00.000Z',
    last_at: '2025-01-01T00:00:00.000Z',
    total_tokens: 0,
    cost_usd: 0,
    first_run: { id: 'r1', input: 'Hello' },
    last_run: { id: 'r1', status: 'succeeded', agent_id: 'a', output: null, error: null },
  } as ThreadSummary;
  const run = runFixture({
    id: 'r1',
    thread_id: 't',
    status: 'succeeded',
    input: { [TRUNCATED_MARKER]: true, original_size: 2_000_000, preview: '{"query":"Hello there' },
  });
  const out = showThread(thread, [run], 0, Palette.for({ isTTY: false }, {}));
  expect(out).not.toContain(TRUNCATED_MARKER);
  expect(out).toContain('Hello there');
});
