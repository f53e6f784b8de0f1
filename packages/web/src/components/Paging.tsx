/** What `LoadedCount` and `LoadMore` read of an infinite query. */
interface Pages {
  hasNextPage: boolean;
  isFetchingNextPage: boolean;
  fetchNextPage: () => Promise<unknown>;
}

/** How many of a list's items are loaded, "+" while more are to load (beside a heading). */
export function LoadedCount({ count, query, noun }: { count: number; query: Pages; noun: string }) {
  return (
    <span className="count muted" title={query.hasNextPage ? `More ${noun} to load` : undefined}>
      {count.toLocaleString()}
      {query.hasNextPage ? '+' : ''}
    </span>
  );
}

/** A list's next page on demand, while it has one. */
export function LoadMore({ query, noun }: { query: Pages; noun: string }) {
  if (!query.hasNextPage) return null;
  return (
    <nav className="pager" aria-label={`More ${noun}`}>
      <button
        type="button"
        className="btn btn-small"
        aria-disabled={query.isFetchingNextPage || undefined}
        onClick={() => {
          if (!query.isFetchingNextPage) void query.fetchNextPage();
        }}
      >
        {query.isFetchingNextPage ? 'Loading…' : 'Load more'}
      </button>
    </nav>
  );
}
