import { useEffect, useRef, useState } from 'react';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { Link, Navigate, useNavigate, useParams } from 'react-router-dom';
import {
  agentBudget,
  costUnknown,
  endedBeforeDue,
  isHeldBack,
  metadataQuery,
  unpricedModels,
  usageByModel,
  readableError,
  workerWait,
  type Run,
  type RunStatus,
  type RunWithSteps,
} from '@runlog/core';
import { ApiError } from '../../lib/api';
import { Empty, ErrorBox, Loading, RefreshFailed } from '../../components/States';
import { StatusBadge, StatusIcon } from '../../components/Status';
import { RelativeTime, RunDuration } from '../../components/Time';
import { JsonViewer, type TopLevelValue } from '../../components/JsonViewer';
import { copyText } from '../../components/Toasts';
import { useFocusHandoff } from '../../components/focus';
import { RunIdText } from '../../components/RunId';
import {
  RUN_STATUS_META,
  TRIGGER_LABELS,
  UNPRICED_NOTE,
  formatCost,
  formatExact,
  formatTokens,
  isActive,
  shortId,
  notStartedYet,
  usedNothing,
} from '../../lib/format';
import { useTopics } from '../../app/live';
import { useNow } from '../../lib/useNow';
import { useDocumentTitle } from '../../app/page';
import { agentPath, agentRunsQuery, agentsQuery } from '../agents/agents.queries';
import { PauseAgentButton } from '../agents/PauseAgentButton';
import { retriesQuery, threadRunningQuery } from '../runs/runs.queries';
import { comparePath } from './ComparePage';
import { runPath, useRunActions } from '../runs/RunActions';
import { runsPath } from '../runs/RunsPage';
import { metadataFilterValue } from '../runs/MetadataFilter';
import { Usage } from '../runs/RunRows';
import { needsScope, useCan } from '../auth/useCan';
import { runDetailQuery, runQuery, subRunsKey, subRunsQuery } from './runDetail.queries';
import { Timeline } from './Timeline';
import { RetryWithInputButton } from './RetryWithInput';
import { RunScores } from '../scores/RunScores';
import { threadPath } from '../threads/threads.queries';
import { UserLinks } from '../users/UserLinks';
import { workersQuery } from '../workers/workers.queries';

/** A labelled fact in a `<dl className="facts">`; `wide` takes the whole row. */
export function Fact({
  label,
  children,
  wide = false,
}: {
  label: string;
  children: React.ReactNode;
  wide?: boolean;
}) {
  return (
    <div className={wide ? 'fact-wide' : undefined}>
      <dt>{label}</dt>
      <dd>{children ?? <span className="muted">—</span>}</dd>
    </div>
  );
}

/**
 * A run's top-level metadata value (a string, number or boolean) as a link to the runs with
 * it, as its tags link to theirs; other values show as they are.
 */
const metadataValueLink: TopLevelValue = (key, value, shown) => {
  const filter = metadataFilterValue(key, value);
  // (a text long enough to fold behind its own button is past the filter's 500 characters, so a
  // link never holds a button)
  if (filter === undefined) return shown;
  const label = `Runs with ${key} = ${filter}`;
  return (
    <Link
      className="j-link"
      to={runsPath(metadataQuery({ [key]: filter }))}
      aria-label={label}
      title={label}
    >
      {shown}
    </Link>
  );
};

/** Whether a run's metadata reads at a glance, open: a few keys, short values. */
const fewMetadata = (metadata: Record<string, unknown>) =>
  Object.keys(metadata).length <= 12 && JSON.stringify(metadata).length <= 2000;

function RunLink({ agentId, runId }: { agentId: string; runId: string }) {
  return (
    <Link className="mono" to={runPath({ agent_id: agentId, id: runId })} title={runId}>
      <RunIdText id={runId} />
    </Link>
  );
}

/** An agent's name (its id until the agents are loaded, or when it has none). */
function useAgentName(): (agentId: string) => string {
  const agents = useQuery(agentsQuery());
  return (agentId) => agents.data?.find((a) => a.id === agentId)?.name ?? agentId;
}

