import { useEffect, useRef, useState, type FormEvent } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import { useLocation, useNavigate } from 'react-router-dom';
import { errorMessage } from '../../lib/api';
import { login } from './auth.queries';

/** `/login`: the printed link (`/login#key=...`) logs in at once; otherwise a key form. */
export function LoginPage() {
  const client = useQueryClient();
  const navigate = useNavigate();
  const [key, setKey] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const { hash, state } = useLocation();
  const tried = useRef<string | null>(null);
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
    const fromLink = decodeURIComponent(m[1]);
    // the key must not linger in the address bar or history
    history.replaceState(null, '', location.pathname + location.search);
    void submit(fromLink);
  }, [hash]);

  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    if (key.trim()) void submit(key);
  };

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
