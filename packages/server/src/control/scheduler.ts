import { sql } from 'kysely';
import { newId, toIso } from '@runlog/core';
import { agentsOverBudget } from '../agents/agents.repository.js';
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
 * One scheduler pass: for every agent whose next slot is due, enqueue a `schedule` run for
 * each due slot in turn, moving `schedule_next_at` to the slot after it; when that one is
 * more than SCHEDULE_CATCH_UP_MS past too (downtime), to the first slot after now, so the
 * slots missed during downtime run once, not once each. A paused schedule is passed over
 * (resuming it sets its next slot after the time it resumes, so what it missed while paused
 * never runs). A slot enqueues only while the agent still has the schedule it was read with,
 * unpaused (not after its DELETE, a new schedule or a pause), a slot due while the agent is
 * over its 24 h budget (`max_cost_usd_24h`) passes without a run, and the `schedule_slots`
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
    .select([
      'project_id',
      'id',
      'schedule_cron',
      'schedule_tz',
      'schedule_next_at',
      'timeout_ms',
      'max_cost_nanos_24h',
    ])
    .where('schedule_cron', 'is not', null)
    // a paused schedule (or agent) queues nothing, and its slot is not moved on: resuming
    // sets the next
    .where('schedule_paused', '=', 0)
    .where('paused_at', 'is', null)
    .where((eb) => eb.or([eb('schedule_next_at', 'is', null), eb('schedule_next_at', '<=', now)]))
    // the due slots first, oldest first: schedules stored without a next slot (one that can
    // never fire, from before such were refused) must not crowd them out of the limit
    .orderBy(sql`schedule_next_at is null`)
    .orderBy('schedule_next_at')
    .limit(1000)
    .execute();
  let queued = 0;
  for (const agent of due) {
    const cron = agent.schedule_cron!;
    const tz = agent.schedule_tz;
    if (agent.schedule_next_at === null) {
      let first: number | null;
      try {
        first = nextSlot(cron, tz, now);
      } catch {
        continue; // an invalid schedule is refused when saved; never loop on one stored by hand
      }
      // saved without a next slot: start counting from now
      await ctx.db.kysely
        .updateTable('agents')
        .set({ schedule_next_at: first })
        .where('project_id', '=', agent.project_id)
        .where('id', '=', agent.id)
        .where('schedule_next_at', 'is', null)
        .where('schedule_paused', '=', 0)
        .where('paused_at', 'is', null)
        .execute();
      continue;
    }
    // every slot due now, each in its own transaction: a pass that fell behind catches up
    // instead of carrying the lag on (a per-second schedule would never recover)
    let slot = agent.schedule_next_at;
    for (let fired = 0; slot <= now && fired < MAX_SLOTS_PER_PASS; fired++) {
      let next: number | null;
      try {
        next = nextSlot(cron, tz, slot);
        if (next !== null && next <= now - SCHEDULE_CATCH_UP_MS) next = nextSlot(cron, tz, now);
      } catch {
        break; // an invalid schedule is refused when saved; never loop on one stored by hand
      }
      const outcome = await fireSlot(ctx, agent, slot, next);
      if (outcome === 'stale') break;
      if (outcome === 'queued') queued++;
      if (next === null) break;
      slot = next;
    }
  }
  return queued;
}

/** Most slots of one agent a pass fires (the catch-up window holds ten of a per-second one). */
const MAX_SLOTS_PER_PASS = 60;

interface DueAgent {
  project_id: string;
  id: string;
  schedule_cron: string | null;
  schedule_tz: string | null;
  timeout_ms: number | null;
  max_cost_nanos_24h: number | null;
}

/**
 * Enqueues the run of one slot and moves the agent's next slot on, in one transaction.
 * 'stale' when the agent no longer has this schedule and slot (deleted, given another
 * schedule, or another instance's pass took the slot): nothing is written then.
 */
async function fireSlot(
  ctx: AppContext,
  agent: DueAgent,
  slot: number,
  next: number | null,
): Promise<'queued' | 'moved' | 'stale'> {
  const runId = newId();
  return ctx.writer.transact(async (uow, env) => {
    // first: the agent still there with this schedule and slot, not paused (a DELETE, a new
    // schedule, a pause or another instance's pass since the read changes nothing after this)
    const moved = await uow.trx
      .updateTable('agents')
      .set({ schedule_next_at: next })
      .where('project_id', '=', agent.project_id)
      .where('id', '=', agent.id)
      .where('schedule_cron', '=', agent.schedule_cron)
      .where('schedule_tz', agent.schedule_tz === null ? 'is' : '=', agent.schedule_tz)
      .where('schedule_next_at', '=', slot)
      // paused since the read (on this instance or another): the slot is not queued
      .where('schedule_paused', '=', 0)
      .where('paused_at', 'is', null)
      .executeTakeFirst();
    if (Number(moved.numUpdatedRows) === 0) return 'stale';
    // over its 24 h budget: the slot passes without a run (queued, it would only wait, and
    // the slots of a frequent schedule would pile up to start together once it has room)
    if ((await agentsOverBudget(uow.trx, ctx.db, agent.project_id, [agent], env.now)).size > 0)
      return 'moved';
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
    if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 0) return 'moved';
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
    return 'queued';
  });
}
