import { expect, it } from 'vitest';
import type { Agent } from '@runlog/core';
import { instancesOnOneDatabase } from './control-helpers.js';
import { describeEachDb, TEST_ADMIN_KEY, waitFor } from './harness.js';

describeEachDb('schedules with two server instances on one database', (dialect) => {
  // SQLite is one process's file; the multi-instance case is PostgreSQL's
  const { server } = instancesOnOneDatabase(dialect, { schedulerIntervalMs: 50 });

  it('queues exactly one schedule run per slot', async () => {
    const ctx = server().ctx;
    const agent = `every-second-${Date.now().toString(36)}`;
    const now = Date.now();
    await ctx.db.kysely
      .insertInto('agents')
      .values({
        project_id: 'default',
        id: agent,
        name: agent,
        description: null,
        schedule_cron: '* * * * * *',
        schedule_tz: 'UTC',
        schedule_next_at: null,
        timeout_ms: null,
        metadata: '{}',
        created_at: now,
        updated_at: now,
      })
      .execute();
    const runs = () =>
      ctx.db.kysely
        .selectFrom('runs')
        .select(['id', 'metadata', 'trigger', 'status'])
        .where('agent_id', '=', agent)
        .execute();
    await waitFor(async () => (await runs()).length >= 4, 'four slots', 15_000);
    // stop scheduling before counting
    await ctx.db.kysely
      .updateTable('agents')
      .set({ schedule_cron: null })
      .where('id', '=', agent)
      .execute();
    await new Promise((r) => setTimeout(r, 300));
    const all = await runs();
    const slots = all.map(
      (r) => (JSON.parse(r.metadata) as { schedule_slot: string }).schedule_slot,
    );
    expect(new Set(slots).size).toBe(all.length);
    expect(all.every((r) => r.trigger === 'schedule' && r.status === 'queued')).toBe(true);
    const stored = await ctx.db.kysely
      .selectFrom('schedule_slots')
      .select('slot_at')
      .where('agent_id', '=', agent)
      .execute();
    expect(stored).toHaveLength(all.length);
  });

  it('pauses on every instance at once, and resumes from the next slot', async () => {
    const agent = `pausing-${Date.now().toString(36)}`;
    // each call on the other instance than the one before (on PostgreSQL)
    let turn = 0;
    const put = async (body: unknown) => {
      const instance = server(turn++);
      const res = await fetch(`${instance.url}/api/v1/agents/${agent}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      expect(res.status).toBe(200);
      return (await res.json()) as Agent;
    };
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
      await put({ schedule: { cron: '* * * * * *' } });
      await waitFor(async () => (await slots()).length >= 1, 'a first slot', 15_000);
      const paused = await put({ schedule: { paused: true } });
      expect(paused.schedule).toEqual({ cron: '* * * * * *', timezone: 'UTC', paused: true });
      expect(paused.next_run_at).toBeNull();
      // once the pause has answered, neither instance queues a slot: three go by
      const atPause = (await slots()).length;
      await new Promise((r) => setTimeout(r, 3000));
      expect(await slots()).toHaveLength(atPause);
      const resumedAt = Date.now();
      const resumed = await put({ schedule: { paused: false } });
      expect(Date.parse(resumed.next_run_at!)).toBeGreaterThan(resumedAt);
      await waitFor(async () => (await slots()).length > atPause, 'a slot after resuming', 15_000);
      // the slots passed while paused never ran: every new one is after the resume
      const after = (await slots()).sort((a, b) => a - b).slice(atPause);
      expect(after.every((slot) => slot > resumedAt)).toBe(true);
      expect(new Set(await slots()).size).toBe((await slots()).length);
    } finally {
      await put({ schedule: null });
    }
  });
});
