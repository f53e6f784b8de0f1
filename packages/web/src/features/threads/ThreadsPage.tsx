import { useMemo, useState } from 'react';
import { useInfiniteQuery, useQuery } from '@tanstack/react-query';
import { Link, useSearchParams } from 'react-router-dom';
import type { ThreadSummary } from '@runlog/core';
import { Empty, ErrorBox, Loading, RefreshFailed } from '../../components/States';
import { LoadMore, LoadedCount } from '../../components/Paging';
import { StatusIcon } from '../../components/Status';
import { TextFilter } from '../../components/TextFilter';
import { RelativeTime } from '../../components/Time';
import {
  RUN_STATUS_META,
  UNPRICED_NOTE,
  formatTokens,
  runCost,
  searchEmptyText,
} from '../../lib/format';
import { useTopics } from '../../app/live';
import { useDocumentTitle } from '../../app/page';
import { paramsWith } from '../../lib/params';
import { agentsQuery } from '../agents/agents.queries';
import { AgentSelect } from '../agents/AgentSelect';
import { userPath } from '../users/users.queries';
import { threadListQuery, threadPath, threadsViewFromParams } from './threads.queries';

const THREAD_NOUN = { one: 'thread', many: 'threads' };

/** The latest run's status as the row's icon says it, with what it failed with. */
function latestText(thread: ThreadSummary): string {
  const status = RUN_STATUS_META[thread.last_run.status].label;
  return thread.last_run.error
    ? `Latest run ${status.toLowerCase()}: ${thread.last_run.error}`
    : `Latest run ${status.toLowerCase()}`;
}

/** "3 runs", "1 run". */
export function runsText(n: number): string {
  return `${n.toLocaleString()} ${n === 1 ? 'run' : 'runs'}`;
}

/** Queued or running runs, as a pill: the thread is still going. */
export function ActivePill({ count }: { count: number }) {
  if (count === 0) return null;
  return (
    <span
      className="thread-active"
      title={`${runsText(count)} queued or running`}
      data-testid="thread-active"
    >
      <span className="dot" aria-hidden="true" /> {count} active
    </span>
  );
}

/** Failed or timed-out runs, painted to stand out; none reads as a plain, grey 0. */
export function FailedCount({ count }: { count: number }) {
  return count > 0 ? (
    <span className="failed-count" title={`${runsText(count)} failed or timed out`}>
      {count.toLocaleString()}
    </span>
  ) : (
    <span className="muted">0</span>
  );
}

/** A thread's (or a user's) tokens and cost, grey while its runs still run (they still grow). */
export function ThreadCost({
  thread,
}: {
  thread: Pick<ThreadSummary, 'active' | 'cost_usd' | 'total_tokens'>;
}) {
  const cost = runCost(thread);
  return (
    <span
      className={thread.active > 0 || cost.unpriced ? 'muted' : undefined}
      title={cost.unpriced ? UNPRICED_NOTE : undefined}
    >
      {cost.text}
    </span>
  );
}

function ThreadRow({
  thread,
  agentName,
  showUser,
}: {
  thread: ThreadSummary;
  agentName: (id: string) => string;
  showUser: boolean;
}) {
  const title = thread.first_run.input ?? thread.thread_id;
  const agents = thread.agent_ids.map(agentName).join(', ');
  const reply = thread.last_run.error ?? thread.last_run.output;
  return (
    <tr
      data-thread-id={thread.thread_id}
      data-status={thread.last_run.status}
      className="thread-row"
    >
      <td className="col-status">
        <StatusIcon status={thread.last_run.status} label={latestText(thread)} />
      </td>
      <td className="thread-cell">
        <Link to={threadPath(thread.thread_id)} className="thread-title" title={title}>
          {title}
        </Link>
        <span className="thread-sub">
          {thread.first_run.input !== null ? (
            <span className="mono truncate thread-id" title={`Thread ${thread.thread_id}`}>
              {thread.thread_id}
            </span>
          ) : null}
          {/* a phone has no room for the Agents and User columns: they go under the title */}
          <span className="thread-who-narrow truncate" title={agents}>
            {agents}
            {showUser && thread.user_id ? ` · ${thread.user_id}` : ''}
          </span>
        </span>
        {reply ? (
          <span
            className={`thread-reply truncate${thread.last_run.error ? ' error-text' : ''}`}
            title={reply}
          >
            <span aria-hidden="true">↳ </span>
            <span className="sr-only">
              {thread.last_run.error ? 'Last error: ' : 'Last reply: '}
            </span>
            {reply}
          </span>
        ) : null}
      </td>
      <td className="col-thread-agents">
        <span className="truncate" title={thread.agent_ids.join(', ')}>
          {agents}
        </span>
      </td>
      {showUser ? (
        <td className="col-thread-user">
          {thread.user_id ? (
            <Link className="truncate" to={userPath(thread.user_id)} title={thread.user_id}>
              {thread.user_id}
            </Link>
          ) : (
            <span className="muted">—</span>
          )}
        </td>
      ) : null}
      <td className="col-thread-runs num" data-label="Runs">
        {thread.runs.toLocaleString()}
        <ActivePill count={thread.active} />
      </td>
      <td className="col-thread-failed num" data-label="Failed">
        <FailedCount count={thread.failed} />
      </td>
      <td className="col-usage col-thread-tokens num">
        <span className={thread.active > 0 ? 'muted' : undefined}>
          {formatTokens(thread.total_tokens)}
        </span>
      </td>
      <td className="col-usage num">
        <ThreadCost thread={thread} />
      </td>
      <td className="col-thread-last">
        <RelativeTime iso={thread.last_at} />
      </td>
    </tr>
  );
}

