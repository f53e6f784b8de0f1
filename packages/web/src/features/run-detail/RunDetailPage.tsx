import { useQuery } from '@tanstack/react-query';
import { Link, useNavigate, useParams } from 'react-router-dom';
import type { Run } from '@runlog/core';
import { ApiError } from '../../lib/api';
import { Empty, ErrorBox, Loading } from '../../components/States';
import { StatusBadge } from '../../components/Status';
import { RelativeTime, RunDuration } from '../../components/Time';
import { JsonViewer } from '../../components/JsonViewer';
import { toast } from '../../components/Toasts';
import { TRIGGER_LABELS, formatExact, formatTokens, isActive, shortId } from '../../lib/format';
import { useTopics } from '../../app/live';
import { agentRunsQuery } from '../agents/agents.queries';
import { retriesQuery } from '../runs/runs.queries';
import { runPath, useRunActions } from '../runs/RunActions';
import { Usage } from '../runs/RunRows';
import { needsScope, useCan } from '../auth/useCan';
import { runDetailQuery } from './runDetail.queries';
import { Timeline } from './Timeline';

function Fact({ label, children }: { label: string; children: React.ReactNode }) {
  return (
    <div>
      <dt>{label}</dt>
      <dd>{children ?? <span className="muted">—</span>}</dd>
    </div>
  );
}

function RunLink({ agentId, runId }: { agentId: string; runId: string }) {
  return (
    <Link className="mono" to={runPath({ agent_id: agentId, id: runId })} title={runId}>
      {shortId(runId)}
    </Link>
  );
}

/** Runs that retried this one, newest first; a retry's run_update on the agent topic refreshes them. */
function useRetries(agentId: string, runId: string): Run[] {
  const recent = useQuery(agentRunsQuery(agentId));
  const latest = recent.data?.runs
    .filter((r) => r.retry_of === runId)
    .map((r) => r.id)
    .join(',');
  const retries = useQuery(retriesQuery(runId, latest ?? ''));
  return retries.data?.runs ?? [];
}

