import { useRef, useState, type ReactNode } from 'react';
import { flushSync } from 'react-dom';
import { isTruncatedJson, type TruncatedJson } from '@runlog/core';
import { copyText } from './Toasts';

const CHILD_PAGE = 200;
const LONG_STRING = 2000;
/** Below the first two levels, an object or array this small opens by itself (a chat message). */
const SMALL_ENTRIES = 12;
const SMALL_CHARS = 4000;

/** Whether a node reads at a glance: an LLM call's messages show without a click each. */
function isSmall(value: object): boolean {
  const n = Array.isArray(value) ? value.length : Object.keys(value).length;
  return n <= SMALL_ENTRIES && JSON.stringify(value).length <= SMALL_CHARS;
}

function summary(value: unknown): string {
  if (Array.isArray(value)) return `[${value.length} item${value.length === 1 ? '' : 's'}]`;
  const n = Object.keys(value as object).length;
  return `{${n} key${n === 1 ? '' : 's'}}`;
}

function Scalar({ value }: { value: unknown }) {
  const [full, setFull] = useState(false);
  const text = useRef<HTMLSpanElement>(null);
  if (value === null) return <span className="j-null">null</span>;
  if (typeof value === 'string') {
    const long = value.length > LONG_STRING && !full;
    return (
      <span className="j-str" ref={text} tabIndex={full ? -1 : undefined}>
        “{long ? value.slice(0, LONG_STRING) : value}”
        {long ? (
          <button
            type="button"
            className="link-btn"
            onClick={() => {
              // the button goes as the text shows whole: the focus goes to the text it opened
              flushSync(() => setFull(true));
              text.current?.focus();
            }}
          >
            … show all {value.length.toLocaleString()} characters
          </button>
        ) : null}
      </span>
    );
  }
  if (typeof value === 'number') return <span className="j-num">{String(value)}</span>;
  if (typeof value === 'boolean') return <span className="j-bool">{String(value)}</span>;
  return <span>{String(value)}</span>;
}

/** What a viewer shows for a top-level key's value instead of the value alone (a link around it). */
export type TopLevelValue = (key: string, value: unknown, shown: ReactNode) => ReactNode;

function Node({
  name,
  value,
  depth,
  top,
}: {
  name?: string;
  value: unknown;
  depth: number;
  /** Given to the root's children only. */
  top?: TopLevelValue | undefined;
}) {
  const isObj = value !== null && typeof value === 'object';
  const [open, setOpen] = useState(() => depth < 2 || (isObj && isSmall(value)));
  const [limit, setLimit] = useState(CHILD_PAGE);
  const label = name !== undefined ? <span className="j-key">{name}: </span> : null;
  if (!isObj) {
    const shown = <Scalar value={value} />;
    return (
      <div className="j-row">
        {label}
        {top && name !== undefined ? top(name, value, shown) : shown}
      </div>
    );
  }
  const entries: [string, unknown][] = Array.isArray(value)
    ? value.map((v, i) => [String(i), v])
    : Object.entries(value as Record<string, unknown>);
  return (
    <div className="j-row">
      <button
        type="button"
        className="j-toggle"
        aria-expanded={open}
        onClick={() => setOpen((o) => !o)}
      >
        <span aria-hidden="true">{open ? '▾' : '▸'}</span> {label}
        <span className="muted">{summary(value)}</span>
      </button>
      {open ? (
        <div className="j-children">
          {entries.slice(0, limit).map(([k, v]) => (
            <Node
              key={k}
              name={k}
              value={v}
              depth={depth + 1}
              top={depth === 0 && !Array.isArray(value) ? top : undefined}
            />
          ))}
          {entries.length > limit ? (
            <button
              type="button"
              className="link-btn"
              onClick={() => setLimit((l) => l + CHILD_PAGE)}
            >
              Show {Math.min(CHILD_PAGE, entries.length - limit)} more of {entries.length - limit}
            </button>
          ) : null}
        </div>
      ) : null}
    </div>
  );
}

/** 1.6 MB, 12 kB, 900 bytes. */
function formatBytes(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${Math.round(n / 1e3)} kB`;
  return `${n} bytes`;
}

function Truncated({ value }: { value: TruncatedJson }) {
  return (
    <div className="j-truncated">
      <p className="muted">
        Truncated: {formatBytes(value.original_size)} originally; showing the first part
      </p>
      <pre className="mono">{value.preview}</pre>
    </div>
  );
}

/**
 * A collapsible view of a JSON payload with a copy button. Payload text is rendered as
 * React text nodes only: never as HTML.
 */
export function JsonViewer({
  label,
  value,
  defaultOpen = true,
  topLevelValue,
}: {
  label: string;
  value: unknown;
  defaultOpen?: boolean;
  /** How a top-level key's scalar value shows, given the value as shown (a run's metadata links it). */
  topLevelValue?: TopLevelValue;
}) {
  const [open, setOpen] = useState(defaultOpen);
  const empty = value === null || value === undefined;
  const copy = async () => {
    // a truncated payload copies the part that was kept, not the marker object around it
    const truncated = isTruncatedJson(value);
    const text = truncated
      ? value.preview
      : typeof value === 'string'
        ? value
        : JSON.stringify(value, null, 2);
    await copyText(
      text ?? '',
      truncated ? `${label} copied: the first part that was kept` : `${label} copied`,
    );
  };
  return (
    <section className="json" aria-label={label}>
      <div className="json-head">
        <button
          type="button"
          className="j-toggle json-title"
          aria-expanded={open}
          onClick={() => setOpen((o) => !o)}
        >
          <span aria-hidden="true">{open ? '▾' : '▸'}</span> {label}
        </button>
        {!empty ? (
          <button
            type="button"
            className="btn btn-small btn-ghost"
            onClick={() => void copy()}
            aria-label={`Copy ${label}`}
          >
            Copy
          </button>
        ) : null}
      </div>
      {open ? (
        <div className="json-body">
          {empty ? (
            <span className="muted">none</span>
          ) : isTruncatedJson(value) ? (
            <Truncated value={value} />
          ) : (
            <Node value={value} depth={0} top={topLevelValue} />
          )}
        </div>
      ) : null}
    </section>
  );
}
