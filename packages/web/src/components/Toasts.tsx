import { useSyncExternalStore } from 'react';
import { Link } from 'react-router-dom';

interface Toast {
  id: number;
  kind: 'info' | 'error';
  text: string;
  /** A page the message leads to ("Open" the run a Retry queued). */
  link?: { to: string; label: string };
  /** Something more to see ("Details" of a bulk Retry): the toast stays while it is open. */
  action?: { label: string; onClick: () => void };
}

let toasts: Toast[] = [];
let nextId = 1;
const listeners = new Set<() => void>();
const emit = () => listeners.forEach((l) => l());

/**
 * Shows a short message at the bottom of the screen (and to screen readers). With
 * `persist`, it stays until dismissed: a message the user has to act on (which runs of a
 * bulk Retry failed) must not go away before a keyboard or screen reader user reaches it.
 * @example toast('Retry of 3 runs: queued 3', 'info', undefined, { action: { label: 'Details', onClick: open } })
 */
export function toast(
  text: string,
  kind: Toast['kind'] = 'info',
  link?: Toast['link'],
  more: { action?: Toast['action']; persist?: boolean } = {},
): void {
  const id = nextId++;
  const { action, persist = false } = more;
  toasts = [
    ...toasts,
    { id, kind, text, ...(link ? { link } : {}), ...(action ? { action } : {}) },
  ].slice(-4);
  emit();
  if (persist) return;
  // a message with a link or an action stays longer: time to reach it
  setTimeout(() => dismiss(id), kind === 'error' || link || action ? 8000 : 4000);
}

function dismiss(id: number) {
  toasts = toasts.filter((t) => t.id !== id);
  emit();
}

/**
 * Copies `text`, saying `copied` in a toast, or why it could not: the clipboard API exists
 * only on https and localhost (over plain http to another host there is none at all).
 */
export async function copyText(text: string, copied: string): Promise<void> {
  try {
    await navigator.clipboard.writeText(text);
    toast(copied);
  } catch {
    toast('Copying needs https (or localhost) and clipboard permission', 'error');
  }
}

export function Toasts() {
  const list = useSyncExternalStore(
    (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    () => toasts,
  );
  return (
    <div className="toasts" aria-live="polite" role="status">
      {list.map((t) => (
        <div key={t.id} className={`toast toast-${t.kind}`}>
          <span>{t.text}</span>
          {t.link && (
            <Link to={t.link.to} className="toast-link" onClick={() => dismiss(t.id)}>
              {t.link.label}
            </Link>
          )}
          {t.action && (
            // the toast stays: a dialog it opens gives the focus back to this button
            <button type="button" className="toast-link link-btn" onClick={t.action.onClick}>
              {t.action.label}
            </button>
          )}
          <button
            type="button"
            className="icon-btn"
            aria-label="Dismiss"
            onClick={() => dismiss(t.id)}
          >
            ×
          </button>
        </div>
      ))}
    </div>
  );
}
