import { expect, it } from 'vitest';
import { readableError, type Agent, type Run } from '@runlog/core';
import {
  agentMetricsText,
  agentRequests,
  instancesOnOneDatabase,
  reimportedAgent,
} from './control-helpers.js';
import { describeEachDb, waitFor } from './harness.js';

interface ErrorBody {
  error: { code: string; details: { field: string; message: string }[] };
}

describeEachDb('a paused agent', (dialect) => {
  let seq = 0;
  const agentName = (base: string) => `${base}-${Date.now().toString(36)}-${seq++}`;
  // on PostgreSQL a second instance on the same database: a pause holds on both
  const { server, call } = instancesOnOneDatabase(dialect, {
    schedulerIntervalMs: 50,
    sweepIntervalMs: 50,
  });
  const { put, enqueue, claim } = agentRequests(call);

  it('is set by PUT /agents/:id {paused}, kept by other changes, and refused when not a boolean', async () => {
    const agent = agentName('pausing');
    const before = Date.now();
    const paused = await put(agent, { paused: true });
    expect(Date.parse(paused.paused_at!)).toBeGreaterThanOrEqual(before - 1);
    // paused again, or another change: it keeps the time it was first paused
    expect((await put(agent, { paused: true }, 1)).paused_at).toBe(paused.paused_at);
    expect((await put(agent, { name: 'Pausing' })).paused_at).toBe(paused.paused_at);
    const read = await call('GET', `/api/v1/agents/${agent}`, undefined, 1);
    expect((read.body as Agent).paused_at).toBe(paused.paused_at);
    const listed = await call('GET', '/api/v1/agents');
    expect((listed.body as { agents: Agent[] }).agents.find((a) => a.id === agent)?.paused_at).toBe(
      paused.paused_at,
    );
    // not a boolean: a 400 naming it, and the agent as it was
    const refused = await call('PUT', `/api/v1/agents/${agent}`, { paused: 'yes' });
    expect(refused.status).toBe(400);
    expect((refused.body as ErrorBody).error.details.map((d) => d.field)).toEqual(['body.paused']);
    expect((await put(agent, { paused: false })).paused_at).toBeNull();
  });

  it('hands none of its queued runs to a worker until resumed; other agents go on', async () => {
    const held = agentName('held');
    const other = agentName('other');
    await put(held, { paused: true });
    // queued while paused: taken, waiting
    const first = await enqueue(held);
    const second = await enqueue(held);
    const others = await enqueue(other);
    // the paused agent's runs are the oldest: a claim for both takes the other's
    expect(await claim([held, other], 1)).toEqual([others]);
    expect(await claim([held])).toEqual([]);
    const queued = await call('GET', `/api/v1/runs/${first}`);
    expect((queued.body as Run).status).toBe('queued');
    // resumed on one instance, claimed on the other: oldest first
    await put(held, { paused: false }, 1);
    expect(await claim([held])).toEqual([first, second]);
    // paused while a run of it runs: the run goes on, its end is recorded
    await put(held, { paused: true });
    const end = await call('POST', '/api/v1/ingest', {
      events: [{ type: 'run.end', run: { id: first, status: 'succeeded' } }],
    });
    expect(end.status).toBe(200);
    expect(((await call('GET', `/api/v1/runs/${first}`)).body as Run).status).toBe('succeeded');
  });

  it('keeps its queued runs past their timeout while paused; their wait counts again from the resume', async () => {
    const agent = agentName('timed');
    await put(agent, { timeout_ms: 1000, paused: true });
    const kept = await enqueue(agent);
    const late = await enqueue(agent);
    const status = async (id: string) =>
      ((await call('GET', `/api/v1/runs/${id}`)).body as Run).status;
    // twice its timeout, with the sweep looking every 50 ms
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect(await status(kept)).toBe('queued');
    expect(await status(late)).toBe('queued');
    await put(agent, { paused: false }, 1);
    // a whole timeout to be claimed in, from the resume: six sweeps later both still wait
    // (their deadlines, a second after they were queued, passed while paused)
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await status(kept)).toBe('queued');
    expect(await status(late)).toBe('queued');
    const claimed = await call('POST', '/api/v1/workers/claim', {
      agents: [agent],
      max: 1,
      worker_id: 'w-timed',
      wait_ms: 0,
    });
    expect((claimed.body as { runs: Run[] }).runs.map((r) => r.id)).toEqual([kept]);
    await waitFor(
      async () => (await status(late)) === 'timed_out',
      'the other to time out',
      10_000,
    );
    const ended = (await call('GET', `/api/v1/runs/${late}`)).body as Run;
    // the agent's timeout_ms, not the time since it was queued
    expect(ended.error && readableError(ended.error).message).toBe(
      "timed out after timeout_ms (1000 ms) while still queued: no worker claimed it in time (none asked, or its agent's concurrency caps held it back)",
    );
  });

  it('wakes a long-polling claim once resumed', async () => {
    const agent = agentName('polled');
    await put(agent, { paused: true });
    const id = await enqueue(agent);
    const waiting = call(
      'POST',
      '/api/v1/workers/claim',
      { agents: [agent], max: 1, worker_id: 'w-poll', wait_ms: 20_000 },
      1,
    );
    let answeredAt = 0;
    void waiting.then(() => (answeredAt = Date.now()));
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const resumedAt = Date.now();
    await put(agent, { paused: false });
    const res = await waiting;
    // it waited for the resume, and took the run within its look-again
    expect(answeredAt).toBeGreaterThanOrEqual(resumedAt);
    expect(res.status).toBe(200);
    expect((res.body as { runs: Run[] }).runs.map((r) => r.id)).toEqual([id]);
  });

  it('queues no run on its schedule while paused, and goes on from the next slot once resumed', async () => {
    const agent = agentName('scheduled');
    const ctx = server().ctx;
    const slots = async () =>
      (
        await ctx.db.kysely
          .selectFrom('runs')
          .select('metadata')
          .where('agent_id', '=', agent)
          .execute()
      ).map((r) => Date.parse((JSON.parse(r.metadata) as { schedule_slot: string }).schedule_slot));
    try {
      await put(agent, { schedule: { cron: '* * * * * *' } });
      await waitFor(async () => (await slots()).length >= 1, 'a first slot', 15_000);
      const paused = await put(agent, { paused: true }, 1);
      // the schedule itself is not paused; the agent is, and no next run is said
      expect(paused.schedule).toMatchObject({ paused: false });
      expect(paused.next_run_at).toBeNull();
      const atPause = (await slots()).length;
      await new Promise((r) => setTimeout(r, 2500));
      expect(await slots()).toHaveLength(atPause);
      const resumedAt = Date.now();
      const resumed = await put(agent, { paused: false });
      expect(Date.parse(resumed.next_run_at!)).toBeGreaterThan(resumedAt);
      await waitFor(async () => (await slots()).length > atPause, 'a slot after resuming', 15_000);
      // the slots passed while paused never ran
      const after = (await slots()).sort((a, b) => a - b).slice(atPause);
      expect(after.every((slot) => slot > resumedAt)).toBe(true);
    } finally {
      await put(agent, { schedule: null, paused: false });
    }
  });

  it('is a gauge in /metrics, and goes with the agent through an export and an import', async () => {
    const agent = agentName('gauged');
    const paused = await put(agent, { paused: true });
    const text = await agentMetricsText(server());
    expect(text).toContain(`runlog_agent_paused{project="default",agent="${agent}"} 1`);
    expect(text).toMatch(/^runlog_agent_paused\{project="default",agent="other-[^"]+"\} 0$/m);

    const row = await reimportedAgent(server(), agent, `restored-${seq++}`);
    expect(row.paused_at).toBe(Date.parse(paused.paused_at!));
  });
});
