import { useEffect, useId, useRef, useState } from 'react';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { Link } from 'react-router-dom';
import { mapPool, type Run } from '@runlog/core';
import { toast } from '../../components/Toasts';
import { focusIfLost } from '../../components/focus';
import { errorMessage } from '../../lib/api';
import { foldRun } from '../../app/live';
import { needsScope, useCan } from '../auth/useCan';
import { showBulkReport } from './BulkReport';
import { readRetryWaits, retryWaits } from './RetryConfirm';
import {
  BULK_CONCURRENCY,
  SELECT_ALL_CAP,
  actOn,
  agentsWithoutWorker,
  countResults,
  overBudgetAgents,
  overBudgetText,
  pausedAgents,
  emptyReason,
  planBulk,
  plural,
  retryLabel,
  runsText,
  stopLabel,
  summaryText,
  type BulkAction,
  type BulkOutcome,
  type BulkPlan,
} from './bulk';
import type { RunSelection } from './useRunSelection';
import { compareOrder, comparePath } from '../run-detail/ComparePage';
import { agentPath, agentsQuery } from '../agents/agents.queries';
import { workersQuery } from '../workers/workers.queries';

/** The runs a filtered list matches beyond its page, for "select all matching". */
export interface Matching {
  total: number;
  /** The server stopped counting at its cap: `total` is a lower bound. */
  capped: boolean;
  /** Reads the matching runs, page by page, up to `cap`. */
  fetch: (
    cap: number,
    onProgress: (read: number) => void,
    signal: AbortSignal,
  ) => Promise<{ runs: Run[]; total: number; totalCapped: boolean }>;
}

interface Job {
  action: BulkAction;
  total: number;
  done: number;
  controller: AbortController;
}

/** The ids of two selected runs, in the order the Compare page takes them. */
const compareIds = (x: Run, y: Run): [string, string] => {
  const [a, b] = compareOrder(x, y);
  return [a.id, b.id];
};

/** "1,234" or "10,000+" */
const countText = (n: number, capped: boolean) =>
  `${n.toLocaleString('en-US')}${capped ? '+' : ''}`;

/** Agents as a sentence names them: "a, b and 3 more". */
function namesText(agents: readonly string[]): string {
  if (agents.length <= 3) return agents.join(', ').replace(/, ([^,]*)$/, ' and $1');
  return `${agents.slice(0, 2).join(', ')} and ${agents.length - 2} more`;
}

/** The agents a list of runs belongs to, as a sentence names them: "a, b and 3 more". */
function agentsText(runs: readonly Run[]): string {
  return namesText([...new Set(runs.map((r) => r.agent_id))]);
}

/**
 * The bar over a run list while runs are selected: "N selected · Retry · Stop · Clear", with
 * "select all M matching" when the filter matches more than the page. Acting on more than one
 * run asks first, naming the count; runs are then acted on a few at a time, with progress,
 * and a toast sums up what they came to (its Details list the failures and why). The runs
 * that failed stay selected, to try again.
 */
