import { useMemo, useState } from 'react';
import { useInfiniteQuery, useQuery } from '@tanstack/react-query';
import { Link, useSearchParams } from 'react-router-dom';
import type { UserSummary } from '@runlog/core';
import { Empty, ErrorBox, Loading, RefreshFailed } from '../../components/States';
import { LoadMore, LoadedCount } from '../../components/Paging';
import { StatusIcon } from '../../components/Status';
import { TextFilter } from '../../components/TextFilter';
import { RelativeTime } from '../../components/Time';
import { RUN_STATUS_META, formatTokens, searchEmptyText } from '../../lib/format';
import { useTopics } from '../../app/live';
import { useDocumentTitle } from '../../app/page';
import { paramsWith } from '../../lib/params';
import { agentsQuery } from '../agents/agents.queries';
import { AgentSelect } from '../agents/AgentSelect';
import { runPath } from '../runs/RunActions';
import { TimeRangeFields } from '../runs/TimeRangeFields';
import { ActivePill, FailedCount, ThreadCost } from '../threads/ThreadsPage';
import { userListQuery, userPath, usersViewFromParams } from './users.queries';

const USER_NOUN = { one: 'user', many: 'users' };

/** The latest run's status as the row's icon says it, with what it failed with. */
export function latestRunText(user: Pick<UserSummary, 'last_run'>): string {
  const status = RUN_STATUS_META[user.last_run.status].label.toLowerCase();
  return user.last_run.error
    ? `Latest run ${status}: ${user.last_run.error}`
    : `Latest run ${status}`;
}

/** The user's latest run as its status icon, a link to the run. */
export function LatestRunLink({ user }: { user: Pick<UserSummary, 'last_run'> }) {
  return (
    <Link className="user-latest" to={runPath(user.last_run)}>
      <StatusIcon status={user.last_run.status} label={latestRunText(user)} />
    </Link>
  );
}

function UserRow({ user, agentName }: { user: UserSummary; agentName: (id: string) => string }) {
  const agents = user.agent_ids.map(agentName).join(', ');
  return (
    <tr data-user-id={user.user_id} data-status={user.last_run.status} className="user-row">
      <td className="col-status">
        <LatestRunLink user={user} />
      </td>
      <td className="user-cell">
        <Link to={userPath(user.user_id)} className="user-link" title={user.user_id}>
          {user.user_id}
        </Link>
        {/* short of room, the Agents column goes under the user */}
        <span className="user-who-narrow truncate" title={agents}>
          {agents}
        </span>
        {user.last_run.error ? (
          <span className="user-error truncate error-text" title={user.last_run.error}>
            <span aria-hidden="true">↳ </span>
            <span className="sr-only">Latest error: </span>
            {user.last_run.error}
          </span>
        ) : null}
      </td>
      <td className="col-user-runs num" data-label="Runs">
        {user.runs.toLocaleString()}
        <ActivePill count={user.active} />
      </td>
      <td className="col-user-failed num" data-label="Failed">
        <FailedCount count={user.failed} />
      </td>
      <td className="col-user-threads num" data-label="Threads">
        {user.threads.toLocaleString()}
      </td>
      <td className="col-user-agents">
        <span className="truncate" title={user.agent_ids.join(', ')}>
          {agents}
        </span>
      </td>
      <td className="col-usage col-user-tokens num">
        <span className={user.active > 0 ? 'muted' : undefined}>
          {formatTokens(user.total_tokens)}
        </span>
      </td>
      <td className="col-usage num">
        <ThreadCost thread={user} />
      </td>
      <td className="col-user-last">
        <RelativeTime iso={user.last_at} />
      </td>
    </tr>
  );
}

