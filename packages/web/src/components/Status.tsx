import type { RunStatus } from '@runlog/core';
import { RUN_STATUS_META } from '../lib/format';

/** A status icon with its name for screen readers and as a tooltip. */
export function StatusIcon({ status }: { status: RunStatus }) {
  const meta = RUN_STATUS_META[status];
  return (
    <span
      className={`status-icon s-${status}`}
      role="img"
      aria-label={meta.label}
      title={meta.label}
    >
      {meta.icon}
    </span>
  );
}

/** Icon and label in a pill, for headers and cards. */
export function StatusBadge({ status }: { status: RunStatus }) {
  const meta = RUN_STATUS_META[status];
  return (
    <span className={`status-badge s-${status}`} data-status={status}>
      <span aria-hidden="true">{meta.icon}</span> {meta.label}
    </span>
  );
}
