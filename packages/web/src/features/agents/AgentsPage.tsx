import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'react';
import { useQuery } from '@tanstack/react-query';
import { useWindowVirtualizer } from '@tanstack/react-virtual';
import { useSearchParams } from 'react-router-dom';
import {
  agentBudget,
  assertNever,
  budgetReached,
  costUnknown,
  type AgentSummary,
  type Worker,
} from '@runlog/core';
import { Empty, ErrorBox, Loading, RefreshFailed } from '../../components/States';
import { StatusIcon } from '../../components/Status';
import { RelativeTime, RunStart } from '../../components/Time';
import {
  formatCost,
  formatExact,
  formatPercent,
  formatTokens,
  formatUsdLimit,
  limitsText,
} from '../../lib/format';
import { useNow } from '../../lib/useNow';
import { noWorker, type NoWorker } from '../runs/bulk';
import { workersQuery } from '../workers/workers.queries';
import { useTopics } from '../../app/live';
import { useDocumentTitle } from '../../app/page';
import { agentsQuery } from './agents.queries';
import { AgentRuns } from './AgentRuns';

/** What the fail rate stands for: how many failed in 24 hours, and whether runs retried them. */
function failedText(c: AgentSummary['counts_24h']): string | undefined {
  if (c.failed === 0) return undefined;
  const failed = `${c.failed} failed or timed out in 24 hours`;
  if (c.failed_not_retried === c.failed) return `${failed}, none retried`;
  if (c.failed_not_retried === 0) return `${failed}, every one retried`;
  return `${failed}: ${c.failed - c.failed_not_retried} retried, ${c.failed_not_retried} not`;
}

/** An agent's 24 h cost as its cell reads it out, against its budget when it has one. */
function costText(agent: AgentSummary): string {
  const c = agent.counts_24h;
  const budget = agent.max_cost_usd_24h;
  const cost =
    c.total_tokens === 0 && c.cost_usd === 0
      ? budget !== null
        ? '$0'
        : 'none'
      : costUnknown(c)
        ? 'unknown: no known price'
        : formatCost(c.cost_usd);
  if (budget === null) return cost;
  return `${cost} of its ${formatUsdLimit(budget)} budget${budgetReached(agentBudget(agent)) ? ', over budget' : ''}`;
}

/** What the Over budget badge stands for, as its tooltip says it. */
function overBudgetTitle(agent: AgentSummary, budget: number): string {
  const cap = formatUsdLimit(budget);
  // when the server's budget watch saw it reach the budget (within a second of it)
  const since = agent.over_budget_since ? ` since ${formatExact(agent.over_budget_since)}` : '';
  return `Over budget${since}: its runs of the last 24 hours cost ${formatCost(agent.counts_24h.cost_usd)}, at or over its budget of ${cap}. Workers are handed none of its queued runs${agent.schedule ? ' and its schedule skips its slots' : ''} until the last 24 hours' cost falls below ${cap} or the budget is raised; runs under way go on`;
}

/**
 * When the agent last failed, ahead of the message so a long one cannot cut it off: the last
 * error may be days old, and without its age it reads as the failure of now.
 */
function LastErrorAge({ at }: { at: string | null }) {
  if (!at) return null;
  return (
    <span className="last-error-age muted">
      <RelativeTime iso={at} />:{' '}
    </span>
  );
}

/** Why an agent's last run, queued, waits for a worker that is not there, as its tooltip says it. */
function noWorkerTitle(agentId: string, why: NoWorker): string {
  switch (why.kind) {
    case 'none':
      return `No worker has asked for runs of ${agentId}: its queued runs wait until one does`;
    case 'late':
      return `No worker has asked for runs of ${agentId} since ${formatExact(why.seenAt)}: its queued runs wait until one does`;
    case 'stopped':
      return `No worker of ${agentId} is running: the last one asked for its runs at ${formatExact(why.seenAt)} and has stopped`;
    default:
      return assertNever(why);
  }
}

