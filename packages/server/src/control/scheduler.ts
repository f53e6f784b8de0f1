import { newId, toIso } from '@runlog/core';
import type { AppContext } from '../context.js';
import { queuedRunRow } from './control.service.js';
import { nextSlot } from './schedule.js';

/**
 * One scheduler pass: for every agent whose next slot is due, enqueue one `schedule` run
 * for that slot and move `schedule_next_at` to the first slot after now, so after downtime
 * the missed slots run once, not once each. The `schedule_slots` primary key makes a slot
 * enqueue once even when several instances run this at the same moment.
 * Returns how many runs it queued.
 */
export async function scheduleOnce(ctx: AppContext, now = Date.now()): Promise<number> {
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
      next = nextSlot(agent.schedule_cron!, agent.schedule_tz, now);
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
      await uow.trx
        .updateTable('agents')
        .set({ schedule_next_at: next })
        .where('project_id', '=', agent.project_id)
        .where('id', '=', agent.id)
        .where('schedule_next_at', '=', slot)
        .execute();
      if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 0) return false; // another instance took it
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
