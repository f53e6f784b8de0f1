import type { ReactNode } from 'react';
import { errorMessage } from '../lib/api';

export function Loading({ label = 'Loading…', rows = 3 }: { label?: string; rows?: number }) {
  return (
    <div className="loading" role="status" aria-live="polite">
      <span className="sr-only">{label}</span>
      {Array.from({ length: rows }, (_, i) => (
        <div key={i} className="skeleton" aria-hidden="true" />
      ))}
    </div>
  );
}

/** Nothing to show; `heading` when it is the whole page (its title is then the page's h1). */
export function Empty({
  title,
  children,
  heading = false,
}: {
  title: string;
  children?: ReactNode;
  heading?: boolean;
}) {
  return (
    <div className="empty">
      {heading ? (
        <h1 className="empty-title" tabIndex={-1}>
          {title}
        </h1>
      ) : (
        <p className="empty-title">{title}</p>
      )}
      {children ? <div className="empty-body">{children}</div> : null}
    </div>
  );
}

export function ErrorBox({ error, onRetry }: { error: unknown; onRetry?: () => void }) {
  return (
    <div className="error-box" role="alert">
      <span>{errorMessage(error)}</span>
      {onRetry ? (
        <button type="button" className="btn btn-small" onClick={onRetry}>
          Try again
        </button>
      ) : null}
    </div>
  );
}

/**
 * A refresh that failed while what was loaded before is on screen (the server restarting,
 * the network away for a moment): said above that data, which stays, instead of taking its
 * place. Nothing while the data is current.
 * @example <RefreshFailed query={runs} />
 */
export function RefreshFailed({
  query,
}: {
  query: { isError: boolean; data: unknown; error: unknown; refetch: () => unknown };
}) {
  if (!query.isError || query.data === undefined) return null;
  return (
    <div className="error-box refresh-failed" role="alert">
      <span>Could not refresh, showing what was loaded before: {errorMessage(query.error)}</span>
      <button type="button" className="btn btn-small" onClick={() => void query.refetch()}>
        Try again
      </button>
    </div>
  );
}
