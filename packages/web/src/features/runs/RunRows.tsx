import { useEffect } from 'react';
import { Link } from 'react-router-dom';
import { readableError, type Run } from '@runlog/core';
import { StatusIcon } from '../../components/Status';
import { RunIdText } from '../../components/RunId';
import { RunDuration, RunStart } from '../../components/Time';
import {
  RUN_STATUS_META,
  TRIGGER_LABELS,
  formatExact,
  formatTokens,
  isActive,
  runCost,
  shortId,
  UNPRICED_NOTE,
  usedNothing,
} from '../../lib/format';
import { RunMenu, runPath } from './RunActions';
import { ScoreSummaryChips } from '../scores/ScoreChips';

/** Tokens and cost: grey until the run finishes (they still grow while it runs). */
export function Usage({ run, field }: { run: Run; field: 'tokens' | 'cost' }) {
  const pending = isActive(run.status);
  // cancelled before it started: it used nothing, which 0 tokens and $0 would not say
  if (usedNothing(run))
    return (
      <span className="muted" title="never started">
        —
      </span>
    );
  if (field === 'tokens')
    return <span className={pending ? 'muted' : undefined}>{formatTokens(run.total_tokens)}</span>;
  const cost = runCost(run);
  return (
    <span
      className={pending || cost.unpriced ? 'muted' : undefined}
      title={cost.unpriced ? UNPRICED_NOTE : undefined}
    >
      {cost.text}
    </span>
  );
}

/** A row's checkbox: whether its run is selected, and what a click (with Shift) does. */
export interface RowSelect {
  checked: boolean;
  onChange: (on: boolean, range: boolean) => void;
}

/** A run's row in the compact tables (agent panel, Runs page), with a checkbox when `select`. */
export function RunRow({
  run,
  showAgent = false,
  select,
}: {
  run: Run;
  showAgent?: boolean;
  select?: RowSelect | undefined;
}) {
  // after Stop a run keeps running through its grace period: the row says it is ending
  const stopping = isActive(run.status) && run.cancel_requested_at !== null;
  return (
    <tr
      data-run-id={run.id}
      data-status={run.status}
      data-stopping={stopping || undefined}
      className={`run-row s-row-${run.status}${select?.checked ? ' selected' : ''}`}
    >
      {select ? (
        <td className="col-select">
          {/* the whole cell takes the click: a box alone is a small target on a phone */}
          <label className="select-hit">
            <input
              type="checkbox"
              checked={select.checked}
              aria-label={`Select run ${shortId(run.id)}`}
              onChange={(e) =>
                select.onChange(
                  e.currentTarget.checked,
                  (e.nativeEvent as Partial<MouseEvent>).shiftKey === true,
                )
              }
            />
          </label>
        </td>
      ) : null}
      <td className="col-status">
        <StatusIcon
          status={run.status}
          {...(stopping ? { label: `${RUN_STATUS_META[run.status].label}, stop requested` } : {})}
        />
      </td>
      {showAgent ? (
        <td className="col-agent">
          <span className="truncate" title={run.agent_id}>
            {run.agent_id}
          </span>
        </td>
      ) : null}
      <td className="col-id">
        <Link to={runPath(run)} className="mono truncate" title={run.id}>
          <RunIdText id={run.id} />
        </Link>
        {showAgent ? (
          // a phone has no room for the Agent column: the agent goes under the run's id
          <span className="run-agent-narrow truncate" title={run.agent_id}>
            {run.agent_id}
          </span>
        ) : null}
        {run.error ? (
          // what it failed with, under its id: a list of failed runs shows what they share
          <span
            className={`run-error-line truncate${run.status === 'cancelled' ? ' muted' : ''}`}
            title={readableError(run.error).message}
          >
            {readableError(run.error).message}
          </span>
        ) : null}
      </td>
      <td className="col-started">
        <RunStart run={run} />
      </td>
      <td className="col-duration num">
        {stopping ? (
          <span
            className="stopping"
            title={`Stop requested ${formatExact(run.cancel_requested_at)}`}
          >
            stopping…
          </span>
        ) : (
          <RunDuration run={run} />
        )}
      </td>
      <td className="col-trigger">{TRIGGER_LABELS[run.trigger]}</td>
      <td className="col-usage num">
        <Usage run={run} field="tokens" />
      </td>
      <td className="col-usage num">
        <Usage run={run} field="cost" />
      </td>
      <td className="col-scores">
        <ScoreSummaryChips scores={run.scores} max={2} />
      </td>
      <td className="col-menu">
        <RunMenu run={run} />
      </td>
    </tr>
  );
}

/** The header checkbox: all rows on screen, some (mixed), or none. */
export interface HeadSelect {
  checked: boolean;
  mixed: boolean;
  onChange: (on: boolean) => void;
  label: string;
  ref: React.RefObject<HTMLInputElement | null>;
}

export function RunTableHead({
  showAgent = false,
  select,
}: {
  showAgent?: boolean;
  select?: HeadSelect | undefined;
}) {
  const { ref, mixed } = select ?? {};
  useEffect(() => {
    if (ref?.current) ref.current.indeterminate = mixed === true;
  }, [ref, mixed]);
  return (
    <thead>
      <tr>
        {select ? (
          <th scope="col" className="col-select">
            <label className="select-hit">
              <input
                ref={select.ref}
                type="checkbox"
                checked={select.checked}
                aria-label={select.label}
                onChange={(e) => select.onChange(e.currentTarget.checked)}
              />
            </label>
          </th>
        ) : null}
        <th scope="col" className="col-status">
          <span className="sr-only">Status</span>
        </th>
        {showAgent ? (
          <th scope="col" className="col-agent">
            Agent
          </th>
        ) : null}
        <th scope="col" className="col-id">
          Run
        </th>
        <th scope="col" className="col-started">
          Started
        </th>
        <th scope="col" className="col-duration num">
          Duration
        </th>
        <th scope="col" className="col-trigger">
          Trigger
        </th>
        <th scope="col" className="col-usage num">
          Tokens
        </th>
        <th scope="col" className="col-usage num">
          Cost
        </th>
        <th scope="col" className="col-scores">
          Scores
        </th>
        <th scope="col" className="col-menu">
          <span className="sr-only">Actions</span>
        </th>
      </tr>
    </thead>
  );
}
