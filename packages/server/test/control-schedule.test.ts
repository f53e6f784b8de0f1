import { afterAll, beforeAll, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../src/server.js';
import { describeEachDb, startTestServer, waitFor } from './harness.js';

describeEachDb('schedules with two server instances on one database', (dialect) => {
  /** The first one owns the database: it closes last and drops it. */
  const servers: RunningServer[] = [];

  beforeAll(async () => {
    const first = await startTestServer(dialect, { schedulerIntervalMs: 50 });
    servers.push(first);
    // SQLite is one process's file; the multi-instance case is PostgreSQL's. The same
    // configuration, so the same database.
    if (dialect === 'postgres') servers.push(await startServer(first.ctx.config));
  });
  afterAll(async () => {
    for (const s of servers.reverse()) await s.close();
  });

  it('queues exactly one schedule run per slot', async () => {
    const ctx = servers[0]!.ctx;
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
});