function AgentRowHeader({
  agent,
  workers,
  expanded,
  panelId,
  onToggle,
}: {
  agent: AgentSummary;
  /** The workers listed (`GET /workers`), undefined until read. */
  workers: readonly Worker[] | undefined;
  expanded: boolean;
  panelId: string;
  onToggle: () => void;
}) {
  const last = agent.latest_run;
  const queued = last?.status === 'queued';
  // workers that stop asking turn "no worker" on with no update to announce it
  const now = useNow(10_000, queued);
  // the run's page and Retry's rule: never asked, not lately, or stopped; until the workers
  // are read, only "never" is known (a worker busy with a hung run has not asked lately)
  const why = queued
    ? noWorker(agent.id, agent.worker_seen_at, workers, Math.max(now, Date.now()))
    : undefined;
  const unserved = why && (why.kind === 'none' || workers !== undefined) ? why : undefined;
  const limits = limitsText(agent);
  const c = agent.counts_24h;
  const budget = agent.max_cost_usd_24h;
  const over = budgetReached(agentBudget(agent));
  return (
    <button
      type="button"
      className="agent-row"
      aria-expanded={expanded}
      aria-controls={expanded ? panelId : undefined}
      onClick={onToggle}
      data-agent-id={agent.id}
    >
      <span className="col-chevron" aria-hidden="true">
        {expanded ? '▾' : '▸'}
      </span>
      <span className="col-name">
        <span className="agent-name-line">
          <span className="agent-name" title={agent.name}>
            {agent.name}
          </span>
          {agent.paused_at ? (
            <span
              className="status-badge agent-paused"
              title={`Paused since ${formatExact(agent.paused_at)}: workers take none of its queued runs${agent.schedule ? ' and its schedule queues none' : ''} until it is resumed; runs under way go on`}
            >
              Paused
            </span>
          ) : null}
          {over && budget !== null ? (
            <span className="status-badge agent-over-budget" title={overBudgetTitle(agent, budget)}>
              Over budget
            </span>
          ) : null}
        </span>
        {agent.name !== agent.id ||
        agent.schedule ||
        limits ||
        budget !== null ||
        agent.retry ||
        agent.max_concurrency !== null ||
        agent.max_concurrency_per_thread !== null ? (
          <span className="agent-id">
            {[
              agent.name !== agent.id ? (
                <span key="id" className="mono">
                  {agent.id}
                </span>
              ) : null,
              agent.schedule ? (
                <span
                  key="schedule"
                  className="agent-schedule"
                  title={`Schedule: ${agent.schedule.cron} (${agent.schedule.timezone})${agent.schedule.paused ? ', paused: it queues no run until resumed' : agent.paused_at ? ', its agent paused: it queues no run until the agent is resumed' : ''}`}
                >
                  {agent.schedule.paused ? (
                    <span className="schedule-paused">schedule paused</span>
                  ) : agent.paused_at ? (
                    // the server gives no next run while paused: "no run to come" would be wrong
                    <span className="schedule-paused">no run while paused</span>
                  ) : agent.next_run_at ? (
                    <>
                      next run <RelativeTime iso={agent.next_run_at} />
                    </>
                  ) : (
                    'scheduled, no run to come'
                  )}
                </span>
              ) : null,
              limits ? (
                <span
                  key="limits"
                  className="agent-limits"
                  title="A run past one of these limits is ended failed (BudgetExceeded) and its agent told to stop"
                >
                  limit {limits}
                </span>
              ) : null,
              budget !== null ? (
                <span
                  key="budget"
                  className="agent-budget"
                  title={`Budget: while the runs it started in the last 24 hours cost ${formatUsdLimit(budget)} or more, workers are handed none of its queued runs${agent.schedule ? ' and its schedule skips its slots' : ''}`}
                >
                  budget {formatUsdLimit(budget)}/24 h
                </span>
              ) : null,
              agent.retry ? (
                <span
                  key="retry"
                  className="agent-retry"
                  title={`A failed run a worker executed is queued again on its own, until ${agent.retry.max_attempts} runs in all`}
                >
                  retries up to {agent.retry.max_attempts - 1}×
                </span>
              ) : null,
              agent.max_concurrency !== null ? (
                <span
                  key="concurrency"
                  className="agent-concurrency"
                  title={`Workers execute at most ${agent.max_concurrency} of its runs at once, all together; the rest wait queued`}
                >
                  {agent.max_concurrency} at once
                </span>
              ) : null,
              agent.max_concurrency_per_thread !== null ? (
                <span
                  key="thread-concurrency"
                  className="agent-thread-concurrency"
                  title={`Workers execute at most ${agent.max_concurrency_per_thread} run${agent.max_concurrency_per_thread === 1 ? '' : 's'} of one thread at once: a thread's next run waits for the one before it`}
                >
                  {agent.max_concurrency_per_thread} per thread
                </span>
              ) : null,
            ]
              .filter(Boolean)
              .flatMap((part, i) => (i === 0 ? [part] : [' · ', part]))}
          </span>
        ) : null}
        {agent.last_error ? (
          // the last-error column does not fit a narrow screen: the error goes under the name
          <span className="agent-error-narrow error-text" title={agent.last_error.message}>
            <LastErrorAge at={agent.last_error.at} />
            {agent.last_error.message}
          </span>
        ) : null}
      </span>
      <span className="col-last">
        {last ? (
          <>
            <StatusIcon status={last.status} />
            {/* one box of text beside the icon, wrapping at a word where the column is
                narrower than it: on one line, it ran into the runs column beside it */}
            <span className="last-run">
              <RunStart run={last} />
              {unserved ? (
                <>
                  {' '}
                  {/* a schedule or Run now queues runs that nothing takes: say so where it shows
                      (since when, once workers that asked have stopped) */}
                  <span className="no-worker" title={noWorkerTitle(agent.id, unserved)}>
                    · no worker
                    {unserved.kind === 'none' ? null : (
                      <>
                        {' '}
                        since <RelativeTime iso={unserved.seenAt} />
                      </>
                    )}
                  </span>
                </>
              ) : null}
            </span>
          </>
        ) : (
          <span className="muted">never run</span>
        )}
      </span>
      <span className="col-num num" aria-label={`${c.runs} runs in 24 hours`}>
        {c.runs}
        {c.running > 0 ? <span className="running-count"> · {c.running} running</span> : null}
      </span>
      <span
        // red while a failure stands; failures all retried (by hand or by the agent's policy)
        // are attempts that failed, not work left undone
        className={`col-num num col-fail fail-rate${c.failed_not_retried > 0 ? ' bad' : c.failed > 0 ? ' retried' : ''}`}
        aria-label={`fail rate ${formatPercent(c.fail_rate)}`}
        title={failedText(c)}
      >
        {formatPercent(c.fail_rate)}
      </span>
      <span
        className={`col-num num col-cost${over ? ' over-budget' : ''}`}
        title={`${formatTokens(c.total_tokens)} tokens in 24 hours${budget !== null ? `; budget ${formatUsdLimit(budget)} per 24 hours` : ''}`}
        aria-label={`cost in 24 hours ${costText(agent)}`}
      >
        {c.total_tokens === 0 && c.cost_usd === 0 ? (
          // against a budget, nothing spent is a figure: $0 of $20
          budget !== null ? (
            '$0'
          ) : (
            <span className="muted">—</span>
          )
        ) : costUnknown(c) ? (
          <span className="muted">no price</span>
        ) : (
          <span className="cost-spent">{formatCost(c.cost_usd)}</span>
        )}
        {budget !== null ? (
          // under the cost, not beside it: "$12.40 of $20" on one line overflows the column
          <span className="cost-budget">of {formatUsdLimit(budget)}</span>
        ) : null}
      </span>
      <span className="col-error">
        {agent.last_error ? (
          <>
            <LastErrorAge at={agent.last_error.at} />
            <span className="error-text truncate" title={agent.last_error.message}>
              {agent.last_error.message}
            </span>
          </>
        ) : (
          <span className="muted">—</span>
        )}
      </span>
    </button>
  );
}