export function BulkBar({
  selection,
  matching,
  where,
  label = 'Selected runs',
}: {
  selection: RunSelection;
  matching?: Matching | undefined;
  /** Where the rows not on screen are: "on other pages", "not shown". */
  where: string;
  /** The bar's name, for a page with several lists (the Agents page's panels). */
  label?: string;
}) {
  const client = useQueryClient();
  const canWrite = useCan('write');
  const [job, setJob] = useState<Job | undefined>();
  const [confirm, setConfirm] = useState<BulkAction | undefined>();
  const [reading, setReading] = useState<
    { read: number; of: number; controller: AbortController } | undefined
  >();
  // "select all matching" done: how many the filter matched then, to say what the cap left out
  const [matched, setMatched] = useState<{ total: number; capped: boolean } | undefined>();
  const bar = useRef<HTMLDivElement>(null);
  const dialog = useRef<HTMLDialogElement>(null);
  const confirmButton = useRef<HTMLButtonElement>(null);
  const cancelButton = useRef<HTMLButtonElement>(null);
  const cancelJob = useRef<HTMLButtonElement>(null);
  // a second click while Retry of one run looks for its workers acts once
  const beginning = useRef(false);
  const id = useId();

  const { runs, shown, scope } = selection;
  const count = runs.length;
  const plan = planBulk(runs);
  const hidden = runs.filter((r) => !shown.some((s) => s.id === r.id)).length;
  const allShown = shown.length > 0 && shown.every((r) => selection.has(r.id));

  // another filter: a read of the runs the last one matched is of no use
  const readingNow = useRef<AbortController | undefined>(undefined);
  useEffect(() => {
    setMatched(undefined);
    return () => {
      readingNow.current?.abort();
      setReading(undefined);
    };
  }, [scope]);
  // hand-picking after "select all matching" makes it a selection like another
  useEffect(() => {
    if (matched && count === 0) setMatched(undefined);
  }, [matched, count]);

  useEffect(() => {
    const d = dialog.current;
    if (!confirm || !d) return;
    if (!d.open) d.showModal();
    // Stop is the one not to take by a stray Enter: its dialog starts on Cancel
    (confirm === 'stop' ? cancelButton : confirmButton).current?.focus();
  }, [confirm]);

  // the buttons the focus was on made way for the progress: it goes to its Cancel
  const running = job !== undefined;
  useEffect(() => {
    if (running) focusIfLost(cancelJob.current);
  }, [running]);

  const selectMatching = async () => {
    if (!matching) return;
    const controller = new AbortController();
    readingNow.current = controller;
    const of = Math.min(matching.total, SELECT_ALL_CAP);
    setReading({ read: 0, of, controller });
    try {
      const found = await matching.fetch(
        SELECT_ALL_CAP,
        (read) => setReading((r) => r && { ...r, read }),
        controller.signal,
      );
      if (controller.signal.aborted) return;
      selection.replace(found.runs);
      setMatched({ total: found.total, capped: found.totalCapped });
    } catch (err) {
      if (!controller.signal.aborted) toast(`Selecting failed: ${errorMessage(err)}`, 'error');
    } finally {
      setReading((r) => (r?.controller === controller ? undefined : r));
    }
  };

  const act = async (action: BulkAction, targets: Run[]) => {
    const controller = new AbortController();
    const at = scope;
    setJob({ action, total: targets.length, done: 0, controller });
    const results = await mapPool(
      targets,
      BULK_CONCURRENCY,
      async (run) => {
        const outcome = await actOn(action, run);
        // the new retry, the cancelled run: on screen at once, before the WebSocket says so
        if (
          outcome.result === 'queued' ||
          outcome.result === 'cancelled' ||
          outcome.result === 'stopping'
        )
          foldRun(client, outcome.to);
        setJob((j) => j && { ...j, done: j.done + 1 });
        return outcome;
      },
      controller.signal,
    );
    const outcomes: BulkOutcome[] = results.map(
      (o, i) => o ?? { run: targets[i]!, result: 'not_sent' },
    );
    const counts = countResults(outcomes);
    const hadFocus =
      bar.current?.contains(document.activeElement) || document.activeElement === document.body;
    // what is left to do stays selected: the failures, and what a cancel left unsent
    selection.replaceIn(
      at,
      outcomes.filter((o) => o.result === 'failed' || o.result === 'not_sent').map((o) => o.run),
    );
    setMatched(undefined);
    setJob(undefined);
    const unfinished = counts.failed + counts.not_sent > 0;
    toast(
      summaryText(action, outcomes),
      counts.failed > 0 ? 'error' : 'info',
      action === 'retry' && counts.queued > 0
        ? { to: '/runs?trigger=retry', label: 'View retries' }
        : undefined,
      {
        action: { label: 'Details', onClick: () => showBulkReport({ action, outcomes }) },
        persist: unfinished,
      },
    );
    if (hadFocus)
      // after the render: the bar's buttons for what is left, or, the bar gone, the list's
      // header checkbox, or, the list emptied by the pass (a Stop under a "queued" filter),
      // the page, so the keyboard goes on from where it was rather than from the top
      requestAnimationFrame(() =>
        (
          bar.current?.querySelector<HTMLButtonElement>('.bulk-actions button:not(:disabled)') ??
          selection.headRef.current ??
          document.getElementById('main')
        )?.focus(),
      );
  };

  const begin = async (action: BulkAction) => {
    const targets = action === 'retry' ? plan.retry : plan.stop;
    if (targets.length === 0 || beginning.current) return;
    // one run is acted on at once, as its own Retry or Stop does, unless its retry would
    // wait queued (its agent paused or over its budget, or no worker of it): then the
    // question says so first
    beginning.current = true;
    const ask =
      targets.length > 1 ||
      (action === 'retry' && retryWaits(await readRetryWaits(client, targets)));
    beginning.current = false;
    if (ask) setConfirm(action);
    else void act(action, targets);
  };

  if (count === 0 && !job && !reading) return null;

  const why = canWrite ? undefined : needsScope('write');
  const noteId = `${id}-note`;
  const offerMatching =
    matching && !matched && allShown && hidden === 0 && matching.total > shown.length;
  const capNote = `at most ${SELECT_ALL_CAP.toLocaleString('en-US')} at a time`;

  return (
    <div ref={bar} className="bulk-bar" role="region" aria-label={label}>
      <div className="bulk-line">
        <span className="bulk-count" role="status">
          <strong>{plural(count, 'run')} selected</strong>
          {hidden > 0 && !job && !matched ? (
            <span className="muted">
              {' '}
              · {hidden.toLocaleString('en-US')} {where}
            </span>
          ) : null}
        </span>
        {job ? (
          <span className="bulk-progress">
            <progress
              max={job.total}
              value={job.done}
              aria-label={job.action === 'retry' ? 'Retrying runs' : 'Stopping runs'}
              aria-valuetext={`${job.done} of ${job.total}`}
            />
            <span className="muted" aria-hidden="true">
              {job.action === 'retry' ? 'Retrying' : 'Stopping'} {job.done.toLocaleString('en-US')}{' '}
              of {job.total.toLocaleString('en-US')}…
            </span>
            <button
              ref={cancelJob}
              type="button"
              className="btn btn-small"
              disabled={job.controller.signal.aborted}
              onClick={() => {
                job.controller.abort();
                setJob((j) => j && { ...j });
              }}
            >
              {job.controller.signal.aborted ? 'Cancelling…' : 'Cancel the rest'}
            </button>
          </span>
        ) : (
          <span className="bulk-actions">
            <BulkButton
              action="retry"
              plan={plan}
              why={why}
              describedBy={why ? noteId : undefined}
              onClick={() => void begin('retry')}
            />
            <BulkButton
              action="stop"
              plan={plan}
              why={why}
              describedBy={why ? noteId : undefined}
              onClick={() => void begin('stop')}
            />
            {count === 2 ? (
              // reading needs no write scope: two runs side by side, where they went apart
              <Link className="btn btn-small" to={comparePath(...compareIds(runs[0]!, runs[1]!))}>
                Compare
              </Link>
            ) : null}
            <button
              type="button"
              className="btn btn-small btn-ghost"
              onClick={() => {
                reading?.controller.abort();
                selection.clear();
                selection.headRef.current?.focus();
              }}
            >
              Clear
            </button>
          </span>
        )}
      </div>
      {why ? (
        <p id={noteId} className="scope-note bulk-note">
          {why} to retry or stop runs: this session&apos;s key can only read.
        </p>
      ) : null}
      {reading ? (
        <p className="bulk-note">
          <span role="status">
            Selecting the matching runs… {reading.read.toLocaleString('en-US')} of{' '}
            {reading.of.toLocaleString('en-US')}
          </span>{' '}
          <button type="button" className="link-btn" onClick={() => reading.controller.abort()}>
            Cancel
          </button>
        </p>
      ) : offerMatching && !job ? (
        <p className="bulk-note">
          All {plural(shown.length, 'run')} here are selected.{' '}
          <button type="button" className="link-btn" onClick={() => void selectMatching()}>
            {matching.total > SELECT_ALL_CAP || matching.capped
              ? `Select the first ${SELECT_ALL_CAP.toLocaleString('en-US')} of ${countText(matching.total, matching.capped)} matching`
              : `Select all ${plural(matching.total, 'matching run')}`}
          </button>
          {matching.total > SELECT_ALL_CAP || matching.capped ? (
            <span className="muted"> ({capNote})</span>
          ) : null}
        </p>
      ) : matched && !job ? (
        <p className="bulk-note">
          {count < matched.total || matched.capped
            ? `The first ${plural(count, 'matching run')} of ${countText(matched.total, matched.capped)} are selected (${capNote}): act on these, then select the rest.`
            : `All ${plural(count, 'matching run')} are selected.`}
        </p>
      ) : null}

      <dialog
        ref={dialog}
        className="dialog"
        aria-labelledby={`${id}-title`}
        aria-describedby={`${id}-what`}
        onClose={() => setConfirm(undefined)}
      >
        {confirm ? (
          <ConfirmBody action={confirm} plan={plan} titleId={`${id}-title`} whatId={`${id}-what`} />
        ) : null}
        <div className="dialog-actions">
          <button
            ref={cancelButton}
            type="button"
            className="btn"
            onClick={() => dialog.current?.close()}
          >
            Cancel
          </button>
          {confirm ? (
            <button
              ref={confirmButton}
              type="button"
              className={confirm === 'stop' ? 'btn btn-danger' : 'btn btn-primary'}
              disabled={!canWrite}
              onClick={() => {
                const targets = confirm === 'retry' ? plan.retry : plan.stop;
                dialog.current?.close();
                if (targets.length > 0) void act(confirm, targets);
              }}
            >
              {confirm === 'retry'
                ? `Retry ${plural(plan.retry.length, 'run')}`
                : `Stop ${plural(plan.stop.length, 'run')}`}
            </button>
          ) : null}
        </div>
      </dialog>
    </div>
  );
}

