import { expect, it } from 'vitest';
import { QueryClient } from '@tanstack/react-query';
import type { Run, RunList } from '@runlog/core';
import { runFixture } from '../../../core/test/fixtures';
import { threadRunsKey } from '../features/threads/threads.queries';
import type { ThreadRuns } from '../features/threads/threads.cache';
import { foldRun } from './live';

const at = (s: number) => new Date(Date.UTC(2025, 0, 1, 0, 0, s)).toISOString();
const run = (id: string, thread: string, s: number, over: Partial<Run> = {}): Run =>
  runFixture({
    id,
    thread_id: thread,
    status: 'running',
    started_at: at(s),
    created_at: at(s),
    updated_at: at(s),
    ...over,
  });
const pages = (runs: Run[]): ThreadRuns => ({
  pages: [{ runs, total: runs.length, has_more: false, next_cursor: null } as RunList],
  pageParams: [undefined],
});

it('takes a run out of the conversation it left when an update moves it to another thread', () => {
  const client = new QueryClient();
  client.setQueryData(threadRunsKey('A'), pages([run('r2', 'A', 2), run('r1', 'A', 1)]));
  client.setQueryData(threadRunsKey('B'), pages([run('b1', 'B', 1)]));
  // run.update with another thread_id: the server stores the run under B now
  foldRun(client, run('r2', 'B', 2, { updated_at: at(3) }), { listed: true });
  const ids = (t: string) =>
    client
      .getQueryData<ThreadRuns>(threadRunsKey(t))!
      .pages.flatMap((p) => p.runs.map((r) => r.id));
  expect(ids('B')).toEqual(['r2', 'b1']);
  expect(ids('A')).toEqual(['r1']);
});
