import { infiniteQueryOptions, keepPreviousData, queryOptions } from '@tanstack/react-query';
import type { UserList, UserSummary } from '@runlog/core';
import { api } from '../../lib/api';
import { itemIdFromPath, itemPath, listParam } from '../../lib/params';
import { localToMs, throughMinute } from '../runs/runs.queries';

/** How many users a page of the Users list holds. */
export const USERS_PAGE = 50;

/** The Users page's filters as kept in the URL: the runs each user is summed over. */
export interface UsersView {
  agent: string[];
  /** Instants as the URL has them (ISO-8601 in UTC), as the Runs page keeps its range. */
  from: string;
  to: string;
  /** Text the user ids hold, any case ('' for every user); it picks users, not runs. */
  q: string;
}

export const userListKey = (view: UsersView) => ['users', 'list', view] as const;
export const userKey = (userId: string) => ['users', 'one', userId] as const;

/**
 * The view from the URL: filters are kept there so a view can be shared. The range is the
 * Runs page's `from`/`to`, so a user's sums and their runs there read the same runs.
 * @example usersViewFromParams(new URLSearchParams('agent=support-bot&q=dana')) // { agent: ['support-bot'], from: '', to: '', q: 'dana' }
 */
export function usersViewFromParams(p: URLSearchParams): UsersView {
  return {
    agent: listParam(p.get('agent')),
    from: p.get('from') ?? '',
    to: p.get('to') ?? '',
    // as the search field applies it: a link's spaces around the text are not part of it
    q: p.get('q')?.trim() ?? '',
  };
}

/**
 * The `GET /users` filters of a view: the range in epoch ms, a `To` picked to the minute
 * reaching through that minute, as the Runs page reads it, and the search as `q`.
 * @example userListParams({ agent: ['a', 'b'], from: '', to: '', q: 'dana' }) // { agent_id: 'a,b', from: undefined, to: undefined, q: 'dana' }
 */
export function userListParams(view: UsersView) {
  return {
    agent_id: view.agent.join(',') || undefined,
    from: localToMs(view.from),
    to: throughMinute(localToMs(view.to)),
    q: view.q || undefined,
  };
}

/**
 * A user's page in the dashboard; the id is any text (often an email), so it is
 * percent-encoded.
 * @example userPath('dana/ops@example.com') // '/users/dana%2Fops%40example.com'
 */
export function userPath(userId: string): string {
  return itemPath('/users', userId);
}

/**
 * The user id a `/users/<id>` path names (see `itemIdFromPath`); `undefined` for another path
 * or a malformed encoding.
 * @example userIdFromPath('/users/dana%40example.com') // 'dana@example.com'
 */
export function userIdFromPath(pathname: string): string | undefined {
  return itemIdFromPath('/users', pathname);
}

/**
 * Users, the latest active first, each summed over the runs the view keeps, a page at a time;
 * every page ("Load more") asks with the same filters and search as the first.
 */
export const userListQuery = (view: UsersView) =>
  infiniteQueryOptions({
    queryKey: userListKey(view),
    queryFn: ({ signal, pageParam }) =>
      api<UserList>('GET', '/users', {
        query: { ...userListParams(view), limit: USERS_PAGE, cursor: pageParam },
        signal,
      }),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (last) => (last.has_more ? (last.next_cursor ?? undefined) : undefined),
    placeholderData: keepPreviousData,
  });

/** One user summed over all its runs; a 404 when no run names it. */
export const userQuery = (userId: string) =>
  queryOptions({
    queryKey: userKey(userId),
    queryFn: ({ signal }) =>
      api<UserSummary>('GET', `/users/${encodeURIComponent(userId)}`, { signal }),
  });
