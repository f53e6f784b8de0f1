import { useEffect, useId, useRef, useState, type FormEvent } from 'react';
import { useMutation, useQuery, useQueryClient, type QueryClient } from '@tanstack/react-query';
import { Link } from 'react-router-dom';
import type { Run, RunWithSteps, Score, ScoreList } from '@runlog/core';
import { ApiError, errorMessage } from '../../lib/api';
import { isActive, shortId } from '../../lib/format';
import { ErrorBox, Loading } from '../../components/States';
import { RelativeTime } from '../../components/Time';
import { toast } from '../../components/Toasts';
import { focusIfLost } from '../../components/focus';
import { sessionQuery } from '../auth/auth.queries';
import { needsScope, useCan } from '../auth/useCan';
import { ScoreSummaryChips, ScoreValue, ThumbIcon } from './ScoreChips';
import { FEEDBACK_NAME, parseScoreValue, scoreValueKind, scoreValueText } from './scoreText';
import {
  deleteScore,
  feedbackScoreId,
  postScore,
  removeScore,
  runScoresQuery,
  scoresKey,
  upsertScore,
} from './scores.queries';

/** How many scores the page lists before "Show all" (a run holds up to 1,000). */
const SHOWN = 50;

/** A comment this long is cut to its first lines until opened. */
const LONG_COMMENT = 240;

const putScore = (client: QueryClient, runId: string, score: Score) =>
  client.setQueryData<ScoreList>(scoresKey(runId), (d) => (d ? upsertScore(d, score) : d));
const dropScore = (client: QueryClient, runId: string, scoreId: string) =>
  client.setQueryData<ScoreList>(scoresKey(runId), (d) => (d ? removeScore(d, scoreId) : d));

/** Deletes a score; one already gone (deleted elsewhere) counts as deleted. */
async function deleteGone(runId: string, scoreId: string): Promise<void> {
  try {
    await deleteScore(runId, scoreId);
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404)) throw err;
  }
}

/**
 * Asks for the run's scores again when they changed: a `run_update` carries the run's
 * `scores` summary (a score added or deleted changes it at once) and its `updated_at` (a
 * score replaced with the same value changes only that). A running run's `updated_at` moves
 * with every step, so while it runs that alone asks again at most every 5 s.
 */
function useScoresFollowRun(run: Run): void {
  const client = useQueryClient();
  const summary = JSON.stringify(run.scores);
  const active = isActive(run.status);
  const seen = useRef({ id: run.id, summary, updated: run.updated_at });
  useEffect(() => {
    const was = seen.current;
    seen.current = { id: run.id, summary, updated: run.updated_at };
    if (was.id !== run.id) return;
    const key = scoresKey(run.id);
    if (was.summary !== summary || (!active && was.updated !== run.updated_at)) {
      void client.invalidateQueries({ queryKey: key, exact: true });
      return;
    }
    if (was.updated === run.updated_at) return;
    const age = Date.now() - (client.getQueryState(key)?.dataUpdatedAt ?? 0);
    const timer = setTimeout(
      () => void client.invalidateQueries({ queryKey: key, exact: true }),
      Math.max(0, 5000 - age),
    );
    return () => clearTimeout(timer);
  }, [active, client, run.id, run.updated_at, summary]);
}

/** A comment, its first lines only when long, the rest a press away. */
function Comment({ text }: { text: string }) {
  const [open, setOpen] = useState(false);
  const long = text.length > LONG_COMMENT;
  return (
    // one box: on a phone the cell is a flex row of its label and this
    <span className="score-comment-text">
      {long && !open ? `${text.slice(0, LONG_COMMENT)}…` : text}{' '}
      {long ? (
        <button
          type="button"
          className="link-btn"
          aria-expanded={open}
          onClick={() => setOpen((o) => !o)}
        >
          {open ? 'Show less' : 'Show all'}
        </button>
      ) : null}
    </span>
  );
}

/**
 * The "Add score" form: a name, a value (number, true/false or label) and a comment. It closes
 * once the score is saved, so the next "Add score" starts a new one.
 */
