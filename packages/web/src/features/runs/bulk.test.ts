import { describe, expect, it } from 'vitest';
import type { Run, RunStatus, Worker } from '@runlog/core';
import {
  agentsWithoutWorker,
  pausedAgents,
  overBudgetAgents,
  overBudgetText,
  countsText,
  planBulk,
  retryLabel,
  stopLabel,
  summaryText,
  type BulkOutcome,
} from './bulk';
import { runFixture } from '../../../../core/test/fixtures';

const run = (id: string, status: RunStatus, over: Partial<Run> = {}): Run =>
  runFixture({
    id,
    agent_id: 'bug-triager',
    status,
    started_at: '2026-12-06T10:00:00.000Z',
    created_at: '2026-12-06T10:00:00.000Z',
    updated_at: '2026-12-06T10:00:00.000Z',
    ...over,
  });

const ids = (runs: readonly Run[]) => runs.map((r) => r.id);

describe('which runs Retry and Stop act on', () => {
  const selected = [
    run('f1', 'failed'),
    run('t1', 'timed_out'),
    run('ok', 'succeeded'),
    run('c1', 'cancelled'),
    run('q1', 'queued'),
    run('r1', 'running'),
    run('r2', 'running', { cancel_requested_at: '2026-12-06T10:01:00.000Z' }),
  ];

  it('retries the runs that ended without succeeding, and leaves the rest alone', () => {
    const plan = planBulk(selected);
    expect(ids(plan.retry)).toEqual(['f1', 't1', 'c1']);
    // the queued and running runs (a retry would run them twice), and the one that succeeded
    expect(plan.retryActive + plan.retrySucceeded).toBe(4);
    expect(plan.retryActive).toBe(3);
    expect(plan.retrySucceeded).toBe(1);
    expect(retryLabel(planBulk([run('ok', 'succeeded'), run('ok2', 'succeeded')]))).toBe('Retry');
  });

  it('stops the queued and running runs, not those ended or asked to stop already', () => {
    const plan = planBulk(selected);
    expect(ids(plan.stop)).toEqual(['q1', 'r1']);
    expect(plan.stopSkipped).toBe(5);
  });

  it('names on each button how many runs it acts on, and of which kind', () => {
    expect(retryLabel(planBulk([run('a', 'failed'), run('b', 'failed')]))).toBe(
      'Retry 2 failed runs',
    );
    expect(retryLabel(planBulk([run('a', 'failed')]))).toBe('Retry 1 failed run');
    expect(retryLabel(planBulk([run('a', 'timed_out')]))).toBe('Retry 1 timed-out run');
    expect(retryLabel(planBulk(selected))).toBe('Retry 3 unsuccessful runs');
    expect(stopLabel(planBulk(selected))).toBe('Stop 2 active runs');
    expect(stopLabel(planBulk([run('q', 'queued'), run('r', 'queued')]))).toBe(
      'Stop 2 queued runs',
    );
    expect(
      retryLabel(planBulk(Array.from({ length: 1234 }, (_, i) => run(`x${i}`, 'failed')))),
    ).toBe('Retry 1,234 failed runs');
  });

  it('says plainly when a button has nothing to act on', () => {
    expect(retryLabel(planBulk([run('q', 'queued')]))).toBe('Retry');
    expect(stopLabel(planBulk([run('f', 'failed')]))).toBe('Stop');
  });
});

