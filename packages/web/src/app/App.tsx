import { useEffect } from 'react';
import { QueryClient, QueryClientProvider, useQueryClient } from '@tanstack/react-query';
import { BrowserRouter, Link, Navigate, Route, Routes, useParams } from 'react-router-dom';
import { ApiError, onProjectChanged, onUnauthorized } from '../lib/api';
import { Toasts, toast } from '../components/Toasts';
import { Empty } from '../components/States';
import { LoginPage } from '../features/auth/LoginPage';
import { AgentsPage } from '../features/agents/AgentsPage';
import { RunsPage } from '../features/runs/RunsPage';
import { BulkReportDialog } from '../features/runs/BulkReport';
import { RetryConfirmDialog } from '../features/runs/RetryConfirm';
import { RunDetailPage } from '../features/run-detail/RunDetailPage';
import { RunByIdPage } from '../features/run-detail/RunByIdPage';
import { StatsPage } from '../features/stats/StatsPage';
import { WorkersPage } from '../features/workers/WorkersPage';
import { ComparePage } from '../features/run-detail/ComparePage';
import { SettingsPage } from '../features/settings/SettingsPage';
import { ThreadsPage } from '../features/threads/ThreadsPage';
import { ThreadPage } from '../features/threads/ThreadPage';
import { UsersPage } from '../features/users/UsersPage';
import { UserPage } from '../features/users/UserPage';
import { Layout } from './Layout';
import { useDocumentTitle } from './page';

export function createQueryClient(): QueryClient {
  return new QueryClient({
    defaultOptions: {
      queries: {
        // live updates keep data fresh; refetch on focus only after a while
        staleTime: 30_000,
        retry: (count, err) =>
          !(err instanceof ApiError && err.status >= 400 && err.status < 500) && count < 2,
      },
    },
  });
}

/** Marks a reload made because another tab logged in to another project, to say so after it. */
const SWITCHED = 'runlog.projectSwitched';

/**
 * Drops the session on any 401, which sends the user to the login page; reloads the page when
 * the browser's session is now another project's (a login in another tab), so that nothing
 * cached from the one shown before is mixed with it.
 */
function Session() {
  const client = useQueryClient();
  useEffect(() => {
    if (sessionStorage.getItem(SWITCHED)) {
      sessionStorage.removeItem(SWITCHED);
      toast('This browser logged in to another project in another tab: this tab now shows it.');
    }
    const offUnauthorized = onUnauthorized(() => {
      if (client.getQueryData(['session'])) client.setQueryData(['session'], null);
    });
    let reloading = false;
    const offChanged = onProjectChanged(() => {
      if (reloading) return;
      reloading = true;
      sessionStorage.setItem(SWITCHED, '1');
      location.reload();
    });
    return () => {
      offUnauthorized();
      offChanged();
    };
  }, [client]);
  return null;
}

function NotFound() {
  useDocumentTitle('Page not found');
  return (
    <Empty title="Page not found" heading>
      <Link to="/">Back to agents</Link>
    </Empty>
  );
}

/**
 * `/agents/:agentId` and `/agents/:agentId/runs`: the addresses above a run's page (what is left
 * of its address once its end is cut off), which led to "Page not found". The agent opens
 * where its breadcrumb leads, in the agents list; its runs in the Runs list.
 */
function AgentAddress({ runs = false }: { runs?: boolean }) {
  const { agentId = '' } = useParams();
  const agent = `agent=${encodeURIComponent(agentId)}`;
  return <Navigate to={runs ? `/runs?${agent}` : `/?${agent}`} replace />;
}

export function App({ client }: { client: QueryClient }) {
  return (
    <QueryClientProvider client={client}>
      <BrowserRouter>
        <Session />
        <Routes>
          <Route path="/login" element={<LoginPage />} />
          <Route element={<Layout />}>
            <Route index element={<AgentsPage />} />
            <Route path="runs" element={<RunsPage />} />
            <Route path="runs/:runId" element={<RunByIdPage />} />
            <Route path="agents" element={<Navigate to="/" replace />} />
            <Route path="agents/:agentId" element={<AgentAddress />} />
            <Route path="agents/:agentId/runs" element={<AgentAddress runs />} />
            <Route path="agents/:agentId/runs/:runId" element={<RunDetailPage />} />
            <Route path="threads" element={<ThreadsPage />} />
            <Route path="threads/:threadId" element={<ThreadPage />} />
            <Route path="users" element={<UsersPage />} />
            <Route path="users/:userId" element={<UserPage />} />
            <Route path="workers" element={<WorkersPage />} />
            <Route path="compare/:a/:b" element={<ComparePage />} />
            <Route path="stats" element={<StatsPage />} />
            <Route path="settings" element={<SettingsPage />} />
            <Route path="*" element={<NotFound />} />
          </Route>
        </Routes>
        <Toasts />
        <BulkReportDialog />
        <RetryConfirmDialog />
      </BrowserRouter>
    </QueryClientProvider>
  );
}