function AddScoreForm({
  runId,
  names,
  onClose,
}: {
  runId: string;
  /** The names the run's scores have, offered as the user types one. */
  names: string[];
  /** Closes the form; `refocus`: the focus goes back to "Add score". */
  onClose: (refocus: boolean) => void;
}) {
  const client = useQueryClient();
  const id = useId();
  const [name, setName] = useState('');
  const [value, setValue] = useState('');
  const [comment, setComment] = useState('');
  const form = useRef<HTMLFormElement>(null);
  const nameInput = useRef<HTMLInputElement>(null);
  const valueInput = useRef<HTMLInputElement>(null);
  const parsed = parseScoreValue(value);
  useEffect(() => nameInput.current?.focus(), []);
  const add = useMutation({
    mutationFn: (body: { name: string; value: number | boolean | string; comment?: string }) =>
      postScore(runId, { ...body, source: 'dashboard' }),
    onSuccess: (score) => {
      putScore(client, runId, score);
      toast(`Score ${score.name} saved`);
      // the focus goes back to "Add score" from the form as it closes (or from nowhere), not
      // from wherever the user went while the score saved
      const active = document.activeElement;
      onClose(!active || active === document.body || form.current?.contains(active) === true);
    },
    onError: (err) => toast(`Score not saved: ${errorMessage(err)}`, 'error'),
  });
  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    if (add.isPending) return;
    if (!name.trim()) {
      toast('Give the score a name', 'error');
      nameInput.current?.focus();
      return;
    }
    if (parsed === undefined) {
      toast('Give the score a value: a number, true or false, or a label', 'error');
      valueInput.current?.focus();
      return;
    }
    add.mutate({
      name: name.trim(),
      value: parsed,
      ...(comment.trim() ? { comment: comment.trim() } : {}),
    });
  };
  return (
    <form
      ref={form}
      className="inline-form add-score"
      aria-label="Add a score"
      onSubmit={onSubmit}
      onKeyDown={(e) => {
        if (e.key === 'Escape') onClose(true);
      }}
    >
      <div className="field">
        <label htmlFor={`${id}-name`}>Name</label>
        <input
          id={`${id}-name`}
          ref={nameInput}
          value={name}
          onChange={(e) => setName(e.target.value)}
          placeholder="e.g. helpfulness"
          maxLength={200}
          list={`${id}-names`}
          autoComplete="off"
        />
        <datalist id={`${id}-names`}>
          {names.map((n) => (
            <option key={n} value={n} />
          ))}
        </datalist>
      </div>
      <div className="field">
        <label htmlFor={`${id}-value`}>Value</label>
        <input
          id={`${id}-value`}
          ref={valueInput}
          value={value}
          onChange={(e) => setValue(e.target.value)}
          placeholder="0.9, true, or a label"
          maxLength={200}
          aria-describedby={`${id}-kind`}
          autoComplete="off"
        />
      </div>
      <div className="field field-grow">
        <label htmlFor={`${id}-comment`}>
          Comment <span className="muted">(optional)</span>
        </label>
        <input
          id={`${id}-comment`}
          value={comment}
          onChange={(e) => setComment(e.target.value)}
          maxLength={10_000}
          autoComplete="off"
        />
      </div>
      <div className="add-score-actions">
        <button
          type="submit"
          className="btn btn-primary"
          // busy, not disabled: a disabled button drops the keyboard focus to the page
          aria-disabled={add.isPending || undefined}
        >
          Save score
        </button>
        <button type="button" className="btn" onClick={() => onClose(true)}>
          Cancel
        </button>
      </div>
      <p className="hint muted" id={`${id}-kind`}>
        {scoreValueKind(parsed)}
      </p>
    </form>
  );
}

/**
 * A run's scores (an evaluator's, a user's thumbs, a reviewer's labels), with 👍/👎 and a
 * form to add one for a key that can write. Kept current by the run's updates.
 * @example <RunScores run={run} />
 */
