import { useQuery, useQueryClient } from '@tanstack/react-query';
import {
  Link,
  NavLink,
  Navigate,
  Outlet,
  useLocation,
  useNavigate,
  useNavigationType,
} from 'react-router-dom';
import { sessionQuery, logout } from '../features/auth/auth.queries';
import { ErrorBox, Loading } from '../components/States';
import { toast } from '../components/Toasts';
import { errorMessage } from '../lib/api';
import { connectLive, useConnectionState } from './live';
import { useEffect, useRef, useState } from 'react';
import { useFocusHeadingOnNavigate } from './page';
import { effectiveTheme, setTheme, useTheme } from './theme';

function ThemeToggle() {
  const choice = useTheme();
  const current = effectiveTheme(choice);
  const next = current === 'dark' ? 'light' : 'dark';
  return (
    <button
      type="button"
      className="icon-btn"
      aria-label={`Switch to ${next} theme`}
      title={`Switch to ${next} theme`}
      onClick={() => setTheme(next)}
    >
      <span aria-hidden="true">{current === 'dark' ? '☀' : '☾'}</span>
    </button>
  );
}

function ConnectionBadge() {
  const state = useConnectionState();
  if (state === 'open') {
    return (
      <span className="conn conn-open" title="Live updates connected">
        <span className="dot" aria-hidden="true" />
        <span className="conn-text">Live</span>
      </span>
    );
  }
  return (
    <span
      className={`conn conn-lost${state === 'reconnecting' ? ' conn-reconnecting' : ''}`}
      title="Live updates are reconnecting"
    >
      <span className="dot" aria-hidden="true" />
      <span className="conn-text">
        {state === 'reconnecting' ? 'Reconnecting…' : 'Connecting…'}
      </span>
    </span>
  );
}

/**
 * Says, politely, when live updates are lost and when they are back. One element that stays:
 * the badge is drawn anew on each change, and a live region that appears is not read out.
 */
function ConnectionAnnouncer() {
  const state = useConnectionState();
  const [message, setMessage] = useState('');
  const last = useRef(state);
  useEffect(() => {
    const was = last.current;
    last.current = state;
    if (state === 'reconnecting' && was !== 'reconnecting')
      setMessage('Live updates lost. Reconnecting…');
    else if (state === 'open' && was === 'reconnecting') setMessage('Live again');
  }, [state]);
  return (
    <span className="sr-only" role="status" data-testid="connection-announcer">
      {message}
    </span>
  );
}

/**
 * Settings as a phone's header draws it: seven sections do not fit a 320 px row as words, and
 * Settings is the one visited least. Drawn, not typed, as the status icons are.
 */
function SettingsGlyph() {
  return (
    <svg
      className="nav-icon"
      viewBox="0 0 16 16"
      width="16"
      height="16"
      aria-hidden="true"
      focusable="false"
    >
      <path
        d="M2 4h12M2 8h12M2 12h12"
        stroke="currentColor"
        strokeWidth="1.5"
        strokeLinecap="round"
      />
      <circle cx="5.5" cy="4" r="2" fill="currentColor" />
      <circle cx="10.5" cy="8" r="2" fill="currentColor" />
      <circle cx="6" cy="12" r="2" fill="currentColor" />
    </svg>
  );
}

/**
 * The Agents tab: current on the agents list and on every page under `/agents/` (a run's page
 * lives at `/agents/:agentId/runs/:runId`, under the agent its breadcrumb names), where
 * NavLink, matching `/` alone, left no tab marked.
 */
function AgentsTab({ pathname }: { pathname: string }) {
  const home = pathname === '/';
  const within = home || pathname.startsWith('/agents/');
  return (
    <Link
      to="/"
      className={within ? 'active' : undefined}
      aria-current={home ? 'page' : within ? 'location' : undefined}
    >
      Agents
    </Link>
  );
}

/** Live updates run while someone is logged in. */
function Live() {
  const client = useQueryClient();
  useEffect(() => connectLive(client), [client]);
  return null;
}

/** The signed-in shell: header with navigation, theme, connection state and Log out. */
export function Layout() {
  const session = useQuery(sessionQuery());
  const client = useQueryClient();
  const navigate = useNavigate();
  const location = useLocation();
  useFocusHeadingOnNavigate(location.pathname, useNavigationType() === 'REPLACE');

  if (session.isPending) return <Loading label="Checking your session…" />;
  if (session.isError)
    return (
      <main className="page" id="main">
        <ErrorBox error={session.error} onRetry={() => void session.refetch()} />
      </main>
    );
  if (!session.data)
    return <Navigate to="/login" replace state={{ from: location.pathname + location.search }} />;

  const onLogout = async () => {
    try {
      await logout();
    } catch (err) {
      toast(`Log out failed: ${errorMessage(err)}`, 'error');
      return;
    }
    client.clear();
    client.setQueryData(['session'], null);
    void navigate('/login', { replace: true });
  };

  return (
    <>
      <Live />
      <a href="#main" className="skip-link">
        Skip to content
      </a>
      <header className="header">
        <div className="header-inner">
          <NavLink to="/" className="brand" aria-label="Runlog home">
            <span className="brand-mark" aria-hidden="true" />
            <span className="brand-text">Runlog</span>
          </NavLink>
          <nav aria-label="Main" className="nav">
            <AgentsTab pathname={location.pathname} />
            <NavLink to="/runs">Runs</NavLink>
            <NavLink to="/threads">Threads</NavLink>
            <NavLink to="/users">Users</NavLink>
            <NavLink to="/workers">Workers</NavLink>
            <NavLink to="/stats">Stats</NavLink>
            <NavLink to="/settings" className="nav-settings">
              <span className="nav-label">Settings</span>
              <SettingsGlyph />
            </NavLink>
          </nav>
          <div className="header-end">
            <ConnectionBadge />
            <ConnectionAnnouncer />
            <span
              className="project muted truncate"
              title={`Project ${session.data.project_name} (id ${session.data.project_id}) · ${session.data.scope} scope`}
            >
              {session.data.project_name}
            </span>
            <ThemeToggle />
            <button
              type="button"
              className="btn btn-small btn-ghost"
              onClick={() => void onLogout()}
            >
              Log out
            </button>
          </div>
        </div>
      </header>
      <main className="page" id="main" tabIndex={-1}>
        <Outlet />
      </main>
    </>
  );
}
