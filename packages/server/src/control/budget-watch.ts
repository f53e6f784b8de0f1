import { nanosToUsd, toIso, type AgentWebhookEvent } from '@runlog/core';
import { spentIn24Hours } from '../agents/agents.repository.js';
import type { AppContext } from '../context.js';
import { statusIn } from '../db/dialect.js';
import type { AgentRow } from '../db/schema.js';

/** Agents read at a time: a pass goes through every watched agent, a page at a time. */
const PAGE = 1000;

type WatchedAgent = Pick<
  AgentRow,
  'project_id' | 'id' | 'name' | 'max_cost_nanos_24h' | 'over_budget_at'
>;

/**
 * One pass of the budget watch: for each agent with a budget over 24 hours
 * (`max_cost_usd_24h`), whether what the runs it started in the last 24 hours cost has
 * reached it, against what the last pass saw (`agents.over_budget_at`). Each change is written
 * with its webhook deliveries (`agent.over_budget`, `agent.under_budget`) in one transaction,
 * and only while the agent still has the budget and the state the pass read: when several
 * instances watch at the same moment, one of them tells it. An agent whose budget was
 * raised, or cleared, while over it is back under it. Answers how many agents changed.
 *
 * Claims and the scheduler check the budget for themselves, in their own transactions: this
 * only tells people, within a pass (a second) of the spend that reached it.
 */
export async function watchBudgetsOnce(
  ctx: AppContext,
  now = Date.now(),
  pageSize = PAGE,
): Promise<number> {
  let changed = 0;
  let after: WatchedAgent | undefined;
  for (;;) {
    let page = ctx.db.kysely
      .selectFrom('agents')
      .select(['project_id', 'id', 'name', 'max_cost_nanos_24h', 'over_budget_at'])
      // the partial index `agents_budget_watch` holds just these
      .where((eb) =>
        eb.or([eb('max_cost_nanos_24h', 'is not', null), eb('over_budget_at', 'is not', null)]),
      );
    if (after) {
      const { project_id, id } = after;
      // a range of the index on both databases, where the OR of the two columns was a scan
      page = page.where((eb) => eb(eb.refTuple('project_id', 'id'), '>', eb.tuple(project_id, id)));
    }
    const agents = await page.orderBy('project_id').orderBy('id').limit(pageSize).execute();
    changed += await watchPage(ctx, agents, now);
    if (agents.length < pageSize) return changed;
    after = agents[agents.length - 1];
  }
}

/** `watchBudgetsOnce` over one page of agents: how many changed. */
async function watchPage(
  ctx: AppContext,
  agents: readonly WatchedAgent[],
  now: number,
): Promise<number> {
  const byProject = new Map<string, WatchedAgent[]>();
  for (const a of agents) {
    const list = byProject.get(a.project_id);
    if (list) list.push(a);
    else byProject.set(a.project_id, [a]);
  }
  let changed = 0;
  for (const [projectId, list] of byProject) {
    // every one's: an agent whose budget was cleared is told what it spent too
    const spent = await spentIn24Hours(
      ctx.db.kysely,
      ctx.db,
      projectId,
      list.map((a) => a.id),
      now,
    );
    for (const agent of list) {
      const cost = spent.get(agent.id) ?? 0;
      const over = agent.max_cost_nanos_24h !== null && cost >= Number(agent.max_cost_nanos_24h);
      if (over === (agent.over_budget_at !== null)) continue;
      if (await tell(ctx, agent, over, cost, now)) changed++;
    }
  }
  return changed;
}

/**
 * Records that `agent` went over its budget (`over`) or back under it, and writes the
 * deliveries saying so, in one transaction; `false`, writing nothing, when the agent no
 * longer has the budget and state the pass read (changed since, or told by another instance).
 */
async function tell(
  ctx: AppContext,
  agent: WatchedAgent,
  over: boolean,
  costNanos: number,
  now: number,
): Promise<boolean> {
  return ctx.writer.transact(async (uow) => {
    const moved = await uow.trx
      .updateTable('agents')
      .set({ over_budget_at: over ? now : null })
      .where('project_id', '=', agent.project_id)
      .where('id', '=', agent.id)
      .where(
        'max_cost_nanos_24h',
        agent.max_cost_nanos_24h === null ? 'is' : '=',
        agent.max_cost_nanos_24h,
      )
      .where('over_budget_at', agent.over_budget_at === null ? 'is' : '=', agent.over_budget_at)
      .executeTakeFirst();
    if (Number(moved.numUpdatedRows) === 0) return false;
    const queued = await uow.trx
      .selectFrom('runs')
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .where('project_id', '=', agent.project_id)
      .where('agent_id', '=', agent.id)
      .where(statusIn('queued'))
      .executeTakeFirstOrThrow();
    const event: AgentWebhookEvent = over ? 'agent.over_budget' : 'agent.under_budget';
    const budget = agent.max_cost_nanos_24h;
    await ctx.webhooks.enqueueAgentEvent(
      uow.trx,
      agent.project_id,
      agent.id,
      event,
      {
        agent: {
          id: agent.id,
          name: agent.name,
          max_cost_usd_24h: budget === null ? null : nanosToUsd(Number(budget)),
        },
        cost_usd_24h: nanosToUsd(costNanos),
        // over: the runs now held back; back under: those workers can take again
        queued_runs: Number(queued.n),
        over_budget_since: toIso(over ? now : agent.over_budget_at!),
      },
      now,
    );
    return true;
  });
}