function BulkButton({
  action,
  plan,
  why,
  describedBy,
  onClick,
}: {
  action: BulkAction;
  plan: BulkPlan;
  why: string | undefined;
  describedBy: string | undefined;
  onClick: () => void;
}) {
  const targets = action === 'retry' ? plan.retry : plan.stop;
  const empty = targets.length === 0;
  return (
    <button
      type="button"
      className={action === 'stop' ? 'btn btn-small btn-danger-ghost' : 'btn btn-small btn-primary'}
      disabled={why !== undefined || empty}
      title={why ?? (empty ? emptyReason(action) : undefined)}
      aria-describedby={describedBy}
      onClick={onClick}
    >
      {action === 'retry' ? retryLabel(plan) : stopLabel(plan)}
    </button>
  );
}

/**
 * What Retry's confirmation says: the runs, the worker each retry waits for (and the agents
 * paused, over their budget or none serves now, whose retries would wait queued), and the
 * selected runs left alone.
 */
function RetryConfirmBody({
  plan,
  titleId,
  whatId,
}: {
  plan: BulkPlan;
  titleId: string;
  whatId: string;
}) {
  const agents = useQuery(agentsQuery());
  const workers = useQuery(workersQuery());
  const unserved = agentsWithoutWorker(plan.retry, agents.data, workers.data?.workers, Date.now());
  const paused = pausedAgents(plan.retry, agents.data);
  const over = overBudgetAgents(plan.retry, agents.data);
  const { retryActive: active, retrySucceeded: succeeded } = plan;
  const left = [
    succeeded > 0 ? `${plural(succeeded, 'selected run')} that succeeded` : '',
    active > 0 ? `${plural(active, 'selected run')} still queued or running` : '',
  ].filter(Boolean);
  return (
    <>
      <h2 id={titleId}>Retry {runsText(plan.retry, 'unsuccessful')}?</h2>
      <div id={whatId}>
        <p>
          Each gets a new queued run with the same input, for a worker of {agentsText(plan.retry)}{' '}
          to pick up.
        </p>
        {paused.length > 0 ? (
          <p className="bulk-warning" data-testid="bulk-agent-paused">
            {namesText(paused)} {paused.length === 1 ? 'is' : 'are'} paused:{' '}
            {paused.length === 1 ? 'its' : 'their'} retries wait queued until{' '}
            {paused.length === 1 ? 'it is' : 'they are'} resumed (
            <Link to={paused.length === 1 ? agentPath(paused[0]!) : '/'}>Agents</Link>).
          </p>
        ) : null}
        {over.length === 1 ? (
          <p className="bulk-warning" data-testid="bulk-agent-over-budget">
            {over[0]!.agentId} is over its budget ({overBudgetText(over[0]!)}): its retries wait
            queued until that falls below it or the budget is raised (
            <Link to={agentPath(over[0]!.agentId)}>Agents</Link>).
          </p>
        ) : over.length > 1 ? (
          // each one's figures would make a paragraph: the Agents page shows them
          <p className="bulk-warning" data-testid="bulk-agent-over-budget">
            {namesText(over.map((o) => o.agentId))} are over their budgets: their retries wait
            queued until what each cost in the last 24 hours falls below its budget or the budgets
            are raised (<Link to="/">Agents</Link>).
          </p>
        ) : null}
        {unserved.length > 0 ? (
          <p className="bulk-warning" data-testid="bulk-no-worker">
            No worker of {namesText(unserved)} is running now:{' '}
            {unserved.length === 1 ? 'its' : 'their'} retries wait queued until one asks for runs (
            <Link to="/workers">Workers</Link>).
          </p>
        ) : null}
        <p className="muted">
          A run retried already is not queued again: it is counted as already retried, and its retry
          is in the details.
          {left.length > 0
            ? ` ${left.join(' and ')} ${succeeded + active === 1 ? 'is' : 'are'} left alone.`
            : ''}
        </p>
      </div>
    </>
  );
}