/** The people runs were made for (their `user_id`), the latest active first, summed, live. */
export function UsersPage() {
  const [params, setParams] = useSearchParams();
  const view = useMemo(() => usersViewFromParams(params), [params]);
  const users = useInfiniteQuery(userListQuery(view));
  const agents = useQuery(agentsQuery());
  useTopics(['runs']);
  useDocumentTitle('Users');

  const set = useMemo(
    () => (changes: Record<string, string | null>) =>
      setParams(paramsWith(changes), { replace: true }),
    [setParams],
  );
  const onSearch = useMemo(() => (q: string) => set({ q }), [set]);
  // bumped by "Clear filters": the search starts again empty, dropping typing not yet applied
  const [cleared, setCleared] = useState(0);
  const agentName = (id: string) => agents.data?.find((a) => a.id === id)?.name ?? id;
  // the agent and range narrow the runs each user is summed over; the search only picks users
  const narrowed = view.agent.length > 0 || view.from !== '' || view.to !== '';
  const filtered = narrowed || view.q !== '';
  const searched = view.q ? searchEmptyText(USER_NOUN, view.q, narrowed) : undefined;
  const shown = users.data?.pages.flatMap((p) => p.users) ?? [];

  return (
    <div>
      <div className="page-head">
        <h1 tabIndex={-1}>Users</h1>
        {users.data ? <LoadedCount count={shown.length} query={users} noun="users" /> : null}
      </div>
      <form
        className="filters"
        role="search"
        aria-label="Filter users"
        onSubmit={(e) => e.preventDefault()}
      >
        <AgentSelect
          id="users-agent"
          agents={agents.data}
          value={view.agent}
          onChange={(agent) => set({ agent })}
        />
        <TimeRangeFields idPrefix="users" from={view.from} to={view.to} onChange={set} />
        <TextFilter
          key={`q-${cleared}`}
          id="users-q"
          label="Search"
          placeholder="Part of a user id"
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
      {narrowed ? (
        <p className="muted users-note" data-testid="users-filtered-note">
          Each user is summed over the runs these filters keep.
        </p>
      ) : null}

      <RefreshFailed query={users} />

      {users.isPending ? (
        <Loading label="Loading users…" rows={8} />
      ) : users.isError && users.data === undefined ? (
        <ErrorBox error={users.error} onRetry={() => void users.refetch()} />
      ) : shown.length === 0 ? (
        <Empty
          title={searched?.title ?? (filtered ? 'No users match these filters' : 'No users yet')}
        >
          {searched ? (
            searched.body
          ) : filtered ? (
            'Change or clear the filters.'
          ) : (
            <>
              A user is whoever a run was made for: the runs recorded with the same user id. With
              the SDK:{' '}
              <code>
                runlog.run(&#39;my-agent&#39;, fn, {'{'} userId {'}'})
              </code>
              , or the <code>user_id</code> field of a run sent to the API.
            </>
          )}
        </Empty>
      ) : (
        <>
          <div
            className={`table-wrap${users.isPlaceholderData ? ' stale' : ''}`}
            aria-busy={users.isFetching}
          >
            <table className="users-table">
              <caption className="sr-only">Users, the latest active first</caption>
              <thead>
                <tr>
                  <th scope="col" className="col-status">
                    <span className="sr-only">Latest run</span>
                  </th>
                  <th scope="col" className="user-cell">
                    User
                  </th>
                  <th scope="col" className="col-user-runs num">
                    Runs
                  </th>
                  <th scope="col" className="col-user-failed num">
                    Failed
                  </th>
                  <th scope="col" className="col-user-threads num">
                    Threads
                  </th>
                  <th scope="col" className="col-user-agents">
                    Agents
                  </th>
                  <th scope="col" className="col-usage col-user-tokens num">
                    Tokens
                  </th>
                  <th scope="col" className="col-usage num">
                    Cost
                  </th>
                  <th scope="col" className="col-user-last">
                    Last active
                  </th>
                </tr>
              </thead>
              <tbody>
                {shown.map((u) => (
                  <UserRow key={u.user_id} user={u} agentName={agentName} />
                ))}
              </tbody>
            </table>
          </div>
          <LoadMore query={users} noun="users" />
        </>
      )}
    </div>
  );
}
