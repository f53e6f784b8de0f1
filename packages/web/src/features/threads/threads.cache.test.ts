import { describe, expect, it } from 'vitest';
import type { Run, RunList } from '@runlog/core';
import { applyRunToThread, dropRunFromThread, turnsOf, type ThreadRuns } from './threads.cache';
import { runFixture } from '../../../../core/test/fixtures';

const T0 = Date.parse('2025-01-01T00:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();

function run(id: string, at: number, over: Partial<Run> = {}): Run {
  return runFixture({
    id,
    agent_id: 'support-bot',
    thread_id: 'conv-1',
    status: 'succeeded',
    started_at: iso(at),
    created_at: iso(at),
    updated_at: iso(at),
    ...over,
  });
}

function page(runs: Run[], total: number, hasMore: boolean): RunList {
  return {
    runs,
    total,
    has_more: hasMore,
    next_cursor: hasMore ? `after-${runs.at(-1)?.id}` : null,
  };
}

/** Two pages read of a thread of five runs (e..a, newest first); `a` not read yet. */
function twoPages(): ThreadRuns {
  return {
    pages: [
      page([run('e', T0 + 40), run('d', T0 + 30)], 5, true),
      page([run('c', T0 + 20), run('b', T0 + 10)], 5, true),
    ],
    pageParams: [undefined, 'after-d'],
  };
}

const ids = (data: ThreadRuns) => data.pages.map((p) => p.runs.map((r) => r.id));

describe('applyRunToThread', () => {
  it('puts a new run at the top of the first page and counts it on every page', () => {
    const data = twoPages();
    const next = applyRunToThread(data, run('f', T0 + 50, { status: 'running' }));
    expect(ids(next)).toEqual([
      ['f', 'e', 'd'],
      ['c', 'b'],
    ]);
    expect(next.pages.map((p) => p.total)).toEqual([6, 6]);
    expect(next.pageParams).toBe(data.pageParams);
    expect(ids(data)).toEqual([
      ['e', 'd'],
      ['c', 'b'],
    ]);
  });

  it('replaces a run it holds in place with its newer state, on whichever page', () => {
    const data = twoPages();
    const failed = run('c', T0 + 20, { status: 'failed', updated_at: iso(T0 + 99) });
    const next = applyRunToThread(data, failed);
    expect(next.pages[1]!.runs[0]!.status).toBe('failed');
    expect(next.pages[0]).toBe(data.pages[0]);
    expect(next.pages.map((p) => p.total)).toEqual([5, 5]);
  });

  it('returns the same data for an update older than the state held', () => {
    const data = twoPages();
    const stale = run('d', T0 + 30, { status: 'running', updated_at: iso(T0 - 1) });
    expect(applyRunToThread(data, stale)).toBe(data);
  });

  it('places a late-recorded run among the pages read by its time', () => {
    const next = applyRunToThread(twoPages(), run('c2', T0 + 25));
    expect(ids(next)).toEqual([
      ['e', 'd'],
      ['c2', 'c', 'b'],
    ]);
  });

  it('leaves a run older than every page read to the next page, when there is one', () => {
    const data = twoPages();
    expect(applyRunToThread(data, run('a0', T0 - 5))).toBe(data);
  });

  it('appends a run older than all when every page has been read', () => {
    const data: ThreadRuns = {
      pages: [page([run('b', T0 + 10)], 1, false)],
      pageParams: [undefined],
    };
    expect(ids(applyRunToThread(data, run('a', T0)))).toEqual([['b', 'a']]);
    const empty: ThreadRuns = { pages: [page([], 0, false)], pageParams: [undefined] };
    const first = applyRunToThread(empty, run('a', T0));
    expect(ids(first)).toEqual([['a']]);
    expect(first.pages[0]!.total).toBe(1);
  });
});

describe('dropRunFromThread', () => {
  it('takes a deleted run out of its page and uncounts it on every page', () => {
    const next = dropRunFromThread(twoPages(), 'c');
    expect(ids(next)).toEqual([['e', 'd'], ['b']]);
    expect(next.pages.map((p) => p.total)).toEqual([4, 4]);
  });

  it('returns the same data for a run it does not hold', () => {
    const data = twoPages();
    expect(dropRunFromThread(data, 'zz')).toBe(data);
  });
});

describe('turnsOf', () => {
  it('lists the runs read, the oldest first', () => {
    expect(turnsOf(twoPages()).map((r) => r.id)).toEqual(['b', 'c', 'd', 'e']);
    expect(turnsOf(undefined)).toEqual([]);
  });

  it('lists a run once when a later page reads again a run folded in live', () => {
    const data = twoPages();
    data.pages[1]!.runs.unshift(run('d', T0 + 30, { status: 'failed' }));
    const turns = turnsOf(data);
    expect(turns.map((r) => r.id)).toEqual(['b', 'c', 'd', 'e']);
    // the newer page's state is kept
    expect(turns[2]!.status).toBe('succeeded');
  });
});
