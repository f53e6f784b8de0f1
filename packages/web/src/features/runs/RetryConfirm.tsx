import { useEffect, useId, useRef, useSyncExternalStore } from 'react';
import { useQuery, type QueryClient } from '@tanstack/react-query';
import { Link } from 'react-router-dom';
import type { Run } from '@runlog/core';
import { shortId } from '../../lib/format';
import { agentsQuery } from '../agents/agents.queries';
import { workersQuery } from '../workers/workers.queries';
import { agentsWithoutWorker } from './bulk';

/**
 * The agents of `runs` no worker serves now, read at most 5 s ago (a worker started a moment
 * ago counts): a retry of their runs would wait queued. None when they cannot be read, so a
 * server away a moment does not stand between the user and the retry, which then says so.
 * @example if ((await readAgentsWithoutWorker(client, [run])).length > 0) ask()
 */
export async function readAgentsWithoutWorker(
  client: QueryClient,
  runs: readonly Run[],
): Promise<string[]> {
  try {
    const [agents, workers] = await Promise.all([
      client.fetchQuery({ ...agentsQuery(), staleTime: 5_000 }),
      client.fetchQuery({ ...workersQuery(), staleTime: 5_000 }),
    ]);
    return agentsWithoutWorker(runs, agents, workers.workers, Date.now());
  } catch {
    return [];
  }
}

/**
 * Said in a dialog that queues a retry of `run` (Edit & retry) while no worker of its agent
 * runs: the retry would wait queued. Nothing while a worker serves it, or before that is read.
 */
export function NoWorkerNote({ run }: { run: Run }) {
  const agents = useQuery(agentsQuery());
  const workers = useQuery(workersQuery());
  const unserved = agentsWithoutWorker([run], agents.data, workers.data?.workers, Date.now());
  if (unserved.length === 0) return null;
  return (
    <p className="scope-note bulk-warning" data-testid="retry-no-worker">
      No worker of <span className="mono">{run.agent_id}</span> is running now: the retry waits
      queued until one asks for runs.
    </p>
  );
}

interface Asking {
  run: Run;
  answer: (retry: boolean) => void;
}

let asking: Asking | undefined;
const listeners = new Set<() => void>();

function setAsking(next: Asking | undefined) {
  asking = next;
  listeners.forEach((l) => l());
}

/**
 * Asks whether to retry `run` although no worker of its agent runs now (its retry would wait
 * queued): true to retry. A question asked while another is open answers the older one no.
 * Its dialog (`RetryConfirmDialog`) lives beside the toasts, so a run row's menu, gone with
 * its row, does not take it along.
 * @example if (await askRetryWithoutWorker(run)) retry.mutate(run)
 */
export function askRetryWithoutWorker(run: Run): Promise<boolean> {
  asking?.answer(false);
  return new Promise((resolve) => {
    const mine: Asking = {
      run,
      answer: (retry) => {
        if (asking === mine) setAsking(undefined);
        resolve(retry);
      },
    };
    setAsking(mine);
  });
}

/** The question `askRetryWithoutWorker` asks, as a modal dialog; mounted once, beside the toasts. */
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
            <p className="bulk-warning" data-testid="retry-no-worker">
              No worker of <span className="mono">{run.agent_id}</span> is running now: the retry
              waits queued until one asks for runs (
              <Link to="/workers" onClick={() => close(false)}>
                Workers
              </Link>
              ).
            </p>
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
