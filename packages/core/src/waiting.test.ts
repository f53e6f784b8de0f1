import { describe, expect, it } from 'vitest';
import type { Worker } from './schemas.js';
import { WORKER_QUIET_MS, workerWait } from './waiting.js';

const NOW = Date.parse('2026-12-06T10:00:00Z');
const ago = (ms: number) => new Date(NOW - ms).toISOString();
const worker = (over: Partial<Worker>): Worker => ({
  id: 'w1',
  agents: ['triage'],
  first_seen_at: ago(3_600_000),
  last_seen_at: ago(1000),
  online: true,
  running: 0,
  running_runs: [],
  ...over,
});

describe('why a queued run waits', () => {
  it('says the agent is paused before anything else', () => {
    const since = ago(60_000);
    // no worker ever, or one at the cap: the pause is what holds the run back
    expect(workerWait('triage', null, [], NOW, { pausedAt: since })).toEqual({
      kind: 'paused',
      since,
    });
    expect(
      workerWait('triage', ago(1000), [worker({ running: 1 })], NOW, { cap: 1, pausedAt: since }),
    ).toEqual({ kind: 'paused', since });
    // resumed (null): as before
    expect(workerWait('triage', null, [], NOW, { pausedAt: null })).toEqual({ kind: 'none' });
  });

  it('says the 24 h budget holds the run back once the spend reaches it, after a pause', () => {
    const seenAt = ago(1000);
    const busy = [worker({ running: 1 })];
    expect(
      workerWait('triage', seenAt, busy, NOW, { cap: 1, budget: { capUsd: 5, spentUsd: 5 } }),
    ).toEqual({ kind: 'budget', spentUsd: 5, capUsd: 5 });
    expect(workerWait('triage', null, [], NOW, { budget: { capUsd: 5, spentUsd: 7.5 } })).toEqual({
      kind: 'budget',
      spentUsd: 7.5,
      capUsd: 5,
    });
    // under it, or no budget: as before
    expect(
      workerWait('triage', seenAt, busy, NOW, { budget: { capUsd: 5, spentUsd: 4.99 } }),
    ).toEqual({ kind: 'seen', seenAt });
    expect(workerWait('triage', null, [], NOW, { budget: { capUsd: null, spentUsd: 9 } })).toEqual({
      kind: 'none',
    });
    // paused as well: the pause is said, as resuming alone would not start it
    const since = ago(60_000);
    expect(
      workerWait('triage', null, [], NOW, { pausedAt: since, budget: { capUsd: 1, spentUsd: 2 } }),
    ).toEqual({ kind: 'paused', since });
  });

  it('says the cap holds the run back when the workers hold as many of its runs', () => {
    const seenAt = ago(1000);
    const holding = (ids: string[], agent = 'triage') =>
      ids.map((id) => ({ id, agent_id: agent, started_at: ago(5000) }));
    const two = [
      worker({ running: 1, running_runs: holding(['r1']) }),
      worker({
        id: 'w2',
        running: 2,
        running_runs: [...holding(['r2']), ...holding(['o'], 'other')],
      }),
    ];
    expect(workerWait('triage', seenAt, two, NOW, { cap: 2 })).toEqual({
      kind: 'capped',
      cap: 2,
      running: 2,
    });
    // under the cap, or without one: as before
    expect(workerWait('triage', seenAt, two, NOW, { cap: 3 })).toEqual({ kind: 'seen', seenAt });
    expect(workerWait('triage', seenAt, two, NOW)).toEqual({ kind: 'seen', seenAt });
    // the workers not read: nothing to tell
    expect(workerWait('triage', seenAt, undefined, NOW, { cap: 1 })).toEqual({
      kind: 'seen',
      seenAt,
    });
  });

  it("says the thread's cap holds it back when as many runs of its thread run", () => {
    const seenAt = ago(1000);
    const thread = (running: number) => ({ thread: { id: 't-1', cap: 1, running } });
    expect(workerWait('triage', seenAt, [worker({})], NOW, thread(1))).toEqual({
      kind: 'thread',
      threadId: 't-1',
      cap: 1,
      running: 1,
    });
    expect(workerWait('triage', seenAt, [worker({})], NOW, thread(0))).toEqual({
      kind: 'seen',
      seenAt,
    });
  });

  it('says no worker ever asked, whatever the list holds', () => {
    expect(workerWait('triage', null, [worker({})], NOW)).toEqual({ kind: 'none' });
  });

  it('tells a busy worker (slots all held, not asking) from a gone one', () => {
    const seenAt = ago(5 * 60_000);
    expect(workerWait('triage', seenAt, [worker({ running: 2 })], NOW)).toEqual({
      kind: 'busy',
      seenAt,
      workers: 1,
      held: 2,
    });
    // quiet and holding nothing, or holding runs of other agents only: not busy for this one
    expect(workerWait('triage', seenAt, [worker({})], NOW).kind).toBe('late');
    expect(
      workerWait('triage', seenAt, [worker({ agents: ['other'], running: 3 })], NOW).kind,
    ).toBe('late');
    // the list not read: nothing says it is busy
    expect(workerWait('triage', seenAt, undefined, NOW).kind).toBe('late');
  });

  it('says a worker that asked lately has stopped when none serving the agent is online', () => {
    const seenAt = ago(WORKER_QUIET_MS / 2);
    expect(workerWait('triage', seenAt, [worker({ online: false })], NOW).kind).toBe('stopped');
    expect(workerWait('triage', seenAt, [worker({})], NOW).kind).toBe('seen');
    expect(workerWait('triage', seenAt, undefined, NOW).kind).toBe('seen');
  });
});
