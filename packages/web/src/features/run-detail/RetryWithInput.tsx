import { useEffect, useId, useRef, useState, type FormEvent } from 'react';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useNavigate } from 'react-router-dom';
import { isTruncatedJson, type Run } from '@runlog/core';
import { toast } from '../../components/Toasts';
import { api, errorMessage } from '../../lib/api';
import { foldRun } from '../../app/live';
import { needsScope, useCan } from '../auth/useCan';
import { parseRunInput } from '../agents/RunNowDialog';
import { runPath } from '../runs/RunActions';
import { RetryWaitNote } from '../runs/RetryConfirm';

/** Retry `runId` on `input` instead of its own (`null`: none): a retry with a fix to it. */
export const retryWithInput = (runId: string, input: unknown) =>
  api<Run>('POST', `/runs/${encodeURIComponent(runId)}/retry`, { body: { input: input ?? null } });

/**
 * The text the input box starts with: the run's input as indented JSON, empty for none or
 * for an input stored truncated (its preview is not the input).
 * @example inputText({ pr: 42 }) // '{\n  "pr": 42\n}'
 */
export function inputText(input: unknown): string {
  if (input === null || input === undefined || isTruncatedJson(input)) return '';
  return JSON.stringify(input, null, 2);
}

/**
 * Edit & retry, beside Retry on a run's page: the run's input in a box to change, then a
 * retry (linked by retry_of, attempt + 1) that runs on it. Opens on the new run.
 */
export function RetryWithInputButton({ run, disabled }: { run: Run; disabled: boolean }) {
  const dialog = useRef<HTMLDialogElement>(null);
  // the workers are read only while the dialog is open
  const [open, setOpen] = useState(false);
  const [text, setText] = useState('');
  const [error, setError] = useState<string | null>(null);
  const client = useQueryClient();
  const navigate = useNavigate();
  const id = useId();
  const canWrite = useCan('write');
  const truncated = isTruncatedJson(run.input);
  const mutation = useMutation({
    mutationFn: (input: unknown) => retryWithInput(run.id, input),
    onSuccess: (next) => {
      foldRun(client, next);
      dialog.current?.close();
      toast(`Retry queued with the input given (attempt ${next.attempt})`);
      void navigate(runPath(next));
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
        className="btn"
        disabled={!canWrite || disabled}
        title={canWrite ? undefined : `${needsScope('write')} to retry a run`}
        onClick={() => {
          setText(inputText(run.input));
          setError(null);
          setOpen(true);
          dialog.current?.showModal();
        }}
      >
        <span aria-hidden="true">✎</span> Edit &amp; retry
      </button>
      <dialog
        ref={dialog}
        className="dialog"
        aria-labelledby={`${id}-title`}
        onClose={() => setOpen(false)}
      >
        <form onSubmit={onSubmit}>
          <h2 id={`${id}-title`}>Retry with another input</h2>
          <p className="muted">
            Queues a retry of this run (attempt {run.attempt + 1}, linked to it) that its
            agent&apos;s worker runs on the input below instead of the run&apos;s own.
          </p>
          {open ? <RetryWaitNote run={run} /> : null}
          {truncated ? (
            <p className="scope-note" data-testid="retry-input-truncated">
              This run&apos;s input was too large to keep whole, so it cannot be shown here: give
              the input the retry runs on.
            </p>
          ) : null}
          <label htmlFor={`${id}-input`}>Input (JSON; empty for none)</label>
          <textarea
            id={`${id}-input`}
            className="mono"
            rows={12}
            value={text}
            onChange={(e) => setText(e.target.value)}
            spellCheck={false}
            aria-invalid={error ? true : undefined}
            aria-describedby={error ? `${id}-error` : undefined}
          />
          {error ? (
            <p id={`${id}-error`} className="field-error" role="alert">
              {error}
            </p>
          ) : null}
          <div className="dialog-actions">
            <button type="button" className="btn" onClick={() => dialog.current?.close()}>
              Cancel
            </button>
            <button type="submit" className="btn btn-primary" disabled={mutation.isPending}>
              {mutation.isPending ? 'Queueing…' : 'Queue retry'}
            </button>
          </div>
        </form>
      </dialog>
    </>
  );
}