describe('the agents no worker serves now', () => {
  const now = Date.parse('2026-12-06T12:00:00.000Z');
  const worker = (agents: string[], online = true): Worker => ({
    id: 'w1',
    agents,
    online,
    running: 0,
    running_runs: [],
    first_seen_at: '2026-12-06T11:00:00.000Z',
    last_seen_at: '2026-12-06T11:59:59.000Z',
  });
  const runs = [
    run('a', 'failed'),
    run('b', 'failed', { agent_id: 'code-reviewer' }),
    run('c', 'failed', { agent_id: 'support-bot' }),
  ];
  const agents = [
    { id: 'bug-triager', worker_seen_at: '2026-12-06T11:59:59.000Z' },
    { id: 'code-reviewer', worker_seen_at: null },
    { id: 'support-bot', worker_seen_at: '2026-12-06T11:59:00.000Z' },
  ];

  it('names the agents of the runs whose retries no worker would take', () => {
    // code-reviewer never had a worker; support-bot's asked a minute ago and has stopped
    expect(agentsWithoutWorker(runs, agents, [worker(['bug-triager'])], now)).toEqual([
      'code-reviewer',
      'support-bot',
    ]);
    // support-bot's worker still serves it
    expect(
      agentsWithoutWorker(runs, agents, [worker(['bug-triager', 'support-bot'])], now),
    ).toEqual(['code-reviewer']);
    // the agents not read yet: nothing to say
    expect(agentsWithoutWorker(runs, undefined, undefined, now)).toEqual([]);
  });

  it('names the agents of the runs that are paused, whose retries wait until resumed', () => {
    const held = [
      { id: 'bug-triager', paused_at: null },
      { id: 'code-reviewer', paused_at: '2026-12-06T11:00:00.000Z' },
      { id: 'support-bot', paused_at: null },
      { id: 'other-bot', paused_at: '2026-12-06T10:00:00.000Z' },
    ];
    // other-bot is paused too, but none of the runs is its
    expect(
      pausedAgents([...runs, run('d', 'failed', { agent_id: 'code-reviewer' })], held),
    ).toEqual(['code-reviewer']);
    expect(pausedAgents(runs, undefined)).toEqual([]);
  });

  it('names the agents of the runs that are over their budget, with what they cost against it', () => {
    const agent = (
      id: string,
      cap: number | null,
      spent: number,
      pausedAt: string | null = null,
    ) => ({
      id,
      paused_at: pausedAt,
      max_cost_usd_24h: cap,
      counts_24h: { cost_usd: spent },
    });
    const held = [
      agent('bug-triager', 0.05, 0.04),
      // at its budget is over it, as workerWait holds runs back
      agent('code-reviewer', 0.05, 0.05),
      agent('support-bot', 1, 1.5),
      // over its budget too, but none of the runs is its
      agent('other-bot', 0.01, 2),
    ];
    const mine = [...runs, run('d', 'failed', { agent_id: 'support-bot' })];
    expect(overBudgetAgents(mine, held)).toEqual([
      { agentId: 'code-reviewer', spentUsd: 0.05, capUsd: 0.05 },
      { agentId: 'support-bot', spentUsd: 1.5, capUsd: 1 },
    ]);
    // bug-triager under its budget, above; without one, no cost is over it
    expect(overBudgetAgents(runs, [agent('bug-triager', null, 900)])).toEqual([]);
    // paused as well: said paused alone, as workerWait says it
    const paused = agent('support-bot', 1, 1.5, '2026-12-06T11:00:00.000Z');
    expect(overBudgetAgents(runs, [paused])).toEqual([]);
    expect(pausedAgents(runs, [paused])).toEqual(['support-bot']);
    expect(overBudgetAgents(runs, undefined)).toEqual([]);
  });

  it("says an agent's 24 h cost against its budget", () => {
    expect(overBudgetText({ spentUsd: 0.06, capUsd: 0.05 })).toBe(
      '$0.06 of $0.05 in the last 24 hours',
    );
    expect(overBudgetText({ spentUsd: 20.5, capUsd: 20 })).toBe(
      '$20.50 of $20 in the last 24 hours',
    );
  });
});

describe('what a pass came to', () => {
  const r = (id: string) => run(id, 'failed');
  const to = run('new', 'queued');
  const outcomes: BulkOutcome[] = [
    { run: r('a'), result: 'queued', to },
    { run: r('b'), result: 'queued', to },
    { run: r('c'), result: 'already', to },
    { run: r('d'), result: 'failed', error: 'run d not found' },
  ];

  it('counts what each run came to, leaving out what none did', () => {
    expect(summaryText('retry', outcomes)).toBe(
      'Retry of 4 runs: queued 2 · already retried 1 · failed 1',
    );
    expect(summaryText('retry', outcomes.slice(0, 2))).toBe('Retry of 2 runs: queued 2');
  });

  it('does not say runs were retried or stopped when none was', () => {
    // "Retried 3 runs: already retried 3" read as three new retries queued
    expect(summaryText('retry', [outcomes[2]!, outcomes[2]!, outcomes[2]!])).toBe(
      'Retry of 3 runs: already retried 3',
    );
    const ended: BulkOutcome = { run: run('e', 'running'), result: 'ended' };
    expect(summaryText('stop', [ended, ended])).toBe('Stop of 2 runs: had ended 2');
  });

  it('says where a cancelled pass stopped', () => {
    const cut: BulkOutcome[] = [...outcomes, { run: r('e'), result: 'not_sent' }];
    expect(summaryText('retry', cut)).toBe(
      'Retry cancelled after 4 of 5 runs: queued 2 · already retried 1 · failed 1 · not sent 1',
    );
  });

  it('tells a stopped queued run from a running one asked to stop and one that had ended', () => {
    const stops: BulkOutcome[] = [
      { run: run('q', 'queued'), result: 'cancelled', to: run('q', 'cancelled') },
      { run: run('r', 'running'), result: 'stopping', to: run('r', 'running') },
      { run: run('e', 'running'), result: 'ended' },
    ];
    expect(summaryText('stop', stops)).toBe(
      'Stop of 3 runs: cancelled 1 · stop requested 1 · had ended 1',
    );
    expect(countsText('stop', stops.slice(0, 1))).toBe('cancelled 1');
  });
});