/** `/agents/:agentId/runs/:runId`: everything about one run, live. */
export function RunDetailPage() {
  const { agentId = '', runId = '' } = useParams();
  const detail = useQuery(runDetailQuery(runId));
  useTopics([`run:${runId}`, `agent:${agentId}`]);
  const { stop, retry } = useRunActions();
  const navigate = useNavigate();
  const retries = useRetries(agentId, runId);
  const canWrite = useCan('write');
  const why = canWrite ? undefined : needsScope('write');

  if (detail.isPending) return <Loading label="Loading run…" rows={8} />;
  if (detail.isError) {
    if (detail.error instanceof ApiError && detail.error.status === 404) {
      return (
        <Empty title="Run not found">
          This project has no run with this id: it may have been deleted, or the link may be wrong
          or point to another project&apos;s run. <Link to="/runs">See all runs</Link>
        </Empty>
      );
    }
    return <ErrorBox error={detail.error} onRetry={() => void detail.refetch()} />;
  }
  const run = detail.data;
  const active = isActive(run.status);

  return (
    <article className="run-detail" aria-labelledby="run-title">
      <nav className="crumbs" aria-label="Breadcrumb">
        <Link to="/">Agents</Link>
        <span aria-hidden="true">›</span>
        <Link to={`/?agent=${encodeURIComponent(run.agent_id)}`}>{run.agent_id}</Link>
        <span aria-hidden="true">›</span>
        <span aria-current="page" className="mono">
          {shortId(run.id)}
        </span>
      </nav>
      <div className="page-head">
        <h1 id="run-title">
          Run <span className="mono">{shortId(run.id)}</span>
        </h1>
        <StatusBadge status={run.status} />
        {run.cancel_requested_at && active ? <span className="muted">stop requested…</span> : null}
        <div className="page-head-end">
          {active ? (
            <button
              type="button"
              className="btn btn-danger"
              disabled={!canWrite || stop.isPending || run.cancel_requested_at !== null}
              title={why}
              onClick={() => stop.mutate(run)}
            >
              ■ Stop
            </button>
          ) : null}
          <button
            type="button"
            className="btn"
            disabled={!canWrite || active || retry.isPending}
            title={why}
            onClick={() => retry.mutate(run, { onSuccess: (next) => void navigate(runPath(next)) })}
          >
            ↻ Retry
          </button>
        </div>
      </div>

      {run.error ? (
        <div className="run-error" role="alert">
          <strong>{run.error.type ?? 'Error'}:</strong>{' '}
          {/* a long message (up to 100,000 characters) scrolls in its box, the page stays */}
          <span className="run-error-message">{run.error.message}</span>
          {run.error.stack ? (
            // where it was thrown, folded: the message says what, the stack where
            <details className="run-error-stack">
              <summary>Stack trace</summary>
              <pre>{run.error.stack}</pre>
            </details>
          ) : null}
        </div>
      ) : null}

      <dl className="facts">
        <Fact label="Run ID">
          {/* the title shows its end; the whole id is what the CLI and the API take */}
          <span className="mono run-id">{run.id}</span>{' '}
          <button
            type="button"
            className="btn btn-small"
            aria-label="Copy the run id"
            onClick={() => void copyText(run.id, 'Run id')}
          >
            Copy
          </button>
        </Fact>
        <Fact label="Agent">
          <Link to={`/?agent=${encodeURIComponent(run.agent_id)}`}>{run.agent_id}</Link>
        </Fact>
        <Fact label="Started">
          {run.started_at ? (
            <span title={formatExact(run.started_at)}>
              {formatExact(run.started_at)} · <RelativeTime iso={run.started_at} />
            </span>
          ) : null}
        </Fact>
        <Fact label="Duration">
          <RunDuration run={run} steps={run.steps} />
        </Fact>
        <Fact label="Queued">{run.queued_at ? formatExact(run.queued_at) : null}</Fact>
        <Fact label="Ended">{run.ended_at ? formatExact(run.ended_at) : null}</Fact>
        <Fact label="Trigger">
          {TRIGGER_LABELS[run.trigger]}
          {run.attempt > 1 ? ` · attempt ${run.attempt}` : ''}
        </Fact>
        <Fact label="Source">{run.source}</Fact>
        <Fact label="Triggered by">{run.triggered_by}</Fact>
        <Fact label="Model">{run.model}</Fact>
        <Fact label="Thread">
          {run.thread_id ? <span className="mono">{run.thread_id}</span> : null}
        </Fact>
        <Fact label="User">{run.user_id}</Fact>
        <Fact label="Tokens">
          <span className={active ? 'muted' : undefined}>
            {formatTokens(run.total_tokens)}{' '}
            <span className="muted">
              ({formatTokens(run.input_tokens)} in / {formatTokens(run.output_tokens)} out)
            </span>
          </span>
        </Fact>
        <Fact label="Cost">
          <Usage run={run} field="cost" />
        </Fact>
        <Fact label="Steps">
          {run.step_count} · {run.llm_calls} LLM · {run.tool_calls} tool
          {run.error_count > 0 ? <span className="bad"> · {run.error_count} failed</span> : null}
        </Fact>
        {run.retry_of ? (
          <Fact label="Retry of">
            <RunLink agentId={run.agent_id} runId={run.retry_of} />
          </Fact>
        ) : null}
        {retries.length > 0 ? (
          <Fact label="Retried as">
            {retries.map((r, i) => (
              <span key={r.id}>
                {i > 0 ? ', ' : ''}
                <RunLink agentId={r.agent_id} runId={r.id} />
              </span>
            ))}
          </Fact>
        ) : null}
        {run.parent_run_id ? (
          <Fact label="Parent run">
            <RunLink agentId={run.agent_id} runId={run.parent_run_id} />
          </Fact>
        ) : null}
        {run.tags.length > 0 ? (
          <Fact label="Tags">
            {run.tags.map((t) => (
              <span key={t} className="tag">
                {t}
              </span>
            ))}
          </Fact>
        ) : null}
      </dl>

      <section aria-labelledby="timeline-title" className="section">
        <h2 id="timeline-title">
          Timeline{' '}
          <span className="muted count">
            {run.steps.length} {run.steps.length === 1 ? 'step' : 'steps'}
            {/* a long run's first load shows its steps as they come */}
            {detail.isFetching && run.steps.length < run.step_count
              ? `, loading ${run.step_count - run.steps.length} more…`
              : null}
          </span>
        </h2>
        {run.steps.length === 0 ? (
          <Empty title={active ? 'No steps yet' : 'This run recorded no steps'}>
            {active ? 'Steps appear here as the agent records them.' : null}
          </Empty>
        ) : (
          <Timeline run={run} steps={run.steps} />
        )}
      </section>

      <section className="section io" aria-label="Run input and output">
        <JsonViewer label="Run input" value={run.input} />
        <JsonViewer label="Run output" value={run.output} />
        {Object.keys(run.metadata).length > 0 ? (
          <JsonViewer label="Run metadata" value={run.metadata} defaultOpen={false} />
        ) : null}
      </section>
    </article>
  );
}

/** Copies `text`, saying so; the clipboard API exists only on https and localhost. */
async function copyText(text: string, what: string): Promise<void> {
  try {
    await navigator.clipboard.writeText(text);
    toast(`${what} copied`);
  } catch {
    toast('Copying needs https (or localhost) and clipboard permission', 'error');
  }
}