/**
 * A cost that leaves out some of the run's tokens: a model it called has no known price
 * (the whole cost unknown says so by itself).
 */
function UnpricedPart({ run }: { run: RunWithSteps }) {
  const models = unpricedModels(run.steps);
  if (models.length === 0 || costUnknown(run)) return null;
  return (
    <span className="muted unpriced-part" title={UNPRICED_NOTE}>
      {' '}
      + tokens of {models.join(', ')} at no known price
    </span>
  );
}

/** What each model took of a run that called more than one (the stats' rule, from its steps). */
function ByModelFact({ run }: { run: RunWithSteps }) {
  const models = usageByModel(run.steps);
  if (models.length < 2) return null;
  return (
    <Fact label="By model" wide>
      <ul className="model-uses">
        {models.map((m) => (
          <li key={m.model ?? ''}>
            <span className="mono">{m.model ?? '(no model)'}</span>{' '}
            <span className="muted">
              {m.calls} {m.calls === 1 ? 'call' : 'calls'} ·{' '}
              {formatTokens(m.input_tokens + m.output_tokens)} tokens ·
            </span>{' '}
            {costUnknown({
              cost_usd: m.cost_usd,
              total_tokens: m.input_tokens + m.output_tokens,
            }) ? (
              <span className="muted" title={UNPRICED_NOTE}>
                no price
              </span>
            ) : (
              formatCost(m.cost_usd)
            )}
          </li>
        ))}
      </ul>
    </Fact>
  );
}

/**
 * Why a queued run still waits: whether any worker asks for its agent's runs. Runs queued
 * from the dashboard, the API, schedules and Retry run only when one does.
 */
/** Start now: a run held back until later may be taken by a worker at once. */
function StartNowButton({ run }: { run: Run }) {
  const { startNow } = useRunActions();
  const canWrite = useCan('write');
  return (
    <button
      type="button"
      className="btn btn-small"
      disabled={!canWrite}
      aria-disabled={startNow.isPending || undefined}
      title={canWrite ? undefined : needsScope('write')}
      onClick={() => {
        if (!startNow.isPending) startNow.mutate(run);
      }}
    >
      <span aria-hidden="true">▶</span> Start now
    </button>
  );
}

/**
 * When a run was queued; for one queued to start later, that start ("Starts", "Was to start"
 * when it ended before then), read on the clock the waiting notice beside it ticks on, so the
 * two turn together when the start comes.
 */
function QueuedFact({ run }: { run: Run }) {
  const now = useNow(10_000, run.status === 'queued');
  const label = endedBeforeDue(run)
    ? 'Was to start'
    : isHeldBack(run, Math.max(now, Date.now()))
      ? 'Starts'
      : 'Queued';
  return <Fact label={label}>{run.queued_at ? formatExact(run.queued_at) : null}</Fact>;
}

