import { useRef, useState } from 'react';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useNavigate } from 'react-router-dom';
import { isHeldBack, type Run } from '@runlog/core';
import { KebabMenu } from '../../components/Menu';
import { toast } from '../../components/Toasts';
import { errorMessage } from '../../lib/api';
import { isActive, shortId } from '../../lib/format';
import { foldRun } from '../../app/live';
import { needsScope, useCan } from '../auth/useCan';
import { cancelRun, retryRunOnce, startRunNow } from './runs.queries';
import { askRetryThatWaits, readRetryWaits, retryWaits } from './RetryConfirm';

export function runPath(run: Pick<Run, 'agent_id' | 'id'>): string {
  return `/agents/${encodeURIComponent(run.agent_id)}/runs/${encodeURIComponent(run.id)}`;
}

/**
 * Stop and Retry as mutations whose answers land in the cache at once. `requestRetry` is
 * Retry as a button does it: at once while a worker serves the run's agent, else after asking
 * (the retry would wait queued); `retrying` while it looks, asks or retries.
 */
export function useRunActions() {
  const client = useQueryClient();
  const [checking, setChecking] = useState(false);
  // a second click before the render that disables the button finds it busy
  const busy = useRef(false);
  const stop = useMutation({
    mutationFn: (run: Run) => cancelRun(run.id),
    onSuccess: (run) => {
      foldRun(client, run);
      toast(run.status === 'cancelled' ? 'Run cancelled' : 'Stop requested');
    },
    onError: (err) => toast(`Stop failed: ${errorMessage(err)}`, 'error'),
  });
  const retry = useMutation({
    // a run retried already (a click a moment ago, a teammate, a pass over a list of
    // failures) is followed by its retry: a second retry would run the job's side effects
    // twice. To try again, retry the retry: the chain stays one line
    mutationFn: (run: Run) => retryRunOnce(run.id),
    onSuccess: ({ run, queued }) => {
      if (!queued) {
        toast(
          `Already retried as ${shortId(run.id)} (attempt ${run.attempt}, ${run.status}): retry that run to try again`,
          'info',
          { to: runPath(run), label: 'Open' },
        );
        return;
      }
      foldRun(client, run);
      toast(`Retry queued (attempt ${run.attempt})`, 'info', { to: runPath(run), label: 'Open' });
    },
    onError: (err) => toast(`Retry failed: ${errorMessage(err)}`, 'error'),
  });
  // a run held back until later (queued to start then, an automatic retry's delay): now
  const startNow = useMutation({
    mutationFn: (run: Run) => startRunNow(run.id),
    onSuccess: (run) => {
      foldRun(client, run);
      toast('The run may start now: a worker takes it next');
    },
    onError: (err) => toast(`Could not start it now: ${errorMessage(err)}`, 'error'),
  });
  const requestRetry = async (run: Run, onSuccess?: (answer: { run: Run }) => void) => {
    if (busy.current || retry.isPending) return;
    busy.current = true;
    setChecking(true);
    try {
      const waits = await readRetryWaits(client, [run]);
      if (retryWaits(waits) && !(await askRetryThatWaits(run, waits))) return;
    } finally {
      busy.current = false;
      setChecking(false);
    }
    retry.mutate(run, onSuccess ? { onSuccess } : undefined);
  };
  return { stop, retry, requestRetry, retrying: checking || retry.isPending, startNow };
}

/**
 * The ⋮ menu of a run row: View details, Retry, Start now (a run held back until later), Stop
 * (only while queued or running).
 */
export function RunMenu({ run }: { run: Run }) {
  const navigate = useNavigate();
  const { stop, requestRetry, retrying, startNow } = useRunActions();
  const active = isActive(run.status);
  const canWrite = useCan('write');
  const why = canWrite ? {} : { title: needsScope('write') };
  return (
    <KebabMenu
      label={`Actions for run ${shortId(run.id)}`}
      items={[
        { label: 'View details', onSelect: () => void navigate(runPath(run)) },
        {
          label: 'Retry',
          onSelect: () => void requestRetry(run),
          disabled: !canWrite || active || retrying,
          ...why,
        },
        ...(isHeldBack(run)
          ? [
              {
                label: 'Start now',
                onSelect: () => startNow.mutate(run),
                disabled: !canWrite || startNow.isPending,
                ...why,
              },
            ]
          : []),
        ...(active
          ? [
              {
                label: 'Stop',
                onSelect: () => stop.mutate(run),
                disabled: !canWrite || stop.isPending || run.cancel_requested_at !== null,
                danger: true,
                ...why,
              },
            ]
          : []),
      ]}
    />
  );
}
