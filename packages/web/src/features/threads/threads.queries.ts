import { infiniteQueryOptions, keepPreviousData, queryOptions } from '@tanstack/react-query';
import type { RunList, ThreadList, ThreadSummary } from '@runlog/core';
import { api } from '../../lib/api';
import { itemIdFromPath, itemPath, listParam } from '../../lib/params';

/** How many threads a page of the Threads list holds. */
export const THREADS_PAGE = 50;
/** How many of a thread's runs (turns) one page reads, the newest first. */
export const THREAD_RUNS_PAGE = 50;

/** The Threads page's filters as kept in the URL. */
export interface ThreadsView {
  agent: string[];
  user: string;
  /** Text the thread ids hold, any case ('' for every thread). */
  q: string;
}

export const threadListKey = (view: ThreadsView) => ['threads', 'list', view] as const;
export const threadKey = (threadId: string) => ['threads', 'one', threadId] as const;
export const threadRunsKey = (threadId: string) => ['threads', 'runs', threadId] as const;

/**
 * The view from the URL: filters are kept there so a view can be shared.
 * @example threadsViewFromParams(new URLSearchParams('user_id=dana&q=refund')) // { agent: [], user: 'dana', q: 'refund' }
 */
export function threadsViewFromParams(p: URLSearchParams): ThreadsView {
  return {
    agent: listParam(p.get('agent')),
    user: p.get('user_id') ?? '',
    // as the search field applies it: a link's spaces around the text are not part of it
    q: p.get('q')?.trim() ?? '',
  };
}

/**
 * The `GET /threads` filters of a view; an empty one is left out of the request.
 * @example threadListParams({ agent: ['a', 'b'], user: '', q: 'refund' }) // { agent_id: 'a,b', user_id: undefined, q: 'refund' }
 */
export function threadListParams(view: ThreadsView) {
  return {
    agent_id: view.agent.join(',') || undefined,
    user_id: view.user || undefined,
    q: view.q || undefined,
  };
}

/**
 * A thread's page in the dashboard; the id is any text, so it is percent-encoded.
 * @example threadPath('support/42') // '/threads/support%2F42'
 */
export function threadPath(threadId: string): string {
  return itemPath('/threads', threadId);
}

/**
 * The thread id a `/threads/<id>` path names (see `itemIdFromPath`); `undefined` for another
 * path or a malformed encoding.
 * @example threadIdFromPath('/threads/support%2F42') // 'support/42'
 */
export function threadIdFromPath(pathname: string): string | undefined {
  return itemIdFromPath('/threads', pathname);
}

/**
 * Threads, the latest active first, a page at a time ("Load more"); every page asks with the
 * same filters and search as the first.
 */
export const threadListQuery = (view: ThreadsView) =>
  infiniteQueryOptions({
    queryKey: threadListKey(view),
    queryFn: ({ signal, pageParam }) =>
      api<ThreadList>('GET', '/threads', {
        query: { ...threadListParams(view), limit: THREADS_PAGE, cursor: pageParam },
        signal,
      }),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (last) => (last.has_more ? (last.next_cursor ?? undefined) : undefined),
    placeholderData: keepPreviousData,
  });

/** One thread summed over all its runs. */
export const threadQuery = (threadId: string) =>
  queryOptions({
    queryKey: threadKey(threadId),
    queryFn: ({ signal }) =>
      api<ThreadSummary>('GET', `/threads/${encodeURIComponent(threadId)}`, { signal }),
  });

/**
 * A thread's runs, the newest first a page at a time, as `GET /runs?thread_id=` lists them;
 * the page shows them reversed, and "Load earlier turns" reads the next page. Live updates
 * fold into it (see threads.cache.ts).
 */
export const threadRunsQuery = (threadId: string) =>
  infiniteQueryOptions({
    queryKey: threadRunsKey(threadId),
    queryFn: ({ signal, pageParam }) =>
      api<RunList>('GET', '/runs', {
        query: { thread_id: threadId, limit: THREAD_RUNS_PAGE, cursor: pageParam },
        signal,
      }),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (last) => (last.has_more ? (last.next_cursor ?? undefined) : undefined),
  });