function WaitingForWorker({ run }: { run: Run }) {
  const { agent_id: agentId, queued_at: queuedAt, thread_id: threadId } = run;
  // an automatic retry (its agent's retry policy queued it), rather than one queued for later
  const retry = run.trigger === 'retry';
  // while the run waits, the agents' worker_seen_at is read again now and then
  const agents = useQuery({ ...agentsQuery(), refetchInterval: 15_000 });
  // a worker that stopped (Ctrl-C, worker.stop()) left the list of workers at once
  const workers = useQuery(workersQuery());
  // a worker that stops asking turns the notice quiet while the page is open
  const now = useNow(10_000, true);
  const agent = agents.data?.find((a) => a.id === agentId);
  // a run of a thread whose agent takes so many runs of a thread at once: how many run now
  const perThread = agent?.max_concurrency_per_thread ?? null;
  const threadRunning = useQuery({
    ...threadRunningQuery(agentId, threadId ?? ''),
    enabled: perThread !== null && threadId !== null,
    refetchInterval: 5_000,
  });
  const thread =
    perThread !== null && threadId !== null && threadRunning.data !== undefined
      ? { id: threadId, cap: perThread, running: threadRunning.data }
      : undefined;
  const wait = agent
    ? workerWait(agentId, agent.worker_seen_at, workers.data?.workers, Math.max(now, Date.now()), {
        cap: agent.max_concurrency,
        thread,
        pausedAt: agent.paused_at,
        budget: agentBudget(agent),
      })
    : undefined;
  // its agent paused: no worker is handed it, whatever else holds it back (a later start too)
  if (wait?.kind === 'paused')
    return agent ? (
      <div className="run-waiting run-held run-waiting-quiet">
        <p data-testid="run-agent-paused">
          <strong>Waiting: its agent is paused.</strong>{' '}
          <Link to={agentPath(agentId)} className="mono">
            {agentId}
          </Link>{' '}
          was paused <RelativeTime iso={wait.since} />: no worker is handed its runs until it is
          resumed. Resume it to start this run.
        </p>
        <PauseAgentButton agent={agent} />
      </div>
    ) : null;
  // its agent's runs of the last 24 hours cost its budget: no worker is handed it until
  // that falls below it, or the budget is raised
  if (wait?.kind === 'budget')
    return (
      <div className="run-waiting run-held run-waiting-quiet">
        <p data-testid="run-agent-over-budget">
          <strong>Waiting: its agent is over its budget.</strong> The runs{' '}
          <Link to={agentPath(agentId)} className="mono">
            {agentId}
          </Link>{' '}
          started in the last 24 hours cost {formatCost(wait.spentUsd)}, at or over its budget of{' '}
          {formatCost(wait.capUsd)} per 24 hours: no worker is handed its runs until that falls
          below it. Raise the budget in the agent&apos;s settings to start this run now.
        </p>
      </div>
    );
  // an automatic retry waiting its delay, or a run queued to start later: no worker takes it
  // before its queued_at
  if (queuedAt && isHeldBack(run, Math.max(now, Date.now())))
    return (
      <div className="run-waiting run-held">
        <p data-testid="run-held">
          {retry ? (
            <>
              <strong>Retrying later.</strong> Its agent&apos;s retry policy holds this run back
              until{' '}
            </>
          ) : (
            <>
              <strong>Starts later.</strong> It was queued to start at{' '}
            </>
          )}
          {formatExact(queuedAt)} (<RelativeTime iso={queuedAt} />
          ): a worker of <span className="mono">{agentId}</span> takes it then. Stop cancels it.
        </p>
        <StartNowButton run={run} />
      </div>
    );
  if (!wait) return null;
  // at its concurrency cap: the workers are there, the cap holds the run back
  if (wait.kind === 'capped')
    return (
      <p className="run-waiting" data-testid="run-capped">
        <strong>Waiting for a slot.</strong> At most{' '}
        {wait.cap === 1 ? 'one run' : `${wait.cap} runs`} of <span className="mono">{agentId}</span>{' '}
        execute at once (its concurrency cap in Settings), and{' '}
        {wait.running === 1 ? 'one is' : `${wait.running} are`} running: this run starts when one of
        them ends. <Link to="/workers">See the workers</Link>
      </p>
    );
  // its thread's turn before it still runs: a conversation's turns go one after another
  if (wait.kind === 'thread')
    return (
      <p className="run-waiting" data-testid="run-thread-held">
        <strong>Waiting for its thread.</strong>{' '}
        {wait.running === 1 ? 'A run' : `${wait.running} runs`} of thread{' '}
        <Link to={threadPath(wait.threadId)} className="mono">
          {wait.threadId}
        </Link>{' '}
        {wait.running === 1 ? 'is' : 'are'} running, and <span className="mono">{agentId}</span>{' '}
        takes at most {wait.cap === 1 ? 'one run' : `${wait.cap} runs`} of a thread at once: this
        run starts when {wait.running === 1 ? 'it ends' : 'one of them ends'}.
      </p>
    );
  const quiet = wait.kind === 'none' || wait.kind === 'late' || wait.kind === 'stopped';
  return (
    <p className={quiet ? 'run-waiting run-waiting-quiet' : 'run-waiting'}>
      <strong>Waiting for a worker.</strong>{' '}
      {wait.kind === 'none' ? (
        <>
          No worker has asked for runs of <span className="mono">{agentId}</span> yet: this run
          starts when one does (<span className="mono">runlog.worker(…)</span> in the SDK, or{' '}
          <span className="mono">POST /api/v1/workers/claim</span>).
        </>
      ) : wait.kind === 'busy' ? (
        <>
          {wait.workers === 1 ? 'The worker' : `The ${wait.workers} workers`} of{' '}
          <span className="mono">{agentId}</span> online {wait.workers === 1 ? 'is' : 'are'} busy
          with {wait.held === 1 ? 'a run' : `${wait.held} runs`} and{' '}
          {wait.workers === 1 ? 'has' : 'have'} not asked for more since{' '}
          <RelativeTime iso={wait.seenAt} />: this run starts when a slot frees up (a run that hangs
          holds its slot until it ends).
        </>
      ) : wait.kind === 'late' ? (
        <>
          No worker has asked for runs of <span className="mono">{agentId}</span> since{' '}
          <RelativeTime iso={wait.seenAt} />.
        </>
      ) : wait.kind === 'stopped' ? (
        <>
          No worker of <span className="mono">{agentId}</span> is running: the last one asked for
          its runs <RelativeTime iso={wait.seenAt} /> and has stopped.
        </>
      ) : (
        <>
          A worker asked for runs of <span className="mono">{agentId}</span>{' '}
          <RelativeTime iso={wait.seenAt} />.
        </>
      )}{' '}
      <Link to="/workers">See the workers</Link>
    </p>
  );
}

