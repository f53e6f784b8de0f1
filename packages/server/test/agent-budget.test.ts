import { expect, it } from 'vitest';
import type { Agent, AgentSummary, Run } from '@runlog/core';
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

const HOUR_MS = 3_600_000;

describeEachDb('an agent over its 24 h budget', (dialect) => {
  let seq = 0;
  const agentName = (base: string) => `${base}-${Date.now().toString(36)}-${seq++}`;
  // on PostgreSQL a second instance on the same database: the budget holds on both
  const { server, call } = instancesOnOneDatabase(dialect, { schedulerIntervalMs: 50 });
  const { put, enqueue, claim, spend } = agentRequests(call);
  const summary = async (agent: string) =>
    (await call('GET', `/api/v1/agents/${agent}`)).body as AgentSummary;

  it('is set by PUT /agents/:id, kept by other changes, cleared by null, and refused out of range', async () => {
    const agent = agentName('budgeted');
    expect((await put(agent, { max_cost_usd_24h: 2.5 })).max_cost_usd_24h).toBe(2.5);
    expect((await put(agent, { name: 'Budgeted' }, 1)).max_cost_usd_24h).toBe(2.5);
    const listed = await call('GET', '/api/v1/agents');
    expect(
      (listed.body as { agents: Agent[] }).agents.find((a) => a.id === agent)?.max_cost_usd_24h,
    ).toBe(2.5);
    for (const bad of [0, -1, 'ten', 2e9]) {
      const refused = await call('PUT', `/api/v1/agents/${agent}`, { max_cost_usd_24h: bad });
      expect(refused.status).toBe(400);
      expect((refused.body as ErrorBody).error.details.map((d) => d.field)).toEqual([
        'body.max_cost_usd_24h',
      ]);
    }
    expect((await summary(agent)).max_cost_usd_24h).toBe(2.5);
    expect((await put(agent, { max_cost_usd_24h: null })).max_cost_usd_24h).toBeNull();
  });

  it('holds its queued runs back while the last 24 hours cost the budget; other agents go on', async () => {
    const agent = agentName('spender');
    const other = agentName('thrifty');
    await put(agent, { max_cost_usd_24h: 0.01 });
    // under the budget: claimed as usual
    await spend(agent, 0.004);
    const first = await enqueue(agent);
    expect(await claim([agent])).toEqual([first]);
    // at it (0.004 + 0.006): held back, on either instance, while another agent's run is taken
    await spend(agent, 0.006);
    expect((await summary(agent)).counts_24h.cost_usd).toBeCloseTo(0.01, 9);
    const held = await enqueue(agent);
    const others = await enqueue(other);
    expect(await claim([agent, other], 1)).toEqual([others]);
    expect(await claim([agent])).toEqual([]);
    expect(((await call('GET', `/api/v1/runs/${held}`)).body as Run).status).toBe('queued');
    // a run started 25 hours ago counts for nothing, however much it cost
    const longAgo = agentName('long-ago');
    await put(longAgo, { max_cost_usd_24h: 0.01 });
    await spend(longAgo, 5, Date.now() - 26 * HOUR_MS);
    const fresh = await enqueue(longAgo);
    expect(await claim([longAgo], 1)).toEqual([fresh]);
    // a higher budget, set on the other instance: the held run is taken at once
    await put(agent, { max_cost_usd_24h: 0.02 }, 1);
    expect(await claim([agent])).toEqual([held]);
    // and so with the budget cleared, once spent again
    await spend(agent, 0.02);
    const again = await enqueue(agent);
    expect(await claim([agent])).toEqual([]);
    await put(agent, { max_cost_usd_24h: null });
    expect(await claim([agent], 1)).toEqual([again]);
  });

  it('skips the slots of its schedule while over it, without queueing them for later', async () => {
    const agent = agentName('scheduled');
    const ctx = server().ctx;
    const scheduled = async () =>
      (
        await ctx.db.kysely
          .selectFrom('runs')
          .select('id')
          .where('agent_id', '=', agent)
          .where('trigger', '=', 'schedule')
          .execute()
      ).length;
    try {
      await put(agent, { schedule: { cron: '* * * * * *' }, max_cost_usd_24h: 0.01 });
      await waitFor(async () => (await scheduled()) >= 1, 'a first slot', 15_000);
      await spend(agent, 0.01);
      // a slot fired as the spend landed may have queued; none after it
      await new Promise((r) => setTimeout(r, 1200));
      const atBudget = await scheduled();
      await new Promise((r) => setTimeout(r, 2500));
      expect(await scheduled()).toBe(atBudget);
      // still ticking: its next slot is said, and a higher budget lets the next one queue
      expect((await summary(agent)).next_run_at).not.toBeNull();
      await put(agent, { max_cost_usd_24h: 1 }, 1);
      await waitFor(async () => (await scheduled()) > atBudget, 'a slot after the raise', 15_000);
      // the slots skipped were not queued late: one or two more, not the three passed
      await new Promise((r) => setTimeout(r, 300));
      expect(await scheduled()).toBeLessThanOrEqual(atBudget + 2);
    } finally {
      await put(agent, { schedule: null });
    }
  });

  it('is a gauge in /metrics beside its cost, and goes with the agent through an export and an import', async () => {
    const agent = agentName('gauged');
    await put(agent, { max_cost_usd_24h: 0.75 });
    const text = await agentMetricsText(server());
    expect(text).toContain(
      `runlog_agent_max_cost_usd_24h{project="default",agent="${agent}"} 0.75`,
    );
    // only agents with a budget have the series
    expect(text).not.toMatch(/^runlog_agent_max_cost_usd_24h\{project="default",agent="thrifty-/m);

    const row = await reimportedAgent(server(), agent, `restored-${seq++}`);
    expect(Number(row.max_cost_nanos_24h)).toBe(750_000_000);
  });
});
