import { useMemo } from 'react';
import { useInfiniteQuery, useQuery } from '@tanstack/react-query';
import { Link, useLocation } from 'react-router-dom';
import { ApiError } from '../../lib/api';
import { Empty, ErrorBox, Loading, RefreshFailed } from '../../components/States';
import { RunIdText } from '../../components/RunId';
import { RelativeTime } from '../../components/Time';
import { formatExact, formatTokens } from '../../lib/format';
import { useTopics } from '../../app/live';
import { useDocumentTitle } from '../../app/page';
import { agentPath, agentsQuery } from '../agents/agents.queries';
import { runPath } from '../runs/RunActions';
import { RunRow, RunTableHead } from '../runs/RunRows';
import { runsPath, viewFromParams } from '../runs/RunsPage';
import { runListQuery } from '../runs/runs.queries';
import { Fact } from '../run-detail/RunDetailPage';
import { threadListQuery } from '../threads/threads.queries';
import {
  ActivePill,
  FailedCount,
  ThreadCost,
  ThreadsTable,
  runsText,
} from '../threads/ThreadsPage';
import { LatestRunLink } from './UsersPage';
import { userIdFromPath, userQuery } from './users.queries';

/** How many of a user's threads, and of its runs, its page shows; the rest are a link away. */
const SHOWN = 10;

/** "1 thread", "3 threads". */
const threadsText = (n: number) => `${n.toLocaleString()} ${n === 1 ? 'thread' : 'threads'}`;

/**
 * `/users/:userId`: what one user's runs add up to, then its latest threads and runs, live;
 * all of them are on the Threads and Runs pages, filtered by the user.
 */
