import { useQuery } from '@tanstack/react-query';
import { Link } from 'react-router-dom';
import type { Worker } from '@runlog/core';
import { Empty, ErrorBox, Loading, RefreshFailed } from '../../components/States';
import { RelativeTime } from '../../components/Time';
import { useTopics } from '../../app/live';
import { useDocumentTitle } from '../../app/page';
import { shortId } from '../../lib/format';
import { runPath } from '../runs/RunActions';
import { workersQuery } from './workers.queries';
import { agentPath } from '../agents/agents.queries';

/** Runs listed under a worker before "and N more". */
const RUNS_SHOWN = 5;

function WorkerStatus({ worker }: { worker: Worker }) {
  return worker.online ? (
    <span className="worker-status worker-online">
      <span className="dot" aria-hidden="true" /> Online
    </span>
  ) : (
    <span className="worker-status worker-quiet" title="Nothing from it for over 90 s">
      <span className="dot" aria-hidden="true" /> Quiet
    </span>
  );
}

/** The runs a worker holds now, linked, the oldest first. */
function HeldRuns({ worker }: { worker: Worker }) {
  if (worker.running === 0) return <span className="muted">idle</span>;
  const shown = worker.running_runs.slice(0, RUNS_SHOWN);
  const more = worker.running - shown.length;
  return (
    <span className="held-runs">
      <strong>{worker.running.toLocaleString()}</strong>
      {': '}
      {shown.map((r, i) => (
        <span key={r.id}>
          {i > 0 ? ', ' : null}
          <Link className="mono" to={runPath(r)} title={`${r.id} (${r.agent_id})`}>
            {shortId(r.id)}
          </Link>
        </span>
      ))}
      {more > 0 ? <span className="muted"> and {more.toLocaleString()} more</span> : null}
    </span>
  );
}

/**
 * The workers that asked for runs in the last 24 hours (claims and heartbeats): which agents
 * each serves, whether it is still there, and the runs it holds now. Queued runs start only
 * when one of these asks for their agent.
 */
export function WorkersPage() {
  const workers = useQuery(workersQuery());
  // a run claimed, ended or released changes what a worker holds: the page hears it live
  useTopics(['runs']);
  useDocumentTitle('Workers');
  const list = workers.data?.workers;
  const online = list?.filter((w) => w.online).length ?? 0;
  return (
    <div>
      <div className="page-head">
        <h1 tabIndex={-1}>Workers</h1>
        {list && list.length > 0 ? (
          <span className="count muted">
            {online.toLocaleString()} online of {list.length.toLocaleString()} seen in 24 h
          </span>
        ) : null}
      </div>
      <RefreshFailed query={workers} />
      {workers.isPending ? (
        <Loading label="Loading workers…" rows={4} />
      ) : workers.isError && workers.data === undefined ? (
        <ErrorBox error={workers.error} onRetry={() => void workers.refetch()} />
      ) : !list || list.length === 0 ? (
        <Empty title="No worker running">
          Runs queued from the dashboard, the API, schedules and Retry start when a worker asks for
          their agent: <span className="mono">runlog.worker(…)</span> in the SDK, or{' '}
          <span className="mono">POST /api/v1/workers/claim</span>. A worker that stops leaves this
          list; one that died stays for 24 hours.
        </Empty>
      ) : (
        <div className="table-wrap">
          <table className="data-table workers-table">
            <caption className="sr-only">Workers, online first, the most lately seen first</caption>
            <thead>
              <tr>
                <th scope="col">Worker</th>
                <th scope="col">Status</th>
                <th scope="col">Agents</th>
                <th scope="col">Running</th>
                <th scope="col" className="hide-narrow">
                  Last seen
                </th>
                <th scope="col" className="hide-narrow">
                  First seen
                </th>
              </tr>
            </thead>
            <tbody>
              {list.map((w) => (
                <tr key={w.id} data-worker-id={w.id}>
                  <td className="worker-id mono" title={w.id}>
                    {w.id}
                  </td>
                  <td>
                    <WorkerStatus worker={w} />
                  </td>
                  <td className="worker-agents">
                    {w.agents.length === 0 ? (
                      <span className="muted">—</span>
                    ) : (
                      w.agents.map((a, i) => (
                        <span key={a}>
                          {i > 0 ? ', ' : null}
                          <Link to={agentPath(a)}>{a}</Link>
                        </span>
                      ))
                    )}
                  </td>
                  <td>
                    <HeldRuns worker={w} />
                  </td>
                  <td className="hide-narrow">
                    <RelativeTime iso={w.last_seen_at} />
                  </td>
                  <td className="hide-narrow">
                    <RelativeTime iso={w.first_seen_at} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}
