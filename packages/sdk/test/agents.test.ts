import { expect, it } from 'vitest';
import { newId } from '@runlog/core';
import { describeEachDb } from '../../server/test/harness.js';
import { RunlogApiError } from '../src/index.js';
import { sdkOnServer } from './helpers.js';

// against a real server on each database: an agent's settings, set from code at deploy time
describeEachDb('SDK agents.get and agents.update', (dialect) => {
  const t = sdkOnServer(dialect);

  it("sets an agent's schedule and limits, keeps what it leaves out, clears with null", async () => {
    const agent = `configured-${newId().slice(-8)}`;
    const made = await t.runlog.agents.update(agent, {
      name: 'Configured',
      schedule: { cron: '0 9 * * 1-5', timezone: 'Europe/Paris' },
      max_cost_usd: 0.5,
      max_steps: 40,
    });
    expect(made).toMatchObject({ id: agent, name: 'Configured', max_cost_usd: 0.5, max_steps: 40 });
    expect(made.next_run_at).not.toBeNull();
    const changed = await t.runlog.agents.update(agent, { max_steps: null, max_tokens: 10_000 });
    expect(changed).toMatchObject({
      name: 'Configured',
      max_cost_usd: 0.5,
      max_steps: null,
      max_tokens: 10_000,
      schedule: { cron: '0 9 * * 1-5', timezone: 'Europe/Paris' },
    });
    const read = await t.runlog.agents.get(agent);
    expect(read).toMatchObject({ id: agent, max_tokens: 10_000, latest_run: null });
    // paused from code (a deploy holding an agent back): no next run until resumed
    const paused = await t.runlog.agents.update(agent, { paused: true });
    expect(paused.paused_at).toEqual(expect.any(String));
    expect(paused.next_run_at).toBeNull();
    const resumed = await t.runlog.agents.update(agent, { paused: false });
    expect(resumed).toMatchObject({ paused_at: null, next_run_at: expect.any(String) });
    // a budget over 24 hours, read back beside the spend it is held to
    await t.runlog.agents.update(agent, { max_cost_usd_24h: 20 });
    const budgeted = await t.runlog.agents.get(agent);
    expect(budgeted.max_cost_usd_24h).toBe(20);
    expect(budgeted.counts_24h.cost_usd).toBe(0);
    expect((await t.runlog.agents.update(agent, { max_cost_usd_24h: null })).max_cost_usd_24h).toBe(
      null,
    );
  });

  it('refuses bad settings naming the field, and says when there is no agent', async () => {
    const refused = await t.runlog.agents.update('bad-settings', { max_steps: 0 }).catch((e) => e);
    expect(refused).toBeInstanceOf(RunlogApiError);
    expect((refused as RunlogApiError).status).toBe(400);
    expect((refused as RunlogApiError).message).toContain('body.max_steps');
    const missing = await t.runlog.agents.get('bad-settings').catch((e) => e);
    expect(missing).toBeInstanceOf(RunlogApiError);
    expect((missing as RunlogApiError).status).toBe(404);
  });
});