export function UserPage() {
  // read from the path as the address bar has it (see itemIdFromPath)
  const userId = userIdFromPath(useLocation().pathname) ?? '';
  const summary = useQuery(userQuery(userId));
  // the Runs page's own query for this user: the runs it lists are the ones it links to
  const runsView = useMemo(
    () => viewFromParams(new URLSearchParams({ user_id: userId })),
    [userId],
  );
  const runs = useQuery(runListQuery(runsView));
  const threads = useInfiniteQuery(threadListQuery({ agent: [], user: userId, q: '' }));
  const agents = useQuery(agentsQuery());
  useTopics(['runs']);
  const notFound = summary.error instanceof ApiError && summary.error.status === 404;
  useDocumentTitle(notFound ? 'User not found' : `User ${userId}`);

  const agentName = (id: string) => agents.data?.find((a) => a.id === id)?.name ?? id;
  const allRuns = runsPath({ user_id: userId });
  const allThreads = `/threads?${new URLSearchParams({ user_id: userId }).toString()}`;

  if (summary.isPending) return <Loading label="Loading user…" rows={8} />;
  // a refresh that failed with the user on screen (the server away a moment) keeps it
  if (summary.isError && (notFound || summary.data === undefined)) {
    if (notFound)
      return (
        <Empty title="User not found" heading>
          No runs were made for user <span className="mono user-missing">{userId}</span>: they may
          have been deleted, or the link may be wrong. <Link to="/users">See all users</Link>
        </Empty>
      );
    return <ErrorBox error={summary.error} onRetry={() => void summary.refetch()} />;
  }
  const user = summary.data;
  // both lists keep the last answer while they ask anew (a filter's change on their own
  // pages): another user's threads and runs are not this one's, so they wait for their own
  const threadsLoading = threads.isPending || threads.isPlaceholderData;
  const runsLoading = runs.isPending || runs.isPlaceholderData;
  const userThreads = threadsLoading ? [] : (threads.data?.pages[0]?.threads.slice(0, SHOWN) ?? []);
  const latestRuns = runsLoading ? [] : (runs.data?.runs.slice(0, SHOWN) ?? []);

  return (
    <article className="user-page" aria-labelledby="user-title">
      <nav className="crumbs" aria-label="Breadcrumb">
        <Link to="/users">Users</Link>
        <span aria-hidden="true">›</span>
        <span aria-current="page" className="mono">
          {userId}
        </span>
      </nav>
      <div className="page-head">
        <h1 id="user-title" tabIndex={-1}>
          User <span className="mono">{user.user_id}</span>
        </h1>
        <ActivePill count={user.active} />
        <div className="page-head-end">
          <Link className="btn btn-small" to={allRuns}>
            All runs of this user
          </Link>
        </div>
      </div>
      <RefreshFailed query={summary} />
      <dl className="facts user-facts">
        <Fact label="Runs">{user.runs.toLocaleString()}</Fact>
        <Fact label="Failed">
          <FailedCount count={user.failed} />
        </Fact>
        <Fact label="Threads">{user.threads.toLocaleString()}</Fact>
        <Fact label="Tokens">
          <span className={user.active > 0 ? 'muted' : undefined}>
            {formatTokens(user.total_tokens)}
          </span>
        </Fact>
        <Fact label="Cost">
          <ThreadCost thread={user} />
        </Fact>
        <Fact label={user.agent_ids.length === 1 ? 'Agent' : 'Agents'}>
          {user.agent_ids.map((a, i) => (
            <span key={a}>
              {i > 0 ? ', ' : ''}
              <Link to={agentPath(a)}>{agentName(a)}</Link>
            </span>
          ))}
        </Fact>
        <Fact label="First seen">
          <span title={formatExact(user.first_at)}>
            <RelativeTime iso={user.first_at} />
          </span>
        </Fact>
        <Fact label="Last active">
          <RelativeTime iso={user.last_at} />
        </Fact>
        <Fact label="Latest run">
          <span className="user-latest-fact">
            <LatestRunLink user={user} />{' '}
            <Link className="mono truncate" to={runPath(user.last_run)} title={user.last_run.id}>
              <RunIdText id={user.last_run.id} />
            </Link>
          </span>
          {user.last_run.error ? (
            <span className="error-text user-latest-error">{user.last_run.error}</span>
          ) : null}
        </Fact>
      </dl>

      <section className="section" aria-labelledby="user-threads-title">
        <div className="section-head">
          <h2 id="user-threads-title">
            Threads <span className="muted count">{threadsText(user.threads)}</span>
          </h2>
          {user.threads > userThreads.length && userThreads.length > 0 ? (
            <Link className="section-head-end" to={allThreads}>
              See all {threadsText(user.threads)}
            </Link>
          ) : null}
        </div>
        <RefreshFailed query={threads} />
        {threadsLoading ? (
          <Loading label="Loading threads…" rows={3} />
        ) : threads.isError && threads.data === undefined ? (
          <ErrorBox error={threads.error} onRetry={() => void threads.refetch()} />
        ) : userThreads.length === 0 ? (
          <Empty title="No threads">
            This user&#39;s runs were recorded without a thread id: each stands alone.
          </Empty>
        ) : (
          <div className="table-wrap">
            <ThreadsTable
              threads={userThreads}
              agentName={agentName}
              caption={`Latest threads of ${userId}, the latest active first`}
              showUser={false}
            />
          </div>
        )}
      </section>

      <section className="section" aria-labelledby="user-runs-title">
        <div className="section-head">
          <h2 id="user-runs-title">
            Latest runs <span className="muted count">{runsText(user.runs)}</span>
          </h2>
          {user.runs > latestRuns.length && latestRuns.length > 0 ? (
            <Link className="section-head-end" to={allRuns}>
              See all {runsText(user.runs)}
            </Link>
          ) : null}
        </div>
        <RefreshFailed query={runs} />
        {runsLoading ? (
          <Loading label="Loading runs…" rows={3} />
        ) : runs.isError && runs.data === undefined ? (
          <ErrorBox error={runs.error} onRetry={() => void runs.refetch()} />
        ) : latestRuns.length === 0 ? (
          <Empty title="No runs">Its runs may have been deleted since.</Empty>
        ) : (
          <div className="table-wrap">
            <table className="runs-table compact">
              <caption className="sr-only">Latest runs of {userId}, newest first</caption>
              <RunTableHead showAgent />
              <tbody>
                {latestRuns.map((run) => (
                  <RunRow key={run.id} run={run} showAgent />
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </article>
  );
}
