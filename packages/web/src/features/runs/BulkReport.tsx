import { useEffect, useId, useRef, useSyncExternalStore } from 'react';
import { Link } from 'react-router-dom';
import { RunIdText } from '../../components/RunId';
import { focusIfLost } from '../../components/focus';
import { runPath } from './RunActions';
import {
  countResults,
  countsText,
  plural,
  statusWord,
  type BulkAction,
  type BulkOutcome,
} from './bulk';

/** What a pass of Retry or Stop over many runs came to, run by run. */
export interface BulkReport {
  action: BulkAction;
  outcomes: BulkOutcome[];
}

let shown: BulkReport | undefined;
const listeners = new Set<() => void>();

/**
 * Opens the report of a pass: which runs failed and why, first, then what the others came to.
 * Its dialog lives beside the toasts, so a report opens from any page the user went on to.
 */
export function showBulkReport(report: BulkReport): void {
  shown = report;
  listeners.forEach((l) => l());
}

function closeReport() {
  shown = undefined;
  listeners.forEach((l) => l());
  // the toast that opened it may have timed out meanwhile: the keyboard goes on from the page
  focusIfLost(document.getElementById('main'));
}

/** The headings of a report's groups, failures first: what needs the reader. */
const GROUPS: { result: BulkOutcome['result']; title: string; open: boolean }[] = [
  { result: 'failed', title: 'Failed', open: true },
  { result: 'not_sent', title: 'Not sent (the pass was cancelled first)', open: true },
  { result: 'queued', title: 'Queued', open: false },
  { result: 'already', title: 'Already retried (not queued again)', open: false },
  { result: 'cancelled', title: 'Cancelled', open: false },
  { result: 'stopping', title: 'Stop requested', open: false },
  { result: 'ended', title: 'Had ended before the stop reached it', open: false },
];

function OutcomeLine({ outcome, onOpen }: { outcome: BulkOutcome; onOpen: () => void }) {
  const run = outcome.run;
  return (
    <li>
      <span className="bulk-report-run">
        <Link to={runPath(run)} className="mono truncate" title={run.id} onClick={onOpen}>
          <RunIdText id={run.id} />
        </Link>
        <span className="muted truncate" title={run.agent_id}>
          {run.agent_id}
        </span>
      </span>
      {outcome.result === 'failed' ? (
        <span className="error-text bulk-report-why">{outcome.error}</span>
      ) : outcome.result === 'queued' || outcome.result === 'already' ? (
        <span className="bulk-report-why">
          →{' '}
          <Link to={runPath(outcome.to)} className="mono" title={outcome.to.id} onClick={onOpen}>
            <RunIdText id={outcome.to.id} />
          </Link>{' '}
          <span className="muted">
            (attempt {outcome.to.attempt}, {statusWord(outcome.to.status)})
          </span>
        </span>
      ) : null}
    </li>
  );
}

/** The report `showBulkReport` opens, as a modal dialog; mounted once, beside the toasts. */
export function BulkReportDialog() {
  const report = useSyncExternalStore(
    (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    () => shown,
  );
  const dialog = useRef<HTMLDialogElement>(null);
  const close = useRef<HTMLButtonElement>(null);
  const id = useId();
  useEffect(() => {
    const d = dialog.current;
    if (!report || !d) return;
    if (!d.open) d.showModal();
    close.current?.focus();
  }, [report]);

  const counts = report ? countResults(report.outcomes) : undefined;
  return (
    <dialog
      ref={dialog}
      className="dialog bulk-report"
      aria-labelledby={`${id}-title`}
      onClose={closeReport}
    >
      {report && counts ? (
        <>
          <h2 id={`${id}-title`}>
            {report.action === 'retry' ? 'Retry' : 'Stop'} of{' '}
            {plural(report.outcomes.length, 'run')}
          </h2>
          <p className="muted">{countsText(report.action, report.outcomes)}</p>
          {GROUPS.filter((g) => counts[g.result] > 0).map((g) => (
            <details key={g.result} open={g.open} className="bulk-report-group">
              <summary>
                {g.title}: {counts[g.result].toLocaleString('en-US')}
              </summary>
              <ul className="bulk-report-list">
                {report.outcomes
                  .filter((o) => o.result === g.result)
                  .map((o) => (
                    <OutcomeLine
                      key={o.run.id}
                      outcome={o}
                      onOpen={() => dialog.current?.close()}
                    />
                  ))}
              </ul>
            </details>
          ))}
          <div className="dialog-actions">
            <button
              ref={close}
              type="button"
              className="btn"
              onClick={() => dialog.current?.close()}
            >
              Close
            </button>
          </div>
        </>
      ) : null}
    </dialog>
  );
}
