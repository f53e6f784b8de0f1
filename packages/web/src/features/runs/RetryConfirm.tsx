import { useEffect, useId, useRef, useSyncExternalStore } from 'react';
import { useQuery, type QueryClient } from '@tanstack/react-query';
import { Link } from 'react-router-dom';
import type { Run } from '@runlog/core';
import { shortId } from '../../lib/format';
import { agentPath, agentsQuery } from '../agents/agents.queries';
import { workersQuery } from '../workers/workers.queries';
import {
  agentsWithoutWorker,
  overBudgetAgents,
  overBudgetText,
  pausedAgents,
  type OverBudget,
} from './bulk';

/**
 * The agents of runs whose retries would wait queued: paused ones, ones over their budget (not
 * paused), and ones no worker serves now.
 */
export interface RetryWaits {
  paused: string[];
  overBudget: OverBudget[];
  unserved: string[];
}

/** Whether a retry of any of the runs `waits` was read for would wait queued. */
export const retryWaits = (waits: RetryWaits): boolean =>
  waits.paused.length > 0 || waits.overBudget.length > 0 || waits.unserved.length > 0;

/**
 * The agents of `runs` whose retries would wait queued, read at most 5 s ago (a worker started
 * a moment ago counts): paused ones, ones over their budget, and ones no worker serves now.
 * None when they cannot be
 * read, so a server away a moment does not stand between the user and the retry, which then
 * says so.
 * @example if (retryWaits(await readRetryWaits(client, [run]))) ask()
 */
export async function readRetryWaits(
  client: QueryClient,
  runs: readonly Run[],
): Promise<RetryWaits> {
  try {
    const [agents, workers] = await Promise.all([
      client.fetchQuery({ ...agentsQuery(), staleTime: 5_000 }),
      client.fetchQuery({ ...workersQuery(), staleTime: 5_000 }),
    ]);
    return {
      paused: pausedAgents(runs, agents),
      overBudget: overBudgetAgents(runs, agents),
      unserved: agentsWithoutWorker(runs, agents, workers.workers, Date.now()),
    };
  } catch {
    return { paused: [], overBudget: [], unserved: [] };
  }
}

/** That `agentId` is paused, so a retry of its run waits queued, with a link to resume it. */
function PausedNote({
  agentId,
  className = 'bulk-warning',
  onLink,
}: {
  agentId: string;
  className?: string;
  onLink?: () => void;
}) {
  return (
    <p className={className} data-testid="retry-agent-paused">
      <span className="mono">{agentId}</span> is paused: the retry waits queued until it is resumed
      (
      <Link to={agentPath(agentId)} onClick={onLink}>
        Agents
      </Link>
      ).
    </p>
  );
}

/**
 * That `over.agentId` is over its budget, so a retry of its run waits queued, with a link to
 * the agent, whose Settings raise the budget.
 */
function OverBudgetNote({
  over,
  className = 'bulk-warning',
  onLink,
}: {
  over: OverBudget;
  className?: string;
  onLink?: () => void;
}) {
  return (
    <p className={className} data-testid="retry-agent-over-budget">
      <span className="mono">{over.agentId}</span> is over its budget ({overBudgetText(over)}): the
      retry waits queued until that falls below it or the budget is raised (
      <Link to={agentPath(over.agentId)} onClick={onLink}>
        Agents
      </Link>
      ).
    </p>
  );
}

/**
 * Said in a dialog that queues a retry of `run` (Edit & retry) while its agent is paused, over
 * its budget, or no worker of it runs: the retry would wait queued. Nothing otherwise, or
 * before that is read.
 */