/** What a confirmation says before acting on many runs: the count, then what happens. */
function ConfirmBody({
  action,
  plan,
  titleId,
  whatId,
}: {
  action: BulkAction;
  plan: BulkPlan;
  titleId: string;
  whatId: string;
}) {
  if (action === 'retry') return <RetryConfirmBody plan={plan} titleId={titleId} whatId={whatId} />;
  const queued = plan.stop.filter((r) => r.status === 'queued').length;
  const active = plan.stop.length - queued;
  const skipped = plan.stopSkipped;
  return (
    <>
      <h2 id={titleId}>Stop {runsText(plan.stop, 'active')}?</h2>
      <div id={whatId}>
        <p>
          {[
            queued > 0
              ? `${plural(queued, 'queued run')} ${queued === 1 ? 'is' : 'are'} cancelled at once`
              : '',
            active > 0
              ? `${plural(active, 'running run')} ${active === 1 ? 'is' : 'are'} asked to stop, and end${active === 1 ? 's' : ''} when ${active === 1 ? 'its' : 'their'} worker confirms`
              : '',
          ]
            .filter(Boolean)
            .join('; ')}
          .
        </p>
        {skipped > 0 ? (
          <p className="muted">
            {plural(skipped, 'selected run')} that ended or {skipped === 1 ? 'is' : 'are'} stopping
            already {skipped === 1 ? 'is' : 'are'} left alone.
          </p>
        ) : null}
      </div>
    </>
  );
}
