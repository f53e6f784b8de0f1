import { FAILED_RUN_STATUSES, RUN_STATUSES, TERMINAL_RUN_STATUSES, nanosToUsd } from '@runlog/core';
import { sql } from 'kysely';
import { counts24h } from '../agents/agents.repository.js';
import type { Db } from '../db/database.js';
import { readOffLoop } from '../db/readers.js';
import { labelSet } from './metrics.js';

interface Series {
  labels: Record<string, string>;
  value: number;
}

interface Family {
  name: string;
  help: string;
  series: Series[];
}

/** Per agent: the runs waiting in its queue now, those held back (a retry's delay), the oldest. */
async function queues(
  db: Db,
  projectId: string,
  now: number,
): Promise<Map<string, { waiting: number; held: number; oldest: number | null }>> {
  const rows = await readOffLoop(
    db,
    db.kysely
      .selectFrom('runs')
      .where('project_id', '=', projectId)
      .where('status', '=', 'queued')
      .select([
        'agent_id',
        sql<number | string>`sum(case when queued_at <= ${now} then 1 else 0 end)`.as('waiting'),
        sql<number | string>`sum(case when queued_at > ${now} then 1 else 0 end)`.as('held'),
        sql<number | string | null>`min(case when queued_at <= ${now} then queued_at end)`.as(
          'oldest',
        ),
      ])
      .groupBy('agent_id'),
  );
  return new Map(
    rows.map((r) => [
      r.agent_id,
      {
        waiting: Number(r.waiting),
        held: Number(r.held),
        oldest: r.oldest === null ? null : Number(r.oldest),
      },
    ]),
  );
}

/**
 * Per agent: its runs running now. On SQLite through the (project, status) index: with the
 * statistics PRAGMA optimize samples, SQLite walked every run of the project in the covering
 * (project, agent, status) index instead, 100 ms at a million runs against a fraction of one.
 */
async function running(db: Db, projectId: string): Promise<Map<string, number>> {
  const runs = db.dialect === 'sqlite' ? sql`runs indexed by runs_status_sort` : sql`runs`;
  const query = sql<{ agent_id: string; n: number | string }>`select agent_id, count(*) as n
    from ${runs} where project_id = ${projectId} and status = 'running' group by agent_id`;
  const rows = await readOffLoop(db, { compile: () => query.compile(db.kysely) });
  return new Map(rows.map((r) => [r.agent_id, Number(r.n)]));
}

/**
 * A project's agents in Prometheus text format (`GET /api/v1/metrics`): what is queued and
 * running now, and the last 24 hours' runs by status, fail rate, tokens and cost, each a
 * gauge read from the database when scraped, so every server instance answers the same and
 * a restart loses nothing. Every agent of the project has each series (0 when idle), so an
 * alert on one never waits for a first failure to exist; but `max_concurrency`, which only
 * the agents with a cap have.
 */
