import { isHeldBack, runMoment, type Run, type Step } from '@runlog/core';
import { formatDuration, formatExact, formatRelative, isActive, runDuration } from '../lib/format';
import { useLiveNow, useNow } from '../lib/useNow';

/** "3 min ago", with the exact local time as a tooltip. */
export function RelativeTime({ iso }: { iso: string | null | undefined }) {
  const tick = useNow(10_000, Boolean(iso));
  if (!iso) return <span className="muted">—</span>;
  // the shared clock moves every 10 s: a run that started since would read "in 6 s"
  const now = Math.max(tick, Date.now());
  return (
    <time dateTime={iso} title={formatExact(iso)}>
      {formatRelative(iso, now)}
    </time>
  );
}

/**
 * When a run started, for the run lists; a run that never started says when it was queued
 * (or, recorded only by its end, when it ended) instead, so it does not read as started.
 * @example <RunStart run={run} /> // "3 min ago", "queued 3 min ago" or "starts in 10 min"
 */
export function RunStart({
  run,
}: {
  run: Pick<Run, 'status' | 'started_at' | 'queued_at' | 'ended_at' | 'created_at'>;
}) {
  const moment = runMoment(run);
  const { at } = moment;
  // queued to start later, or an automatic retry waiting its delay: when it starts, until then
  const tick = useNow(10_000, moment.label === 'queued');
  if (!moment.label) return <RelativeTime iso={at} />;
  const label =
    moment.label === 'queued' && isHeldBack(run, Math.max(tick, Date.now()))
      ? 'starts'
      : moment.label;
  return (
    <span className="muted" data-testid={`${label}-at`}>
      {label} <RelativeTime iso={at} />
    </span>
  );
}

/**
 * A run's duration, ticking every second while it runs; given the run's steps, a running
 * run never reads shorter than what its steps have recorded.
 * @example <RunDuration run={run} steps={run.steps} />
 */
export function RunDuration({
  run,
  steps,
}: {
  run: Pick<Run, 'status' | 'started_at' | 'ended_at' | 'duration_ms'>;
  steps?: readonly Pick<Step, 'started_at' | 'ended_at'>[];
}) {
  const live = isActive(run.status) && run.started_at !== null;
  const ms = runDuration(run, useLiveNow(live, run, steps));
  return (
    <span className={live ? 'ticking' : undefined} data-testid="duration">
      {run.status === 'queued' && ms === null ? (
        <span className="muted">waiting</span>
      ) : (
        formatDuration(ms)
      )}
    </span>
  );
}