/**
 * Threads as the Threads page lists them; a user's page leaves out the User column, which
 * would name the same user on every row.
 */
export function ThreadsTable({
  threads,
  agentName,
  caption,
  showUser = true,
}: {
  threads: readonly ThreadSummary[];
  agentName: (id: string) => string;
  caption: string;
  showUser?: boolean;
}) {
  return (
    <table className="threads-table">
      <caption className="sr-only">{caption}</caption>
      <thead>
        <tr>
          <th scope="col" className="col-status">
            <span className="sr-only">Latest status</span>
          </th>
          <th scope="col" className="thread-cell">
            Thread
          </th>
          <th scope="col" className="col-thread-agents">
            Agents
          </th>
          {showUser ? (
            <th scope="col" className="col-thread-user">
              User
            </th>
          ) : null}
          <th scope="col" className="col-thread-runs num">
            Runs
          </th>
          <th scope="col" className="col-thread-failed num">
            Failed
          </th>
          <th scope="col" className="col-usage col-thread-tokens num">
            Tokens
          </th>
          <th scope="col" className="col-usage num">
            Cost
          </th>
          <th scope="col" className="col-thread-last">
            Last activity
          </th>
        </tr>
      </thead>
      <tbody>
        {threads.map((t) => (
          <ThreadRow key={t.thread_id} thread={t} agentName={agentName} showUser={showUser} />
        ))}
      </tbody>
    </table>
  );
}

/** Conversations: runs sharing a thread id, the latest active first, filtered by the URL, live. */
export function ThreadsPage() {
  const [params, setParams] = useSearchParams();
  const view = useMemo(() => threadsViewFromParams(params), [params]);
  const threads = useInfiniteQuery(threadListQuery(view));
  const agents = useQuery(agentsQuery());
  useTopics(['runs']);
  useDocumentTitle('Threads');

  const set = useMemo(
    () => (changes: Record<string, string | null>) =>
      setParams(paramsWith(changes), { replace: true }),
    [setParams],
  );
  const onUser = useMemo(() => (user: string) => set({ user_id: user }), [set]);
  const onSearch = useMemo(() => (q: string) => set({ q }), [set]);
  // bumped by "Clear filters": the text fields start again empty, dropping typing not yet applied
  const [cleared, setCleared] = useState(0);
  const agentName = (id: string) => agents.data?.find((a) => a.id === id)?.name ?? id;
  const narrowed = view.agent.length > 0 || view.user !== '';
  const filtered = narrowed || view.q !== '';
  const searched = view.q ? searchEmptyText(THREAD_NOUN, view.q, narrowed) : undefined;
  const shown = threads.data?.pages.flatMap((p) => p.threads) ?? [];

  return (
    <div>
      <div className="page-head">
        <h1 tabIndex={-1}>Threads</h1>
        {threads.data ? <LoadedCount count={shown.length} query={threads} noun="threads" /> : null}
      </div>
      <form
        className="filters"
        role="search"
        aria-label="Filter threads"
        onSubmit={(e) => e.preventDefault()}
      >
        <AgentSelect
          id="threads-agent"
          agents={agents.data}
          value={view.agent}
          onChange={(agent) => set({ agent })}
        />
        <TextFilter
          key={`user-${cleared}`}
          id="threads-user"
          label="User"
          // the exact id a run was made for; the Users page finds one from part of it
          placeholder="Whole id, e.g. dana@example.com"
          value={view.user}
          onCommit={onUser}
          grow
        />
        <TextFilter
          key={`q-${cleared}`}
          id="threads-q"
          label="Search"
          placeholder="Part of a thread id"
          value={view.q}
          onCommit={onSearch}
          maxLength={200}
          grow
        />
        {filtered ? (
          <button
            type="button"
            className="btn btn-small btn-ghost clear"
            onClick={() => {
              setCleared((n) => n + 1);
              setParams(new URLSearchParams(), { replace: true });
            }}
          >
            Clear filters
          </button>
        ) : null}
      </form>

      <RefreshFailed query={threads} />

      {threads.isPending ? (
        <Loading label="Loading threads…" rows={8} />
      ) : threads.isError && threads.data === undefined ? (
        <ErrorBox error={threads.error} onRetry={() => void threads.refetch()} />
      ) : shown.length === 0 ? (
        <Empty
          title={
            searched?.title ?? (filtered ? 'No threads match these filters' : 'No threads yet')
          }
        >
          {searched ? (
            searched.body
          ) : filtered ? (
            'Change or clear the filters.'
          ) : (
            <>
              A thread is a conversation: the runs recorded with the same thread id. With the SDK:{' '}
              <code>
                runlog.run(&#39;my-agent&#39;, fn, {'{'} threadId {'}'})
              </code>
            </>
          )}
        </Empty>
      ) : (
        <>
          <div
            className={`table-wrap${threads.isPlaceholderData ? ' stale' : ''}`}
            aria-busy={threads.isFetching}
          >
            <ThreadsTable
              threads={shown}
              agentName={agentName}
              caption="Threads, the latest active first"
            />
          </div>
          <LoadMore query={threads} noun="threads" />
        </>
      )}
    </div>
  );
}