/** The run this one is nested in, linked under its own agent and named by it. */
function ParentRun({ runId }: { runId: string }) {
  const parent = useQuery(runQuery(runId));
  const agentName = useAgentName();
  if (!parent.data) {
    const gone = parent.error instanceof ApiError && parent.error.status === 404;
    return (
      <span className="mono" title={runId}>
        {shortId(runId)}
        {gone ? <span className="muted"> (deleted)</span> : null}
      </span>
    );
  }
  return (
    <>
      <RunLink agentId={parent.data.agent_id} runId={runId} />{' '}
      <span className="muted">· {agentName(parent.data.agent_id)}</span>
    </>
  );
}

/**
 * The runs nested in this one (sub-agents), each with its status, linked under its own agent.
 * A sub-run's updates come on its agent's topic, which the page hears for the agents listed;
 * a sub-run of another agent is found by asking again when this run changes (a sub-agent
 * call is a step of it), at most every 5 s.
 */
function SubRuns({ run }: { run: RunWithSteps }) {
  const client = useQueryClient();
  const children = useQuery(subRunsQuery(run.id));
  const agentName = useAgentName();
  const agents = [...new Set(children.data?.runs.map((r) => r.agent_id))]
    .filter((a) => a !== run.agent_id)
    .sort()
    .slice(0, 10);
  useTopics(agents.map((a) => `agent:${a}`));

  const change = `${run.updated_at}|${run.steps.length}`;
  const seen = useRef(change);
  useEffect(() => {
    if (seen.current === change) return;
    seen.current = change;
    const key = subRunsKey(run.id);
    const age = Date.now() - (client.getQueryState(key)?.dataUpdatedAt ?? 0);
    const timer = setTimeout(
      () => void client.invalidateQueries({ queryKey: key, exact: true }),
      Math.max(0, 5000 - age),
    );
    return () => clearTimeout(timer);
  }, [change, client, run.id]);

  const list = children.data;
  if (!list || list.runs.length === 0) return null;
  const more = Math.max(0, list.total - list.runs.length);
  return (
    <Fact label="Sub-runs" wide>
      <ul className="sub-runs">
        {list.runs.map((r) => (
          <li key={r.id}>
            <StatusIcon status={r.status} />
            <RunLink agentId={r.agent_id} runId={r.id} />
            <span className="muted truncate" title={r.agent_id}>
              {agentName(r.agent_id)}
            </span>
          </li>
        ))}
      </ul>
      {list.has_more || more > 0 ? (
        <Link className="sub-runs-more" to={runsPath({ parent_run_id: run.id })}>
          {more > 0
            ? `and ${more.toLocaleString()}${list.total_capped ? '+' : ''} more`
            : 'and more'}
        </Link>
      ) : null}
    </Fact>
  );
}