/** Home: one row per agent; expanding one (one at a time) shows its recent runs, live. */
export function AgentsPage() {
  // the 24 h counts also change as runs grow older than a day, which no update announces: a
  // page left open through a quiet hour asks again each minute rather than keep old figures
  const agents = useQuery({ ...agentsQuery(), refetchInterval: 60_000 });
  // whether a worker serves an agent whose last run waits queued (a stopped one leaves the list)
  const workers = useQuery(workersQuery());
  const [params, setParams] = useSearchParams();
  const expanded = params.get('agent');
  // the filter is kept in the URL (`?q=`), so a reload or a shared link shows the same list;
  // typed into state first, so no keystroke waits on a navigation
  const [filter, setFilter] = useState(() => params.get('q') ?? '');
  useEffect(() => {
    const q = filter.trim();
    if ((params.get('q') ?? '') === q) return;
    const next = new URLSearchParams(params);
    if (q) next.set('q', q);
    else next.delete('q');
    setParams(next, { replace: true });
  }, [filter]);
  // runs for the rows' latest runs and counts; agents for settings changed elsewhere
  useTopics(['runs', 'agents']);
  useDocumentTitle('Agents');

  const list = useMemo(() => {
    const all = agents.data ?? [];
    const f = filter.trim().toLowerCase();
    return f
      ? all.filter((a) => a.name.toLowerCase().includes(f) || a.id.toLowerCase().includes(f))
      : all;
  }, [agents.data, filter]);

  const listRef = useRef<HTMLDivElement>(null);
  const [offset, setOffset] = useState(0);
  useLayoutEffect(() => {
    setOffset(listRef.current?.offsetTop ?? 0);
  }, [agents.isPending]);

  const virtualizer = useWindowVirtualizer({
    count: list.length,
    estimateSize: (i) => (list[i]?.id === expanded ? 330 : 49),
    overscan: 8,
    scrollMargin: offset,
    getItemKey: (i) => list[i]?.id ?? i,
  });

  const toggle = (id: string) => {
    const next = new URLSearchParams(params);
    if (expanded === id) next.delete('agent');
    else next.set('agent', id);
    setParams(next, { replace: true });
  };

  return (
    <div className="agents-page">
      <div className="page-head">
        <h1 tabIndex={-1}>Agents</h1>
        {agents.data ? (
          <span className="count muted">
            {list.length === agents.data.length
              ? agents.data.length
              : `${list.length} of ${agents.data.length}`}
          </span>
        ) : null}
        <div className="page-head-end">
          <label className="sr-only" htmlFor="agent-filter">
            Filter agents
          </label>
          <input
            id="agent-filter"
            type="search"
            placeholder="Filter agents"
            value={filter}
            onChange={(e) => setFilter(e.target.value)}
          />
        </div>
      </div>
      <RefreshFailed query={agents} />
      {agents.isPending ? (
        <Loading label="Loading agents…" rows={6} />
      ) : agents.isError && agents.data === undefined ? (
        <ErrorBox error={agents.error} onRetry={() => void agents.refetch()} />
      ) : agents.data.length === 0 ? (
        <Empty title="No agents yet">
          Agents appear here when they record their first run. With the SDK:{' '}
          <code>runlog.run(&#39;my-agent&#39;, async (run) =&gt; …)</code>
        </Empty>
      ) : list.length === 0 ? (
        <Empty title="No agent matches this filter" />
      ) : (
        <div className="agents-table" role="list" aria-label="Agents">
          <div className="agents-head" aria-hidden="true">
            <span className="col-chevron" />
            <span className="col-name">Agent</span>
            <span className="col-last">Last run</span>
            <span className="col-num num">
              Runs<span className="hide-narrow"> 24 h</span>
            </span>
            <span className="col-num num col-fail">
              Fail<span className="hide-narrow"> rate</span>
            </span>
            <span className="col-num num col-cost">Cost 24 h</span>
            <span className="col-error">Last error</span>
          </div>
          <div ref={listRef} style={{ height: virtualizer.getTotalSize(), position: 'relative' }}>
            {virtualizer.getVirtualItems().map((item) => {
              const agent = list[item.index]!;
              const open = agent.id === expanded;
              const panelId = `agent-panel-${item.index}`;
              return (
                <div
                  key={item.key}
                  role="listitem"
                  data-index={item.index}
                  ref={virtualizer.measureElement}
                  className={`agent-item${open ? ' open' : ''}`}
                  style={{
                    position: 'absolute',
                    top: 0,
                    left: 0,
                    width: '100%',
                    transform: `translateY(${item.start - virtualizer.options.scrollMargin}px)`,
                  }}
                >
                  <AgentRowHeader
                    agent={agent}
                    workers={workers.data?.workers}
                    expanded={open}
                    panelId={panelId}
                    onToggle={() => toggle(agent.id)}
                  />
                  {open ? <AgentRuns agent={agent} id={panelId} /> : null}
                </div>
              );
            })}
          </div>
        </div>
      )}
    </div>
  );
}
