import { describe, expect, it } from 'vitest';
import type { AgentSummary, Run, RunList } from '@runlog/core';
import {
  applyRunToAgents,
  applyRunToList,
  applyRunUpdate,
  dropRunFromList,
  newerRun,
  removeRunFromList,
  replaceRunInList,
  runMatches,
} from './runs.cache';
import { formatDuration, runDuration } from '../../lib/format';
import { agentSummaryFixture, runFixture } from '../../../../core/test/fixtures';

const T0 = Date.parse('2025-01-01T00:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();

function run(id: string, at: number, over: Partial<Run> = {}): Run {
  return runFixture({
    id,
    agent_id: 'triager',
    status: 'queued',
    trigger: 'manual',
    source: 'dashboard',
    queued_at: iso(at),
    created_at: iso(at),
    updated_at: iso(at),
    ...over,
  });
}

describe('applyRunUpdate', () => {
  it('prepends a new run above older ones', () => {
    const list = [run('b', T0 + 10), run('a', T0)];
    const next = applyRunUpdate(list, run('c', T0 + 20));
    expect(next.map((r) => r.id)).toEqual(['c', 'b', 'a']);
    expect(list.map((r) => r.id)).toEqual(['b', 'a']);
  });

  it('replaces an existing run in place with its newer state', () => {
    const list = [run('b', T0 + 10), run('a', T0)];
    const running = run('a', T0, { status: 'running', updated_at: iso(T0 + 50) });
    const next = applyRunUpdate(list, running);
    expect(next.map((r) => [r.id, r.status])).toEqual([
      ['b', 'queued'],
      ['a', 'running'],
    ]);
  });

  it('keeps at most 20 runs, dropping the oldest', () => {
    let list: Run[] = [];
    for (let i = 0; i < 25; i++) list = applyRunUpdate(list, run(`r${i}`, T0 + i));
    expect(list).toHaveLength(20);
    expect(list[0]?.id).toBe('r24');
    expect(list[19]?.id).toBe('r5');
  });

  it('ignores a run older than a full list', () => {
    const list = Array.from({ length: 20 }, (_, i) => run(`r${i}`, T0 + 100 - i));
    const next = applyRunUpdate(list, run('old', T0));
    expect(next).toBe(list);
  });

  it('puts a run recorded late where its start puts it, as the server lists it, not on top', () => {
    const list = [run('b', T0 + 10), run('a', T0)];
    // recorded now, started between a and b, never queued
    const late = run('late', T0 + 5, {
      queued_at: null,
      started_at: iso(T0 + 5),
      created_at: iso(T0 + 99),
    });
    expect(applyRunUpdate(list, late).map((r) => r.id)).toEqual(['b', 'late', 'a']);
    // and a date filter reads the same time
    expect(runMatches(late, { from: T0 + 50 })).toBe(false);
    expect(runMatches(late, { from: T0, to: T0 + 6 })).toBe(true);
  });

  it('puts a run stopped before its later start where it ended, as the server lists it', () => {
    const list = [run('b', T0 + 10), run('a', T0)];
    // queued to start a day later, stopped between a and b: never started
    const stopped = run('stopped', T0 + 86_400_000, {
      status: 'cancelled',
      ended_at: iso(T0 + 5),
    });
    expect(applyRunUpdate(list, stopped).map((r) => r.id)).toEqual(['b', 'stopped', 'a']);
    expect(runMatches(stopped, { to: T0 + 6 })).toBe(true);
    // a queued run that timed out after its start came is listed at that start
    const late = run('late', T0 + 7, { status: 'timed_out', ended_at: iso(T0 + 50) });
    expect(applyRunUpdate(list, late).map((r) => r.id)).toEqual(['b', 'late', 'a']);
  });

  it('never moves a finished run back to running when updates arrive late', () => {
    const done = run('a', T0, { status: 'succeeded', updated_at: iso(T0 + 100) });
    const lateRunning = run('a', T0, { status: 'running', updated_at: iso(T0 + 200) });
    expect(applyRunUpdate([done], lateRunning)[0]?.status).toBe('succeeded');
    expect(newerRun(done, lateRunning)).toBe(done);
  });

  it('drops an update older than the state it already has', () => {
    const current = run('a', T0, { status: 'running', updated_at: iso(T0 + 100) });
    const stale = run('a', T0, { status: 'queued', updated_at: iso(T0 + 50) });
    const list = [current];
    expect(applyRunUpdate(list, stale)).toBe(list);
  });
});

describe('applyRunToList', () => {
  const page = (runs: Run[], total = runs.length): RunList => ({
    runs,
    total,
    has_more: false,
    next_cursor: null,
  });

  it('counts a new run in the total and marks more when the page overflows', () => {
    const data = page([run('b', T0 + 1), run('a', T0)]);
    const next = applyRunToList(data, run('c', T0 + 2), 2);
    expect(next.runs.map((r) => r.id)).toEqual(['c', 'b']);
    expect(next.total).toBe(3);
    expect(next.has_more).toBe(true);
  });

  it('does not count a replaced run twice', () => {
    const data = page([run('a', T0)]);
    const next = applyRunToList(
      data,
      run('a', T0, { status: 'running', updated_at: iso(T0 + 1) }),
      50,
    );
    expect(next.total).toBe(1);
    expect(next.runs[0]?.status).toBe('running');
  });

  it('takes out a run that left the filter, uncounting it, unless the update is stale', () => {
    const running = run('a', T0, { status: 'running', updated_at: iso(T0 + 5) });
    const data = page([run('b', T0 + 1, { status: 'running' }), running], 7);
    const ended = { ...running, status: 'succeeded' as const, updated_at: iso(T0 + 9) };
    const next = removeRunFromList(data, ended);
    expect(next.runs.map((r) => r.id)).toEqual(['b']);
    expect(next.total).toBe(6);
    const stale = { ...running, status: 'queued' as const, updated_at: iso(T0 + 1) };
    expect(removeRunFromList(data, stale)).toBe(data);
    expect(removeRunFromList(data, run('z', T0 + 5))).toBe(data);
  });

  it('drops a deleted run from a list, uncounting it, and leaves a list without it alone', () => {
    const data = page([run('b', T0 + 1), run('a', T0)], 7);
    const next = dropRunFromList(data, 'a');
    expect(next.runs.map((r) => r.id)).toEqual(['b']);
    expect(next.total).toBe(6);
    expect(dropRunFromList(data, 'z')).toBe(data);
  });

  it('replaceRunInList leaves runs it does not hold alone', () => {
    const data = page([run('a', T0)]);
    expect(replaceRunInList(data, run('z', T0 + 5))).toBe(data);
  });
});

describe('runMatches', () => {
  it('checks agent, status and trigger filters and defers text search to the server', () => {
    const r = run('a', T0, { status: 'failed', trigger: 'retry' });
    expect(runMatches(r, { status: ['failed'] })).toBe(true);
    expect(runMatches(r, { status: ['succeeded'] })).toBe(false);
    expect(runMatches(r, { agent_id: ['other'] })).toBe(false);
    expect(runMatches(r, { trigger: ['manual'] })).toBe(false);
    expect(runMatches(r, { from: T0 + 1 })).toBe(false);
    expect(runMatches(r, { q: 'boom' })).toBeUndefined();
  });

  it('checks thread, user, tag and parent run exactly, so a live update joins only its list', () => {
    const r = run('a', T0, {
      thread_id: 't-1',
      user_id: 'dana',
      tags: ['prod'],
      parent_run_id: 'p',
    });
    expect(
      runMatches(r, { thread_id: 't-1', user_id: 'dana', tag: 'prod', parent_run_id: 'p' }),
    ).toBe(true);
    expect(runMatches(r, { thread_id: 't-2' })).toBe(false);
    expect(runMatches(r, { user_id: 'dan' })).toBe(false);
    expect(runMatches(r, { tag: 'pro' })).toBe(false);
    expect(runMatches(r, { parent_run_id: 'q' })).toBe(false);
  });

  it("tells a score filter from the run's summary where it can, else leaves it to the server", () => {
    const r = run('a', T0, {
      scores: {
        feedback: { type: 'boolean', n: 1, avg: 0, labels: {} },
        helpfulness: { type: 'numeric', n: 2, avg: 0.7, labels: {} },
        topic: { type: 'categorical', n: 1, avg: null, labels: { billing: 1 } },
      },
    });
    expect(runMatches(r, { score: 'feedback' })).toBe(true);
    expect(runMatches(r, { score: 'accuracy' })).toBe(false);
    // one score: its value is the mean, so a thumbs down is within score_max=0
    expect(runMatches(r, { score: 'feedback', score_max: 0 })).toBe(true);
    expect(runMatches(r, { score: 'feedback', score_min: 1 })).toBe(false);
    // two scores averaging 0.7 may or may not have one above 0.9: the server says
    expect(runMatches(r, { score: 'helpfulness', score_min: 0.9 })).toBeUndefined();
    expect(runMatches(r, { score: 'topic', score_label: 'billing' })).toBe(true);
    expect(runMatches(r, { score: 'topic', score_label: 'refund' })).toBe(false);
    expect(runMatches(r, { score: 'topic', score_min: 0 })).toBe(false);
    expect(runMatches(run('b', T0), { score: 'feedback', score_max: 0 })).toBe(false);
  });
});

describe('applyRunToAgents', () => {
  const agent = (latest: Run | null): AgentSummary =>
    agentSummaryFixture({
      created_at: iso(T0),
      updated_at: iso(T0),
      latest_run: latest,
      counts_24h: { ...agentSummaryFixture().counts_24h, runs: 1 },
    });

  it('makes a newer run the agent latest run and records a failure as its last error', () => {
    const list = [agent(run('a', T0))];
    const failed = run('b', T0 + 10, {
      status: 'failed',
      error: { message: 'rate limited' },
      ended_at: iso(T0 + 20),
      updated_at: iso(T0 + 20),
    });
    const next = applyRunToAgents(list, failed);
    expect(next[0]?.latest_run?.id).toBe('b');
    expect(next[0]?.last_error).toEqual({ run_id: 'b', message: 'rate limited', at: iso(T0 + 20) });
  });

  it('keeps the latest run when an older run changes', () => {
    const list = [agent(run('b', T0 + 10))];
    const next = applyRunToAgents(list, run('a', T0, { status: 'succeeded' }));
    expect(next).toBe(list);
  });

  it('leaves out a run queued to start later, which has not happened yet, until it is due', () => {
    const list = [agent(run('a', T0, { status: 'succeeded' }))];
    const later = run('later', T0 + 3_600_000);
    expect(applyRunToAgents(list, later, T0 + 10)).toBe(list);
    expect(applyRunToAgents(list, later, T0 + 3_600_000)[0]?.latest_run?.id).toBe('later');
    // a run recorded from a host whose clock is ahead did happen
    const ahead = run('ahead', T0 + 30_000, { status: 'running', started_at: iso(T0 + 30_000) });
    expect(applyRunToAgents(list, ahead, T0 + 10)[0]?.latest_run?.id).toBe('ahead');
  });
});

describe('runDuration', () => {
  it('ticks with the clock while a run is running', () => {
    const r = run('a', T0, { status: 'running', started_at: iso(T0) });
    expect(runDuration(r, T0 + 1500)).toBe(1500);
    expect(runDuration(r, T0 + 4200)).toBe(4200);
  });

  it('stops at the recorded duration once the run ends', () => {
    const r = run('a', T0, {
      status: 'succeeded',
      started_at: iso(T0),
      ended_at: iso(T0 + 900),
      duration_ms: 900,
    });
    expect(runDuration(r, T0 + 60_000)).toBe(900);
  });

  it('has no duration while queued', () => {
    expect(runDuration(run('a', T0), T0 + 5000)).toBeNull();
  });

  it('formats durations at each scale', () => {
    expect(formatDuration(850)).toBe('850 ms');
    expect(formatDuration(4200)).toBe('4.2 s');
    expect(formatDuration(185_000)).toBe('3 m 05 s');
    expect(formatDuration(null)).toBe('—');
  });
});
