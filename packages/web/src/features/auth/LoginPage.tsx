import { useEffect, useRef, useState, type FormEvent } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import { useLocation, useNavigate } from 'react-router-dom';
import { errorMessage } from '../../lib/api';
import { useDocumentTitle } from '../../app/page';
import { login, sessionQuery, type Session } from './auth.queries';

/**
 * `/login`: the printed link (`/login#key=...`) logs in at once; otherwise a key form. A link
 * opened while logged in asks first: another site could send you one with its own key, and
 * what you then record would go to its project.
 */
export function LoginPage() {
  const client = useQueryClient();
  const navigate = useNavigate();
  const [key, setKey] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const { hash, state } = useLocation();
  const tried = useRef<string | null>(null);
  useDocumentTitle('Log in');
  // a link's key waiting for a yes, and the session it would replace
  // (`current` undefined: whether someone is logged in could not be told)
  const [linkKey, setLinkKey] = useState<{ key: string; current?: Session } | null>(null);
  // where the user was going when the app sent them here (a path of this app, never a URL)
  const from = (state as { from?: unknown } | null)?.from;
  const target = typeof from === 'string' && /^\/(?!\/)/.test(from) ? from : '/';

  const submit = async (value: string) => {
    setBusy(true);
    setError(null);
    try {
      const session = await login(value.trim());
      client.clear();
      client.setQueryData(['session'], session);
      void navigate(target, { replace: true });
    } catch (err) {
      setError(errorMessage(err));
      setBusy(false);
    }
  };

  // follows the hash, not just the first render: after Log out this page stays mounted, and
  // opening a printed link in the same tab changes only the hash
  useEffect(() => {
    const m = /(?:^#|&)key=([^&]+)/.exec(hash);
    if (!m?.[1] || tried.current === m[1]) return;
    tried.current = m[1];
    let fromLink = m[1];
    try {
      fromLink = decodeURIComponent(fromLink);
    } catch {
      // a link cut or mangled on its way (`%E0%A4%A`): tried as it is, and refused as a key
    }
    // the key must not linger in the address bar or history
    history.replaceState(null, '', location.pathname + location.search);
    void (async () => {
      // no session (401) logs in at once; one, or no answer at all, asks first
      const current = await client.fetchQuery(sessionQuery()).catch(() => undefined);
      if (current === null) await submit(fromLink);
      else setLinkKey({ key: fromLink, ...(current ? { current } : {}) });
    })();
  }, [hash]);

  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    if (key.trim()) void submit(key);
  };

  if (linkKey) {
    const { current } = linkKey;
    return (
      <main className="login" id="main">
        <section className="login-card" aria-labelledby="switch-title">
          <div className="brand brand-large">
            <span className="brand-mark" aria-hidden="true" />
            Runlog
          </div>
          <h1 id="switch-title">Switch API key?</h1>
          <p>
            {current ? (
              <>
                You are logged in to project{' '}
                <strong className="project-name truncate" title={current.project_id}>
                  {current.project_name}
                </strong>{' '}
                ({current.scope}).{' '}
              </>
            ) : (
              'You may be logged in already. '
            )}
            This link logs in with the API key it carries, and what you do next goes to that
            key&apos;s project. Switch only if you opened a link you trust.
          </p>
          {error ? (
            <p className="field-error" role="alert">
              {error}
            </p>
          ) : null}
          <div className="login-actions">
            <button
              type="button"
              className="btn btn-primary"
              disabled={busy}
              title={
                current ? `Project ${current.project_name} (id ${current.project_id})` : undefined
              }
              onClick={() => void navigate(target, { replace: true })}
            >
              {current ? (
                <span className="truncate">Stay in {current.project_name}</span>
              ) : (
                'Keep my session'
              )}
            </button>
            <button
              type="button"
              className="btn"
              disabled={busy}
              onClick={() => void submit(linkKey.key)}
            >
              {busy ? 'Logging in…' : "Log in with the link's key"}
            </button>
          </div>
        </section>
      </main>
    );
  }

  return (
    <main className="login" id="main">
      <form className="login-card" onSubmit={onSubmit} aria-labelledby="login-title">
        <div className="brand brand-large">
          <span className="brand-mark" aria-hidden="true" />
          Runlog
        </div>
        <h1 id="login-title">Log in</h1>
        <p className="muted">
          Open the link the server printed when it started, or paste an API key.
        </p>
        <label htmlFor="login-key">API key</label>
        <input
          id="login-key"
          type="password"
          autoComplete="off"
          spellCheck={false}
          value={key}
          onChange={(e) => setKey(e.target.value)}
          placeholder="rl_…"
          aria-invalid={error ? true : undefined}
          aria-describedby={error ? 'login-error' : undefined}
          autoFocus
        />
        {error ? (
          <p id="login-error" className="field-error" role="alert">
            {error}
          </p>
        ) : null}
        <button type="submit" className="btn btn-primary" disabled={busy || !key.trim()}>
          {busy ? 'Logging in…' : 'Log in'}
        </button>
      </form>
    </main>
  );
}
