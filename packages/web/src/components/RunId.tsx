import { shortId } from '../lib/format';

/** How many of a long id's last characters stay on screen when it is cut. */
const TAIL = 8;

/**
 * A run id as a list shows it (a UUID by its last 8 characters, see `shortId`), cut in its
 * middle when its box is too narrow: ids a caller chose often differ only at their end
 * (`research-7-child-0`, `-child-1`...), which an ellipsis at the end would hide. The text
 * stays the whole id, for a copy and for a screen reader.
 * @example <RunIdText id="nightly-report-2026-12-04-attempt-2" />
 */
export function RunIdText({ id }: { id: string }) {
  const text = shortId(id);
  if (text.length <= TAIL + 4) return <>{text}</>;
  return (
    <span className="id-cut">
      <span className="id-cut-head">{text.slice(0, -TAIL)}</span>
      <span className="id-cut-tail">{text.slice(-TAIL)}</span>
    </span>
  );
}