export function RunScores({ run }: { run: RunWithSteps }) {
  const client = useQueryClient();
  const scores = useQuery(runScoresQuery(run.id));
  const session = useQuery(sessionQuery());
  const canWrite = useCan('write');
  const why = canWrite ? undefined : needsScope('write');
  useScoresFollowRun(run);
  const [adding, setAdding] = useState(false);
  const [all, setAll] = useState(false);
  const heading = useRef<HTMLHeadingElement>(null);
  const addToggle = useRef<HTMLButtonElement>(null);
  const deleteButtons = useRef(new Map<string, HTMLButtonElement>());
  // after a delete, the row's button goes: the focus goes to the next row's (or the heading)
  const [refocus, setRefocus] = useState<{ gone: string; next: string | null } | null>(null);

  const list = scores.data?.scores ?? [];
  const feedbackId = feedbackScoreId(session.data?.key_id);
  const mine = list.find((s) => s.id === feedbackId);
  const myValue = typeof mine?.value === 'boolean' ? mine.value : undefined;

  const feedback = useMutation({
    mutationFn: async (value: boolean): Promise<Score | null> => {
      // pressing the active thumb again takes it back
      if (value === myValue) {
        await deleteGone(run.id, feedbackId);
        return null;
      }
      return postScore(run.id, { id: feedbackId, name: FEEDBACK_NAME, value, source: 'dashboard' });
    },
    onSuccess: (score) => {
      if (score) putScore(client, run.id, score);
      else dropScore(client, run.id, feedbackId);
    },
    onError: (err) => toast(`Feedback not saved: ${errorMessage(err)}`, 'error'),
  });
  const remove = useMutation({
    mutationFn: (score: Score) => deleteGone(run.id, score.id),
    onSuccess: (_, score) => {
      dropScore(client, run.id, score.id);
      toast(`Score ${score.name} deleted`);
    },
    onError: (err) => {
      setRefocus(null);
      toast(`Deleting the score failed: ${errorMessage(err)}`, 'error');
    },
  });

  useEffect(() => {
    if (!refocus || list.some((s) => s.id === refocus.gone)) return;
    setRefocus(null);
    const next = refocus.next ? deleteButtons.current.get(refocus.next) : undefined;
    focusIfLost(next?.isConnected ? next : heading.current);
  }, [list, refocus]);

  const onDelete = (score: Score, shown: Score[]) => {
    if (remove.isPending) return;
    if (!window.confirm(`Delete the score ${score.name} (${scoreValueText(score)})?`)) return;
    const i = shown.findIndex((s) => s.id === score.id);
    setRefocus({ gone: score.id, next: (shown[i + 1] ?? shown[i - 1])?.id ?? null });
    remove.mutate(score);
  };

  const shown = all ? list : list.slice(0, SHOWN);
  const names = [...new Set(list.map((s) => s.name))];
  const stepName = (stepId: string) => {
    const step = run.steps.find((s) => s.id === stepId);
    return step ? (step.name ?? step.type) : shortId(stepId);
  };
  const summarised = Object.values(run.scores).some((s) => s.n > 1);
  const thumb = (value: boolean) => {
    const pressed = myValue === value;
    return (
      <button
        type="button"
        className={`btn btn-small feedback-btn ${value ? 'feedback-good' : 'feedback-bad'}`}
        aria-pressed={pressed}
        disabled={!canWrite}
        // busy, not disabled: a disabled button drops the keyboard focus to the page
        aria-disabled={feedback.isPending || undefined}
        title={
          why ??
          (pressed
            ? 'Your feedback: press again to take it back'
            : `Record a thumbs ${value ? 'up' : 'down'} as the score "${FEEDBACK_NAME}"`)
        }
        onClick={() => {
          if (!feedback.isPending) feedback.mutate(value);
        }}
      >
        <ThumbIcon dir={value ? 'up' : 'down'} /> {value ? 'Good' : 'Bad'}
      </button>
    );
  };

  return (
    <section className="section scores" aria-labelledby="scores-title">
      <div className="section-head">
        <h2 id="scores-title" tabIndex={-1} ref={heading}>
          Scores{' '}
          {scores.data ? <span className="muted count">{list.length.toLocaleString()}</span> : null}
        </h2>
        <div className="section-head-end">
          <div className="feedback" role="group" aria-label="Your feedback on this run">
            {thumb(true)}
            {thumb(false)}
          </div>
          <button
            ref={addToggle}
            type="button"
            className="btn btn-small"
            aria-expanded={adding}
            disabled={!canWrite}
            title={why}
            onClick={() => setAdding((a) => !a)}
          >
            Add score
          </button>
        </div>
      </div>
      {canWrite ? null : (
        <p className="scope-note">{needsScope('write')} to score runs: this key can only read.</p>
      )}
      {adding && canWrite ? (
        <AddScoreForm
          runId={run.id}
          names={names}
          onClose={(refocus) => {
            setAdding(false);
            if (refocus) addToggle.current?.focus();
          }}
        />
      ) : null}
      {summarised ? (
        <p className="scores-summary">
          <ScoreSummaryChips scores={run.scores} max={12} />
        </p>
      ) : null}
      {scores.isPending ? (
        <Loading label="Loading scores…" rows={2} />
      ) : scores.isError ? (
        <ErrorBox error={scores.error} onRetry={() => void scores.refetch()} />
      ) : list.length === 0 ? (
        <p className="scores-empty muted">
          No scores yet.{' '}
          {canWrite ? 'Rate the run with Good or Bad above, add a score, or score it' : 'Score it'}{' '}
          from code: the SDK&apos;s <code>run.score(&apos;helpfulness&apos;, 0.9)</code>, or{' '}
          <code>POST /api/v1/runs/{'{id}'}/scores</code> with a name and a value.
        </p>
      ) : (
        <>
          <div className="table-wrap">
            <table className="data-table card-table scores-table">
              <caption className="sr-only">Scores of this run, oldest first</caption>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Value</th>
                  <th scope="col">Comment</th>
                  <th scope="col">Source</th>
                  <th scope="col">Step</th>
                  <th scope="col">When</th>
                  {canWrite ? (
                    <th scope="col">
                      <span className="sr-only">Actions</span>
                    </th>
                  ) : null}
                </tr>
              </thead>
              <tbody>
                {shown.map((s) => (
                  <tr key={s.id} data-score-id={s.id}>
                    <td className="score-name" data-label="Name">
                      {s.name}
                    </td>
                    <td className="score-value" data-label="Value">
                      <ScoreValue score={s} />
                    </td>
                    <td className="score-comment" data-label="Comment">
                      {s.comment ? <Comment text={s.comment} /> : <span className="muted">—</span>}
                    </td>
                    <td className="score-source" data-label="Source">
                      {s.source ?? <span className="muted">—</span>}
                    </td>
                    <td className="score-step" data-label="Step">
                      {s.step_id ? (
                        <Link
                          to={{ hash: `step-${encodeURIComponent(s.step_id)}` }}
                          title={`Open step ${s.step_id} in the timeline`}
                        >
                          {stepName(s.step_id)}
                        </Link>
                      ) : (
                        <span className="muted">—</span>
                      )}
                    </td>
                    <td className="score-when" data-label="When">
                      <RelativeTime iso={s.updated_at} />
                    </td>
                    {canWrite ? (
                      <td className="actions">
                        <button
                          ref={(el) => {
                            if (el) deleteButtons.current.set(s.id, el);
                            else deleteButtons.current.delete(s.id);
                          }}
                          type="button"
                          className="btn btn-small btn-danger-ghost"
                          aria-label={`Delete score ${s.name}: ${scoreValueText(s)}`}
                          onClick={() => onDelete(s, shown)}
                        >
                          Delete
                        </button>
                      </td>
                    ) : null}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {list.length > SHOWN ? (
            <button
              type="button"
              className="link-btn show-all"
              aria-expanded={all}
              onClick={() => setAll((v) => !v)}
            >
              {all ? `Show the first ${SHOWN}` : `Show all ${list.length.toLocaleString()} scores`}
            </button>
          ) : null}
        </>
      )}
    </section>
  );
}
