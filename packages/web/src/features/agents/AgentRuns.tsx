import { useMemo, useState } from 'react';
import { useQuery } from '@tanstack/react-query';
import { Link } from 'react-router-dom';
import { agentBudget, type AgentSummary } from '@runlog/core';
import { Empty, ErrorBox, Loading, RefreshFailed } from '../../components/States';
import { useTopics } from '../../app/live';
import { RunRow, RunTableHead } from '../runs/RunRows';
import { BulkBar } from '../runs/BulkBar';
import { plural } from '../runs/bulk';
import { useRunSelection } from '../runs/useRunSelection';
import { agentRunsQuery } from './agents.queries';
import { RunNowButton } from './RunNowDialog';
import { AgentSettingsButton } from './AgentSettingsDialog';
import { PauseScheduleButton } from './PauseScheduleButton';
import { PauseAgentButton } from './PauseAgentButton';

const COLLAPSED = 5;

/** An expanded agent: its 20 most recent runs, live, 5 shown until "Show all". */
export function AgentRuns({ agent, id }: { agent: AgentSummary; id: string }) {
  const agentId = agent.id;
  const runs = useQuery(agentRunsQuery(agentId));
  const [all, setAll] = useState(false);
  useTopics([`agent:${agentId}`]);
  const list = runs.data?.runs;
  const held = useMemo(() => list ?? [], [list]);
  const shown = useMemo(() => (all ? held : held.slice(0, COLLAPSED)), [all, held]);
  // one list, unfiltered: the selection lasts as long as the panel is open, and a selected run
  // folded out of view by newer ones still follows the live state the panel holds of it
  const selection = useRunSelection(agentId, shown, held);
  return (
    <div className="agent-panel" id={id} role="region" aria-label={`Recent runs of ${agentId}`}>
      <div className="panel-bar">
        <span className="panel-title">Recent runs</span>
        <div className="panel-actions">
          <Link
            className="btn btn-small btn-ghost"
            to={`/runs?agent=${encodeURIComponent(agentId)}`}
          >
            All runs
          </Link>
          <Link
            className="btn btn-small btn-ghost"
            to={`/stats?agent=${encodeURIComponent(agentId)}`}
          >
            Stats
          </Link>
          <PauseAgentButton agent={agent} />
          <PauseScheduleButton agent={agent} />
          <AgentSettingsButton agent={agent} />
          <RunNowButton
            agentId={agentId}
            agentName={agent.name}
            workerSeenAt={agent.worker_seen_at}
            pausedAt={agent.paused_at}
            budget={agentBudget(agent)}
          />
        </div>
      </div>
      <RefreshFailed query={runs} />
      {runs.isPending ? (
        <Loading label="Loading runs…" rows={3} />
      ) : runs.isError && runs.data === undefined ? (
        <ErrorBox error={runs.error} onRetry={() => void runs.refetch()} />
      ) : !list || list.length === 0 ? (
        <Empty title="No runs yet">Use Run now, or record runs with the SDK.</Empty>
      ) : (
        <>
          <BulkBar selection={selection} where="not shown" label={`Selected runs of ${agentId}`} />
          <div className="table-wrap">
            <table className="runs-table compact">
              <caption className="sr-only">Latest runs of {agentId}, newest first</caption>
              <RunTableHead
                select={selection.head(
                  `Select the ${plural(shown.length, 'run')} shown of ${agentId}`,
                )}
              />
              <tbody>
                {shown.map((run) => (
                  <RunRow key={run.id} run={run} select={selection.row(run)} />
                ))}
              </tbody>
            </table>
          </div>
          {list.length > COLLAPSED ? (
            <button
              type="button"
              className="link-btn show-all"
              aria-expanded={all}
              onClick={() => setAll((a) => !a)}
            >
              {all ? 'Show fewer' : `Show all ${list.length}`}
            </button>
          ) : null}
        </>
      )}
    </div>
  );
}
