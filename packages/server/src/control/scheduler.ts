import { newId, toIso } from '@runlog/core';
import type { AppContext } from '../context.js';
import { DAY_MS } from '../stats/rollup.js';
import { queuedRunRow } from './control.service.js';
import { nextSlot } from './schedule.js';

/**
 * How late a slot may be and still run on its own: a busy scheduler (many agents, or a pass
 * that took long) runs every slot it fell behind on; slots missed for longer (the server was
 * down) run once together.
 */
export const SCHEDULE_CATCH_UP_MS = 10_000;

/** Enqueued slots are kept this long: long enough that no slot can come due again. */
const SLOT_MEMORY_MS = 2 * DAY_MS;

/** When each context last forgot old slots. */
const forgotAt = new WeakMap<AppContext, number>();

/**
 * One scheduler pass: for every agent whose next slot is due, enqueue one `schedule` run
 * for that slot and move `schedule_next_at` to the slot after it, or, when that one is more
 * than SCHEDULE_CATCH_UP_MS past too (downtime), to the first slot after now, so the missed
 * slots run once, not once each. A slot enqueues only while the agent still has the schedule
 * it was read with (not after its DELETE or a new schedule), and the `schedule_slots`
 * primary key makes it enqueue once when several instances run this at the same moment.
 * Returns how many runs it queued.
 */
export async function scheduleOnce(ctx: AppContext, now = Date.now()): Promise<number> {
  if ((forgotAt.get(ctx) ?? 0) < now - 3_600_000) {
    forgotAt.set(ctx, now);
    await ctx.db.kysely
      .deleteFrom('schedule_slots')
      .where('slot_at', '<', now - SLOT_MEMORY_MS)
      .execute();
  }
  const due = await ctx.db.kysely
    .selectFrom('agents')
    .select(['project_id', 'id', 'schedule_cron', 'schedule_tz', 'schedule_next_at', 'timeout_ms'])
    .where('schedule_cron', 'is not', null)
    .where((eb) => eb.or([eb('schedule_next_at', 'is', null), eb('schedule_next_at', '<=', now)]))
    .limit(1000)
    .execute();
  let queued = 0;
  for (const agent of due) {
    let next: number | null;
    try {
      const cron = agent.schedule_cron!;
      next =
        agent.schedule_next_at === null
          ? nextSlot(cron, agent.schedule_tz, now)
          : nextSlot(cron, agent.schedule_tz, agent.schedule_next_at);
      if (next !== null && next <= now - SCHEDULE_CATCH_UP_MS)
        next = nextSlot(cron, agent.schedule_tz, now);
    } catch {
      continue; // an invalid schedule is refused when saved; never loop on one stored by hand
    }
    if (agent.schedule_next_at === null) {
      // saved without a next slot: start counting from now
      await ctx.db.kysely
        .updateTable('agents')
        .set({ schedule_next_at: next })
        .where('project_id', '=', agent.project_id)
        .where('id', '=', agent.id)
        .where('schedule_next_at', 'is', null)
        .execute();
      continue;
    }
    const slot = agent.schedule_next_at;
    const runId = newId();
    const created = await ctx.writer.transact(async (uow, env) => {
      // first: the agent still there with this schedule and slot (a DELETE, a new schedule
      // or another instance's pass since the read above changes nothing after this)
      const moved = await uow.trx
        .updateTable('agents')
        .set({ schedule_next_at: next })
        .where('project_id', '=', agent.project_id)
        .where('id', '=', agent.id)
        .where('schedule_cron', '=', agent.schedule_cron)
        .where('schedule_tz', agent.schedule_tz === null ? 'is' : '=', agent.schedule_tz)
        .where('schedule_next_at', '=', slot)
        .executeTakeFirst();
      if (Number(moved.numUpdatedRows) === 0) return false;
      const inserted = await uow.trx
        .insertInto('schedule_slots')
        .values({
          project_id: agent.project_id,
          agent_id: agent.id,
          slot_at: slot,
          run_id: runId,
          created_at: env.now,
        })
        .onConflict((oc) => oc.columns(['project_id', 'agent_id', 'slot_at']).doNothing())
        .executeTakeFirst();
      // enqueued before (the agent saved again with the same slot pending): once is enough
      if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 0) return false;
      await uow.loadRuns(agent.project_id, [runId]);
      uow.putRun(
        queuedRunRow(
          agent.project_id,
          agent.id,
          runId,
          { trigger: 'schedule', source: 'schedule', metadata: { schedule_slot: toIso(slot) } },
          { now: env.now, timeoutMs: agent.timeout_ms, maxFieldBytes: env.maxFieldBytes },
        ),
      );
      return true;
    });
    if (created) queued++;
  }
  return queued;
}