export async function agentMetrics(db: Db, projectId: string, now: number): Promise<string> {
  // every run's agent has its row (recording inserts it): the agents are the project's
  const agents = await db.kysely
    .selectFrom('agents')
    .where('project_id', '=', projectId)
    .select(['id', 'max_concurrency', 'paused_at', 'max_cost_nanos_24h'])
    .orderBy('id')
    .execute();
  const [queued, busy, counts] = await Promise.all([
    queues(db, projectId, now),
    running(db, projectId),
    // the Agents page's counts_24h
    counts24h(
      db,
      projectId,
      now,
      agents.map((a) => a.id),
    ),
  ]);
  const sorted = agents.map((a) => a.id);
  const paused = new Set(agents.flatMap((a) => (a.paused_at === null ? [] : [a.id])));
  const { byStatus, usage, notRetried: standing } = counts;

  const family = (name: string, help: string, value: (agent: string) => number): Family => ({
    name,
    help,
    series: sorted.map((agent) => ({
      labels: { project: projectId, agent },
      value: value(agent),
    })),
  });
  /** A setting's gauge, with a series for each agent that has the setting (`value` not null). */
  const setting = (
    name: string,
    help: string,
    value: (agent: (typeof agents)[number]) => number | null,
  ): Family => ({
    name,
    help,
    series: agents.flatMap((a) => {
      const v = value(a);
      return v === null ? [] : [{ labels: { project: projectId, agent: a.id }, value: v }];
    }),
  });
  const families: Family[] = [
    family(
      'runlog_agent_queued_runs',
      'Queued runs due now, not held back until later (a pause, a budget or a cap may still hold them)',
      (a) => queued.get(a)?.waiting ?? 0,
    ),
    family(
      'runlog_agent_queue_oldest_age_seconds',
      'How long the oldest queued run a worker may take has waited (0 when none)',
      (a) => {
        const oldest = queued.get(a)?.oldest;
        return oldest == null ? 0 : Math.max(0, (now - oldest) / 1000);
      },
    ),
    family(
      'runlog_agent_delayed_runs',
      'Queued runs held back until later (queued to start later, or an automatic retry waiting its delay)',
      (a) => queued.get(a)?.held ?? 0,
    ),
    family('runlog_agent_running_runs', 'Runs running now', (a) => busy.get(a) ?? 0),
    family(
      'runlog_agent_paused',
      '1 while the agent is paused (no worker is handed its queued runs), else 0',
      (a) => (paused.has(a) ? 1 : 0),
    ),
    // only the agents with a cap: none is no limit, which no number says
    setting(
      'runlog_agent_max_concurrency',
      'The most runs of the agent workers execute at once (its max_concurrency; agents with one)',
      (a) => (a.max_concurrency === null ? null : Number(a.max_concurrency)),
    ),
    {
      name: 'runlog_agent_runs_24h',
      help: 'Runs of the last 24 hours (from the start of the hour 24 h ago) by status',
      series: sorted.flatMap((agent) =>
        RUN_STATUSES.map((status) => ({
          labels: { project: projectId, agent, status },
          value: byStatus.get(agent)?.get(status) ?? 0,
        })),
      ),
    },
    family(
      'runlog_agent_fail_rate_24h',
      'Failed and timed-out runs over ended runs, last 24 hours (0 when none ended)',
      (a) => {
        const m = byStatus.get(a);
        const ended = TERMINAL_RUN_STATUSES.reduce((n, s) => n + (m?.get(s) ?? 0), 0);
        const failed = FAILED_RUN_STATUSES.reduce((n, s) => n + (m?.get(s) ?? 0), 0);
        return ended > 0 ? failed / ended : 0;
      },
    ),
    family(
      'runlog_agent_unretried_failures_24h',
      'Failed and timed-out runs of the last 24 hours that no run retries, manual or automatic',
      (a) => standing.get(a) ?? 0,
    ),
    family(
      'runlog_agent_tokens_24h',
      'Input and output tokens of the last 24 hours',
      (a) => usage.get(a)?.tokens ?? 0,
    ),
    family('runlog_agent_cost_usd_24h', 'Cost of the last 24 hours, US$', (a) =>
      nanosToUsd(usage.get(a)?.cost_nanos ?? 0),
    ),
    // only the agents with a budget: `cost_usd_24h >= max_cost_usd_24h` holds its runs back
    setting(
      'runlog_agent_max_cost_usd_24h',
      "The agent's budget over 24 hours, US$ (its max_cost_usd_24h; agents with one): at it, workers are handed none of its queued runs",
      (a) => (a.max_cost_nanos_24h === null ? null : nanosToUsd(Number(a.max_cost_nanos_24h))),
    ),
  ];
  const lines: string[] = [];
  for (const f of families) {
    lines.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} gauge`);
    for (const s of f.series) lines.push(`${f.name}${labelSet(s.labels)} ${s.value}`);
  }
  return lines.join('\n') + '\n';
}