/** What a screen reader hears when the run's status changes while its page is open. */
function statusNews(status: RunStatus): string {
  return status === 'running'
    ? 'Run started'
    : `Run ${RUN_STATUS_META[status].label.toLowerCase()}`;
}

/**
 * The run's status changes, said politely: the badge is redrawn, which is not read out. One
 * element from the first render on, so its later text is announced.
 */
function useStatusNews(runId: string, status: RunStatus | undefined): string {
  const [news, setNews] = useState('');
  const last = useRef<{ runId: string; status: RunStatus } | undefined>(undefined);
  useEffect(() => {
    if (!status) return;
    const was = last.current;
    last.current = { runId, status };
    if (was?.runId !== runId) setNews('');
    else if (was.status !== status) setNews(statusNews(status));
  }, [runId, status]);
  return news;
}

/** Runs that retried this one, newest first; a retry's run_update on the agent topic refreshes them. */
function useRetries(agentId: string, runId: string): Run[] {
  const recent = useQuery(agentRunsQuery(agentId));
  const latest = recent.data?.runs
    .filter((r) => r.retry_of === runId)
    .map((r) => r.id)
    .join(',');
  const retries = useQuery(retriesQuery(runId, latest ?? ''));
  return retries.data?.runs ?? [];
}

/** `/agents/:agentId/runs/:runId`: everything about one run, live. */
export function RunDetailPage() {
  const { agentId = '', runId = '' } = useParams();
  const detail = useQuery(runDetailQuery(runId));
  useTopics([`run:${runId}`, `agent:${agentId}`]);
  const { stop, requestRetry, retrying } = useRunActions();
  const navigate = useNavigate();
  const retries = useRetries(agentId, runId);
  const canWrite = useCan('write');
  const why = canWrite ? undefined : needsScope('write');
  const agentName = useAgentName();
  const notFound = detail.error instanceof ApiError && detail.error.status === 404;
  useDocumentTitle(
    detail.data
      ? `Run ${shortId(detail.data.id)} · ${agentName(detail.data.agent_id)}`
      : notFound
        ? 'Run not found'
        : `Run ${shortId(runId)}`,
  );
  const news = useStatusNews(runId, detail.data?.status);
  const active = detail.data ? isActive(detail.data.status) : false;
  // Stop goes when the run ends: focus on it goes to Retry beside it, not to the page's body
  const stopFocus = useFocusHandoff();
  const retryButton = useRef<HTMLButtonElement>(null);
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    if (!active) stopFocus.handOff(retryButton.current, heading.current);
  }, [active, stopFocus]);

  if (detail.isPending) return <Loading label="Loading run…" rows={8} />;
  // a refresh that failed with the run on screen (the server away a moment) keeps the run
  if (detail.isError && (notFound || detail.data === undefined)) {
    if (notFound) {
      return (
        <Empty title="Run not found" heading>
          This project has no run with this id: it may have been deleted, or the link may be wrong
          or point to another project&apos;s run. <Link to="/runs">See all runs</Link>
        </Empty>
      );
    }
    return <ErrorBox error={detail.error} onRetry={() => void detail.refetch()} />;
  }
  const run = detail.data;
  // a link naming another agent (an old link, a sub-run's parent) goes to the run's own address,
  // whose agent topic the page then hears
  if (run.agent_id !== agentId) return <Navigate to={runPath(run)} replace />;
  const stopping = stop.isPending || run.cancel_requested_at !== null;
  const error = run.error ? readableError(run.error) : null;
  // queued and nothing recorded: its tokens, cost and steps are not counted yet
  const uncounted = notStartedYet(run);

  return (
    <article className="run-detail" aria-labelledby="run-title">
      <p className="sr-only" role="status" data-testid="run-status-news">
        {news}
      </p>
      <nav className="crumbs" aria-label="Breadcrumb">
        <Link to="/">Agents</Link>
        <span aria-hidden="true">›</span>
        <Link to={agentPath(run.agent_id)}>{run.agent_id}</Link>
        <span aria-hidden="true">›</span>
        <span aria-current="page" className="mono">
          {shortId(run.id)}
        </span>
      </nav>
      <div className="page-head">
        <h1 id="run-title" tabIndex={-1} ref={heading}>
          Run <span className="mono">{shortId(run.id)}</span>
        </h1>
        <StatusBadge status={run.status} />
        {run.cancel_requested_at && active ? <span className="muted">stop requested…</span> : null}
        <div className="page-head-end">
          {active ? (
            <button
              type="button"
              className="btn btn-danger"
              // busy, not disabled: a disabled button drops the keyboard focus to the page
              disabled={!canWrite}
              aria-disabled={stopping || undefined}
              title={why}
              onClick={() => {
                if (!stopping) stop.mutate(run);
              }}
              {...stopFocus.props}
            >
              <span aria-hidden="true">■</span> Stop
            </button>
          ) : null}
          <button
            ref={retryButton}
            type="button"
            className="btn"
            disabled={!canWrite || active}
            aria-disabled={retrying || undefined}
            title={why}
            onClick={() => {
              if (!retrying) void requestRetry(run, (next) => void navigate(runPath(next.run)));
            }}
          >
            <span aria-hidden="true">↻</span> Retry
          </button>
          <RetryWithInputButton run={run} disabled={active} />
        </div>
      </div>

      <RefreshFailed query={detail} />
      {run.status === 'queued' ? <WaitingForWorker run={run} /> : null}
      {error ? (
        // a run stopped (Stop, its parent's Stop, its process interrupted): said, not alarmed
        <div
          className={run.status === 'cancelled' ? 'run-error run-error-stopped' : 'run-error'}
          role={run.status === 'cancelled' ? 'status' : 'alert'}
        >
          <strong>{error.type ?? 'Error'}:</strong>{' '}
          {/* a long message (up to 100,000 characters) scrolls in its box, the page stays */}
          <span className="run-error-message">{error.message}</span>
          {error.stack ? (
            // where it was thrown, folded: the message says what, the stack where
            <details className="run-error-stack">
              <summary>Stack trace</summary>
              <pre>{error.stack}</pre>
            </details>
          ) : null}
        </div>
      ) : null}

      <dl className="facts">
        <Fact label="Run ID">
          {/* the title shows its end; the whole id is what the CLI and the API take */}
          <span className="mono run-id">{run.id}</span>{' '}
          <button
            type="button"
            className="btn btn-small"
            aria-label="Copy the run id"
            onClick={() => void copyText(run.id, 'Run id copied')}
          >
            Copy
          </button>
        </Fact>
        <Fact label="Agent">
          <Link to={agentPath(run.agent_id)}>{run.agent_id}</Link>
        </Fact>
        <Fact label="Started">
          {run.started_at ? (
            <span title={formatExact(run.started_at)}>
              {formatExact(run.started_at)} · <RelativeTime iso={run.started_at} />
            </span>
          ) : null}
        </Fact>
        <Fact label="Duration">
          <RunDuration run={run} steps={run.steps} />
        </Fact>
        <QueuedFact run={run} />
        <Fact label="Ended">{run.ended_at ? formatExact(run.ended_at) : null}</Fact>
        <Fact label="Trigger">
          {TRIGGER_LABELS[run.trigger]}
          {run.attempt > 1 ? ` · attempt ${run.attempt}` : ''}
        </Fact>
        <Fact label="Source">{run.source}</Fact>
        <Fact label="Triggered by">{run.triggered_by}</Fact>
        <Fact label="Model">{run.model}</Fact>
        <Fact label="Thread">
          {run.thread_id ? (
            <>
              <Link className="mono" to={threadPath(run.thread_id)} title="The conversation">
                {run.thread_id}
              </Link>{' '}
              <Link
                className="thread-runs-link"
                to={runsPath({ thread_id: run.thread_id })}
                aria-label="All runs in this thread"
                title="All runs in this thread"
              >
                as runs
              </Link>
            </>
          ) : null}
        </Fact>
        <Fact label="User">{run.user_id ? <UserLinks userId={run.user_id} /> : null}</Fact>
        <Fact label="Tokens">
          {/* ended before it started: it used nothing, as its Cost says (0 would read as measured);
              queued, nothing is counted yet */}
          {usedNothing(run) || uncounted ? null : (
            <span className={active ? 'muted' : undefined}>
              {formatTokens(run.total_tokens)}{' '}
              <span className="muted">
                ({formatTokens(run.input_tokens)} in / {formatTokens(run.output_tokens)} out)
              </span>
            </span>
          )}
        </Fact>
        <Fact label="Cost">
          {uncounted ? null : (
            <>
              <Usage run={run} field="cost" />
              <UnpricedPart run={run} />
            </>
          )}
        </Fact>
        <ByModelFact run={run} />
        <Fact label="Steps">
          {uncounted ? null : (
            <>
              {run.step_count} · {run.llm_calls} LLM · {run.tool_calls} tool
              {run.error_count > 0 ? (
                <span className="bad"> · {run.error_count} failed</span>
              ) : null}
            </>
          )}
        </Fact>
        {run.retry_of ? (
          <Fact label="Retry of">
            <RunLink agentId={run.agent_id} runId={run.retry_of} />{' '}
            <Link className="compare-link" to={comparePath(run.retry_of, run.id)}>
              Compare with it
            </Link>
          </Fact>
        ) : null}
        {retries.length > 0 ? (
          <Fact label="Retried as">
            {retries.map((r, i) => (
              <span key={r.id}>
                {i > 0 ? ', ' : ''}
                <RunLink agentId={r.agent_id} runId={r.id} />
              </span>
            ))}
          </Fact>
        ) : null}
        {run.parent_run_id ? (
          <Fact label="Parent run">
            <ParentRun runId={run.parent_run_id} />
          </Fact>
        ) : null}
        {run.tags.length > 0 ? (
          <Fact label="Tags">
            {run.tags.map((t) => (
              <Link
                key={t}
                className="tag"
                to={runsPath({ tag: t })}
                title="All runs with this tag"
              >
                {t}
              </Link>
            ))}
          </Fact>
        ) : null}
        <SubRuns run={run} />
      </dl>

      <RunScores run={run} />

      <section aria-labelledby="timeline-title" className="section">
        <h2 id="timeline-title">
          Timeline {/* queued, there is nothing to count yet: "No steps yet" below says so */}
          {uncounted ? null : (
            <span className="muted count">
              {run.steps.length} {run.steps.length === 1 ? 'step' : 'steps'}
              {/* a long run's first load shows its steps as they come */}
              {detail.isFetching && run.steps.length < run.step_count
                ? `, loading ${run.step_count - run.steps.length} more…`
                : null}
            </span>
          )}
        </h2>
        {run.steps.length === 0 ? (
          <Empty title={active ? 'No steps yet' : 'This run recorded no steps'}>
            {active ? 'Steps appear here as the agent records them.' : null}
          </Empty>
        ) : (
          <Timeline run={run} steps={run.steps} />
        )}
      </section>

      <section className="section io" aria-label="Run input and output">
        <JsonViewer label="Run input" value={run.input} />
        <JsonViewer label="Run output" value={run.output} />
        {Object.keys(run.metadata).length > 0 ? (
          // open when short: its values link to the runs that share them
          <JsonViewer
            label="Run metadata"
            value={run.metadata}
            defaultOpen={fewMetadata(run.metadata)}
            topLevelValue={metadataValueLink}
          />
        ) : null}
      </section>
    </article>
  );
}