export function RetryWaitNote({ run }: { run: Run }) {
  const agents = useQuery(agentsQuery());
  const workers = useQuery(workersQuery());
  const paused = pausedAgents([run], agents.data);
  const [over] = overBudgetAgents([run], agents.data);
  const unserved = agentsWithoutWorker([run], agents.data, workers.data?.workers, Date.now());
  return (
    <>
      {paused.length > 0 ? (
        <PausedNote agentId={run.agent_id} className="scope-note bulk-warning" />
      ) : null}
      {over ? <OverBudgetNote over={over} className="scope-note bulk-warning" /> : null}
      {unserved.length > 0 ? (
        <p className="scope-note bulk-warning" data-testid="retry-no-worker">
          No worker of <span className="mono">{run.agent_id}</span> is running now: the retry waits
          queued until one asks for runs.
        </p>
      ) : null}
    </>
  );
}

interface Asking {
  run: Run;
  waits: RetryWaits;
  answer: (retry: boolean) => void;
}

let asking: Asking | undefined;
const listeners = new Set<() => void>();

function setAsking(next: Asking | undefined) {
  asking = next;
  listeners.forEach((l) => l());
}

/**
 * Asks whether to retry `run` although its retry would wait queued (`waits`: its agent is
 * paused or over its budget, or no worker of it runs now): true to retry. A question asked while another is open
 * answers the older one no. Its dialog (`RetryConfirmDialog`) lives beside the toasts, so a run
 * row's menu, gone with its row, does not take it along.
 * @example if (await askRetryThatWaits(run, waits)) retry.mutate(run)
 */
export function askRetryThatWaits(run: Run, waits: RetryWaits): Promise<boolean> {
  asking?.answer(false);
  return new Promise((resolve) => {
    const mine: Asking = {
      run,
      waits,
      answer: (retry) => {
        if (asking === mine) setAsking(undefined);
        resolve(retry);
      },
    };
    setAsking(mine);
  });
}

/** The question `askRetryThatWaits` asks, as a modal dialog; mounted once, beside the toasts. */
export function RetryConfirmDialog() {
  const current = useSyncExternalStore(
    (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    () => asking,
  );
  const dialog = useRef<HTMLDialogElement>(null);
  const confirm = useRef<HTMLButtonElement>(null);
  // the answer given by a button, read when the dialog closes (Escape answers no)
  const answer = useRef(false);
  const id = useId();
  useEffect(() => {
    const d = dialog.current;
    if (!current || !d) return;
    answer.current = false;
    if (!d.open) d.showModal();
    // as the bulk Retry's question: a retry is no harm to take by Enter
    confirm.current?.focus();
  }, [current]);

  const close = (retry: boolean) => {
    answer.current = retry;
    dialog.current?.close();
  };
  const run = current?.run;
  const waits = current?.waits;
  const over = run && waits?.overBudget.find((o) => o.agentId === run.agent_id);
  return (
    <dialog
      ref={dialog}
      className="dialog"
      aria-labelledby={`${id}-title`}
      aria-describedby={`${id}-what`}
      onClose={() => current?.answer(answer.current)}
    >
      {run ? (
        <>
          <h2 id={`${id}-title`}>Retry run {shortId(run.id)}?</h2>
          <div id={`${id}-what`}>
            <p>It gets a new queued run with the same input, for a worker of its agent.</p>
            {waits?.paused.includes(run.agent_id) ? (
              <PausedNote agentId={run.agent_id} onLink={() => close(false)} />
            ) : null}
            {over ? <OverBudgetNote over={over} onLink={() => close(false)} /> : null}
            {waits?.unserved.includes(run.agent_id) ? (
              <p className="bulk-warning" data-testid="retry-no-worker">
                No worker of <span className="mono">{run.agent_id}</span> is running now: the retry
                waits queued until one asks for runs (
                <Link to="/workers" onClick={() => close(false)}>
                  Workers
                </Link>
                ).
              </p>
            ) : null}
          </div>
          <div className="dialog-actions">
            <button type="button" className="btn" onClick={() => close(false)}>
              Cancel
            </button>
            <button
              ref={confirm}
              type="button"
              className="btn btn-primary"
              onClick={() => close(true)}
            >
              Queue retry
            </button>
          </div>
        </>
      ) : null}
    </dialog>
  );
}
