import { useState } from 'react';
import { useInfiniteQuery, useQuery } from '@tanstack/react-query';
import { Link, useLocation } from 'react-router-dom';
import { previewText, readableError, type Run } from '@runlog/core';
import { ApiError } from '../../lib/api';
import { Empty, ErrorBox, Loading, RefreshFailed } from '../../components/States';
import { StatusBadge, StatusIcon } from '../../components/Status';
import { RelativeTime, RunDuration, RunStart } from '../../components/Time';
import { JsonViewer } from '../../components/JsonViewer';
import { RunIdText } from '../../components/RunId';
import { formatExact, formatTokens, isActive, shortId, usedNothing } from '../../lib/format';
import { useTopics } from '../../app/live';
import { useDocumentTitle } from '../../app/page';
import { agentPath, agentsQuery } from '../agents/agents.queries';
import { runPath } from '../runs/RunActions';
import { Usage } from '../runs/RunRows';
import { runsPath } from '../runs/RunsPage';
import { Fact } from '../run-detail/RunDetailPage';
import { UserLinks } from '../users/UserLinks';
import { ActivePill, ThreadCost, runsText } from './ThreadsPage';
import { turnsOf } from './threads.cache';
import { threadIdFromPath, threadQuery, threadRunsQuery } from './threads.queries';

/** Most characters of a turn's input or output the conversation shows; the rest is one click away. */
const TURN_TEXT_CHARS = 2000;

/** One side of a turn: what the user said or what the agent answered, as text. */
function Message({
  who,
  value,
  empty,
  className,
}: {
  who: string;
  value: unknown;
  empty: string;
  className: string;
}) {
  // a turn reads as the message it is: its paragraphs, lists and code keep their lines
  const text = previewText(value, TURN_TEXT_CHARS, { lines: true });
  return (
    <div className={`turn-msg ${className}`}>
      <span className="turn-who">{who}</span>
      {text === null ? (
        <p className="turn-text muted">{empty}</p>
      ) : (
        <p className="turn-text">{text}</p>
      )}
    </div>
  );
}

/** One run of the thread: its input, then its output (or error), with its facts and a link. */
function Turn({ run, n, agentName }: { run: Run; n: number | null; agentName: string }) {
  const [json, setJson] = useState(false);
  const active = isActive(run.status);
  const label = n !== null ? `Turn ${n}` : `Run ${shortId(run.id)}`;
  return (
    <li className={`turn s-row-${run.status}`} data-run-id={run.id} data-status={run.status}>
      <article aria-label={label}>
        <header className="turn-head">
          <StatusIcon status={run.status} />
          <span className="turn-n">{label}</span>
          <span className="turn-agent truncate" title={run.agent_id}>
            {agentName}
          </span>
          <span className="turn-facts muted">
            <RunStart run={run} />
            {/* cancelled before it started: no duration, tokens or cost ("— tokens") to tell */}
            {!usedNothing(run) && (
              <>
                <span aria-hidden="true"> · </span>
                <RunDuration run={run} />
                <span className="turn-usage">
                  <span aria-hidden="true"> · </span>
                  <Usage run={run} field="tokens" /> tokens
                  <span aria-hidden="true"> · </span>
                  <Usage run={run} field="cost" />
                </span>
              </>
            )}
          </span>
          <Link className="turn-link" to={runPath(run)} title={`Open run ${run.id}`}>
            Run{' '}
            <span className="mono">
              <RunIdText id={run.id} />
            </span>
            <span aria-hidden="true"> →</span>
          </Link>
        </header>
        <Message who="Input" value={run.input} empty="No input" className="turn-in" />
        {run.error ? (
          <div className="turn-msg turn-error" role="note">
            <span className="turn-who">Error</span>
            <p className="turn-text">
              {readableError(run.error).type ? (
                <strong>{readableError(run.error).type}: </strong>
              ) : null}
              {readableError(run.error).message}
            </p>
          </div>
        ) : null}
        {run.output !== null || !run.error ? (
          <Message
            who="Output"
            value={run.output}
            empty={
              active ? (run.status === 'queued' ? 'Waiting to start…' : 'Running…') : 'No output'
            }
            className="turn-out"
          />
        ) : null}
        <button
          type="button"
          className="link-btn turn-json-toggle"
          aria-expanded={json}
          onClick={() => setJson((o) => !o)}
        >
          {json ? 'Hide JSON' : 'Show JSON'}
        </button>
        {json ? (
          <div className="io turn-json">
            <JsonViewer label={`${label} input`} value={run.input} />
            <JsonViewer label={`${label} output`} value={run.output} />
          </div>
        ) : null}
      </article>
    </li>
  );
}

