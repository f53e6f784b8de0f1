import { useEffect, useId, useRef, useState, type FormEvent } from 'react';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { workerWait, type AgentBudget } from '@runlog/core';
import { errorMessage } from '../../lib/api';
import { toast } from '../../components/Toasts';
import { foldRun } from '../../app/live';
import { needsScope, useCan } from '../auth/useCan';
import { formatExact } from '../../lib/format';
import { enqueueRun } from './agents.queries';
import { laterDefault, parseStartAt } from './runLater';
import { localInput } from '../runs/runs.queries';
import { overBudgetText } from '../runs/bulk';

/** Parses the optional JSON input; empty means no input. */
export function parseRunInput(
  text: string,
): { ok: true; value: unknown } | { ok: false; error: string } {
  if (!text.trim()) return { ok: true, value: undefined };
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (err) {
    return { ok: false, error: `Input is not valid JSON: ${(err as Error).message}` };
  }
}

/**
 * Run now: queues a manual run of the agent, with optional JSON input, to start now or at a
 * time picked (no worker takes it before then).
 */
export function RunNowButton({
  agentId,
  agentName,
  workerSeenAt,
  pausedAt = null,
  budget,
}: {
  agentId: string;
  agentName?: string;
  /** When a worker last asked for the agent's runs: null when none ever did. */
  workerSeenAt?: string | null;
  /** When the agent was paused (`Agent.paused_at`): null while it runs. */
  pausedAt?: string | null;
  /**
   * The agent's budget over 24 hours (`Agent.max_cost_usd_24h`) and what its runs of the last
   * 24 hours cost (`AgentSummary.counts_24h.cost_usd`), as `workerWait` takes them.
   */
  budget?: AgentBudget;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [text, setText] = useState('');
  const [later, setLater] = useState(false);
  const [startAt, setStartAt] = useState('');
  const [error, setError] = useState<string | null>(null);
  const client = useQueryClient();
  const id = useId();
  // a read key still opens the dialog: it learns what Run now does, and why it cannot yet
  const canWrite = useCan('write');
  const mutation = useMutation({
    mutationFn: ({ input, runAt }: { input: unknown; runAt?: string }) =>
      enqueueRun(agentId, input, runAt),
    onSuccess: (run, { runAt }) => {
      foldRun(client, run);
      dialog.current?.close();
      setText('');
      setLater(false);
      toast(
        runAt && run.queued_at ? `Run queued to start ${formatExact(run.queued_at)}` : 'Run queued',
      );
    },
    onError: (err) => setError(errorMessage(err)),
  });

  useEffect(() => setError(null), [text, later, startAt]);

  // the run page's rule: a paused agent is said to be paused, even over its budget
  const wait = workerWait(agentId, workerSeenAt ?? null, undefined, Date.now(), {
    pausedAt,
    budget,
  });

  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    const parsed = parseRunInput(text);
    if (!parsed.ok) {
      setError(parsed.error);
      return;
    }
    if (!later) {
      mutation.mutate({ input: parsed.value });
      return;
    }
    const start = parseStartAt(startAt, Date.now());
    if (!start.ok) {
      setError(start.error);
      return;
    }
    mutation.mutate({ input: parsed.value, runAt: start.runAt });
  };

  return (
    <>
      <button
        type="button"
        className="btn btn-primary btn-small"
        title={canWrite ? undefined : `${needsScope('write')} to queue a run`}
        onClick={() => {
          setError(null);
          dialog.current?.showModal();
        }}
      >
        <span aria-hidden="true">▶</span> Run now
      </button>
      <dialog ref={dialog} className="dialog" aria-labelledby={`${id}-title`}>
        {/* its own messages, beside the inputs, rather than the browser's bubble */}
        <form onSubmit={onSubmit} noValidate>
          <h2 id={`${id}-title`}>
            Run {agentName ?? agentId} {later ? 'later' : 'now'}
          </h2>
          <p className="muted">
            Queues a manual run for a worker of this agent to pick up, now or at a time you choose.
          </p>
          {pausedAt !== null ? (
            <p className="scope-note" data-testid="run-now-paused">
              {agentName ?? agentId} is paused (since {formatExact(pausedAt)}): the run waits queued
              until it is resumed.
            </p>
          ) : null}
          {wait.kind === 'budget' ? (
            <p className="scope-note" data-testid="run-now-over-budget">
              {agentName ?? agentId} is over its budget ({overBudgetText(wait)}): the run waits
              queued until that falls below it or the budget is raised in its Settings.
            </p>
          ) : null}
          {workerSeenAt === null ? (
            // said before it is queued, not only on the run's page after
            <p className="scope-note" data-testid="run-now-no-worker">
              No worker has asked for runs of {agentName ?? agentId} yet: the run waits until one
              does (<span className="mono">runlog.worker(…)</span> in the SDK).
            </p>
          ) : null}
          <label htmlFor={`${id}-input`}>Input (JSON, optional)</label>
          <textarea
            id={`${id}-input`}
            className="mono"
            rows={8}
            value={text}
            onChange={(e) => setText(e.target.value)}
            placeholder={'{ "pr": 42 }'}
            spellCheck={false}
            disabled={!canWrite}
            aria-invalid={error ? true : undefined}
            aria-describedby={error ? `${id}-error` : undefined}
          />
          <fieldset className="settings-group" disabled={!canWrite}>
            <legend>Start</legend>
            <div className="choices">
              <label className="choice">
                <input
                  type="radio"
                  name={`${id}-start`}
                  checked={!later}
                  onChange={() => setLater(false)}
                />
                Now
              </label>
              <label className="choice">
                <input
                  type="radio"
                  name={`${id}-start`}
                  checked={later}
                  onChange={() => {
                    setLater(true);
                    if (!startAt) setStartAt(laterDefault(Date.now()));
                  }}
                />
                Later
              </label>
            </div>
            {later ? (
              <>
                <label htmlFor={`${id}-at`}>Start at (your local time)</label>
                <input
                  id={`${id}-at`}
                  type="datetime-local"
                  // the picker offers no time passed (typed, one is refused on Queue)
                  min={localInput(new Date().toISOString()).slice(0, 16)}
                  value={startAt}
                  onChange={(e) => setStartAt(e.target.value)}
                />
                <p className="field-help">
                  No worker takes the run before then: it waits queued, and Stop cancels it.
                </p>
              </>
            ) : null}
          </fieldset>
          {canWrite ? null : (
            <p id={`${id}-scope`} className="scope-note">
              {needsScope('write')} to queue a run: this session&apos;s key can only read.
            </p>
          )}
          {error ? (
            <p id={`${id}-error`} className="field-error" role="alert">
              {error}
            </p>
          ) : null}
          <div className="dialog-actions">
            <button type="button" className="btn" onClick={() => dialog.current?.close()}>
              Cancel
            </button>
            <button
              type="submit"
              className="btn btn-primary"
              disabled={!canWrite || mutation.isPending}
              aria-describedby={canWrite ? undefined : `${id}-scope`}
            >
              {mutation.isPending ? 'Queueing…' : later ? 'Queue for later' : 'Queue run'}
            </button>
          </div>
        </form>
      </dialog>
    </>
  );
}
