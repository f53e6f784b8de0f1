import type { RunStatus } from '@runlog/core';
import { RUN_STATUS_META } from '../lib/format';

// Drawn, not typed: some system fonts lack glyphs such as ⧗, and icons must look the same everywhere.
const PATHS: Record<RunStatus, React.ReactNode> = {
  queued: (
    <>
      <circle cx="8" cy="8" r="6" fill="none" stroke="currentColor" strokeWidth="1.6" />
      <path
        d="M8 4.6V8l2.3 1.6"
        fill="none"
        stroke="currentColor"
        strokeWidth="1.6"
        strokeLinecap="round"
      />
    </>
  ),
  running: <path d="M5 3.2v9.6L13 8z" fill="currentColor" />,
  succeeded: (
    <path
      d="M3.2 8.4l3 3L12.8 4.8"
      fill="none"
      stroke="currentColor"
      strokeWidth="2.2"
      strokeLinecap="round"
      strokeLinejoin="round"
    />
  ),
  failed: (
    <path
      d="M4 4l8 8M12 4l-8 8"
      fill="none"
      stroke="currentColor"
      strokeWidth="2.2"
      strokeLinecap="round"
    />
  ),
  cancelled: (
    <>
      <circle cx="8" cy="8" r="6" fill="none" stroke="currentColor" strokeWidth="1.6" />
      <path d="M4 12L12 4" stroke="currentColor" strokeWidth="1.6" />
    </>
  ),
  timed_out: (
    <path
      d="M4 2.5h8M4 13.5h8M5 2.5c0 3 3 3.8 3 5.5S5 10.5 5 13.5M11 2.5c0 3-3 3.8-3 5.5s3 2.5 3 5.5"
      fill="none"
      stroke="currentColor"
      strokeWidth="1.5"
      strokeLinecap="round"
    />
  ),
};

function Glyph({ status }: { status: RunStatus }) {
  return (
    <svg viewBox="0 0 16 16" width="14" height="14" aria-hidden="true" focusable="false">
      {PATHS[status]}
    </svg>
  );
}

/** A status icon with its name for screen readers and as a tooltip. */
export function StatusIcon({ status, label }: { status: RunStatus; label?: string }) {
  const text = label ?? RUN_STATUS_META[status].label;
  return (
    <span className={`status-icon s-${status}`} role="img" aria-label={text} title={text}>
      <Glyph status={status} />
    </span>
  );
}

/** Icon and label in a pill, for headers and cards. */
export function StatusBadge({ status }: { status: RunStatus }) {
  return (
    <span className={`status-badge s-${status}`} data-status={status}>
      <Glyph status={status} /> {RUN_STATUS_META[status].label}
    </span>
  );
}

/** The bare icon, for chips and legends that carry the label in text. */
export { Glyph as StatusGlyph };