/** `/threads/:threadId`: a conversation's sums, then its runs as turns, the oldest first, live. */
export function ThreadPage() {
  // read from the path as the address bar has it (see threadIdFromPath)
  const threadId = threadIdFromPath(useLocation().pathname) ?? '';
  const summary = useQuery(threadQuery(threadId));
  const runs = useInfiniteQuery(threadRunsQuery(threadId));
  const agents = useQuery(agentsQuery());
  useTopics(['runs']);
  const notFound = summary.error instanceof ApiError && summary.error.status === 404;
  useDocumentTitle(notFound ? 'Thread not found' : `Thread ${threadId}`);

  const agentName = (id: string) => agents.data?.find((a) => a.id === id)?.name ?? id;
  const turns = turnsOf(runs.data);
  const total = runs.data?.pages[0]?.total;
  // numbered from the first turn when the count is whole (a search past its cap is not)
  const first =
    total !== undefined && !runs.data?.pages[0]?.total_capped ? total - turns.length + 1 : null;

  if (summary.isPending) return <Loading label="Loading thread…" rows={8} />;
  // a refresh that failed with the thread on screen (the server away a moment) keeps it
  if (summary.isError && (notFound || summary.data === undefined)) {
    if (notFound)
      return (
        <Empty title="Thread not found" heading>
          No runs in thread <span className="mono thread-missing">{threadId}</span>: they may have
          been deleted, or the link may be wrong. <Link to="/threads">See all threads</Link>
        </Empty>
      );
    return <ErrorBox error={summary.error} onRetry={() => void summary.refetch()} />;
  }
  const thread = summary.data;

  return (
    <article className="thread-page" aria-labelledby="thread-title">
      <nav className="crumbs" aria-label="Breadcrumb">
        <Link to="/threads">Threads</Link>
        <span aria-hidden="true">›</span>
        <span aria-current="page" className="mono">
          {threadId}
        </span>
      </nav>
      <div className="page-head">
        <h1 id="thread-title" tabIndex={-1}>
          Thread <span className="mono">{thread.thread_id}</span>
        </h1>
        <StatusBadge status={thread.last_run.status} />
        <ActivePill count={thread.active} />
        <div className="page-head-end">
          <Link className="btn btn-small" to={runsPath({ thread_id: thread.thread_id })}>
            See as runs
          </Link>
        </div>
      </div>
      <RefreshFailed query={summary} />
      <dl className="facts thread-facts">
        <Fact label="Runs">{thread.runs.toLocaleString()}</Fact>
        <Fact label="Failed">
          {thread.failed > 0 ? (
            <span className="failed-count">{thread.failed.toLocaleString()}</span>
          ) : (
            '0'
          )}
        </Fact>
        <Fact label="Tokens">
          <span className={thread.active > 0 ? 'muted' : undefined}>
            {formatTokens(thread.total_tokens)}
          </span>
        </Fact>
        <Fact label="Cost">
          <ThreadCost thread={thread} />
        </Fact>
        <Fact label={thread.agent_ids.length === 1 ? 'Agent' : 'Agents'}>
          {thread.agent_ids.map((a, i) => (
            <span key={a}>
              {i > 0 ? ', ' : ''}
              <Link to={agentPath(a)}>{agentName(a)}</Link>
            </span>
          ))}
        </Fact>
        <Fact label="User">{thread.user_id ? <UserLinks userId={thread.user_id} /> : null}</Fact>
        <Fact label="First run">
          <span title={formatExact(thread.first_at)}>
            <RelativeTime iso={thread.first_at} />
          </span>
        </Fact>
        <Fact label="Last activity">
          <RelativeTime iso={thread.last_at} />
        </Fact>
      </dl>

      <section className="section" aria-labelledby="conversation-title">
        <h2 id="conversation-title">
          Conversation{' '}
          {total !== undefined ? (
            <span className="muted count">
              {total > turns.length
                ? `${turns.length.toLocaleString()} of ${runsText(total)}`
                : runsText(total)}
            </span>
          ) : null}
        </h2>
        <RefreshFailed query={runs} />
        {runs.isPending ? (
          <Loading label="Loading the conversation…" rows={4} />
        ) : runs.isError && runs.data === undefined ? (
          <ErrorBox error={runs.error} onRetry={() => void runs.refetch()} />
        ) : turns.length === 0 ? (
          <Empty title="No runs in this thread" />
        ) : (
          <>
            {runs.hasNextPage ? (
              <div className="turns-earlier">
                <button
                  type="button"
                  className="btn btn-small"
                  aria-disabled={runs.isFetchingNextPage || undefined}
                  onClick={() => {
                    if (!runs.isFetchingNextPage) void runs.fetchNextPage();
                  }}
                >
                  {runs.isFetchingNextPage ? 'Loading…' : 'Load earlier turns'}
                </button>
              </div>
            ) : null}
            <ol className="turns" aria-label="Turns, the oldest first">
              {turns.map((run, i) => (
                <Turn
                  key={run.id}
                  run={run}
                  n={first !== null ? first + i : null}
                  agentName={agentName(run.agent_id)}
                />
              ))}
            </ol>
          </>
        )}
      </section>
    </article>
  );
}
