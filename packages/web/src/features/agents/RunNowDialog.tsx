import { useEffect, useId, useRef, useState, type FormEvent } from 'react';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { errorMessage } from '../../lib/api';
import { toast } from '../../components/Toasts';
import { foldRun } from '../../app/live';
import { needsScope, useCan } from '../auth/useCan';
import { enqueueRun } from './agents.queries';

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

/** Run now: queues a manual run of the agent, with optional JSON input. */
export function RunNowButton({
  agentId,
  agentName,
  workerSeenAt,
}: {
  agentId: string;
  agentName?: string;
  /** When a worker last asked for the agent's runs: null when none ever did. */
  workerSeenAt?: string | null;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [text, setText] = useState('');
  const [error, setError] = useState<string | null>(null);
  const client = useQueryClient();
  const id = useId();
  // a read key still opens the dialog: it learns what Run now does, and why it cannot yet
  const canWrite = useCan('write');
  const mutation = useMutation({
    mutationFn: (input: unknown) => enqueueRun(agentId, input),
    onSuccess: (run) => {
      foldRun(client, run);
      dialog.current?.close();
      setText('');
      toast('Run queued');
    },
    onError: (err) => setError(errorMessage(err)),
  });

  useEffect(() => setError(null), [text]);

  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    const parsed = parseRunInput(text);
    if (!parsed.ok) {
      setError(parsed.error);
      return;
    }
    mutation.mutate(parsed.value);
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
        <form onSubmit={onSubmit}>
          <h2 id={`${id}-title`}>Run {agentName ?? agentId} now</h2>
          <p className="muted">Queues a manual run for a worker of this agent to pick up.</p>
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
              {mutation.isPending ? 'Queueing…' : 'Queue run'}
            </button>
          </div>
        </form>
      </dialog>
    </>
  );
}
