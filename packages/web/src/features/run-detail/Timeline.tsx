import { useEffect, useMemo, useRef, useState, type KeyboardEvent } from 'react';
import { useLocation } from 'react-router-dom';
import { useWindowVirtualizer } from '@tanstack/react-virtual';
import { orderStepTree, type Run, type Step } from '@runlog/core';
import { JsonViewer } from '../../components/JsonViewer';
import {
  STEP_TYPE_LABELS,
  formatCost,
  formatDuration,
  formatExact,
  formatTokens,
  stepDuration,
} from '../../lib/format';
import { useLiveNow } from '../../lib/useNow';
import { useDocumentTop } from '../../lib/useDocumentTop';

const ms = (iso: string | null) => (iso ? Date.parse(iso) : null);

/** The shared time axis: from the run's start to its end (or now, while it runs). */
export function timeAxis(
  run: Run,
  steps: readonly Step[],
  now: number,
): { t0: number; t1: number } {
  let t0 = ms(run.started_at) ?? ms(run.queued_at) ?? Infinity;
  let t1 =
    ms(run.ended_at) ?? (run.status === 'running' || run.status === 'queued' ? now : -Infinity);
  for (const s of steps) {
    const a = ms(s.started_at) ?? ms(s.ended_at);
    const b = ms(s.ended_at) ?? (s.status === 'running' ? now : a);
    if (a !== null) t0 = Math.min(t0, a);
    if (b !== null) t1 = Math.max(t1, b);
  }
  if (!Number.isFinite(t0)) t0 = now;
  if (!Number.isFinite(t1) || t1 <= t0) t1 = t0 + 1;
  return { t0, t1 };
}

function ticks(span: number): number[] {
  const steps = [
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 15_000, 30_000, 60_000, 120_000,
    300_000, 600_000, 1_800_000, 3_600_000,
  ];
  const step = steps.find((s) => span / s <= 6) ?? Math.ceil(span / 6 / 3_600_000) * 3_600_000;
  const out: number[] = [];
  for (let t = 0; t <= span; t += step) out.push(t);
  return out;
}

function StepDetails({ step }: { step: Step }) {
  return (
    <div className="step-details">
      {/* the row cuts a long name to fit its column: the opened step repeats it whole */}
      <p className="step-title">
        <span className={`type-chip t-${step.type}`}>{STEP_TYPE_LABELS[step.type]}</span>{' '}
        <span className="step-name">{step.name ?? step.type}</span>
      </p>
      <dl className="facts facts-small">
        <div>
          <dt>Started</dt>
          <dd>{formatExact(step.started_at) || '—'}</dd>
        </div>
        <div>
          <dt>Duration</dt>
          <dd>{formatDuration(step.duration_ms)}</dd>
        </div>
        {step.time_to_first_token_ms !== null ? (
          <div>
            <dt>First token</dt>
            <dd title={formatExact(step.first_token_at)}>
              after {formatDuration(step.time_to_first_token_ms)}
            </dd>
          </div>
        ) : null}
        {step.model ? (
          <div>
            <dt>Model</dt>
            <dd>
              {step.model}
              {step.provider ? ` (${step.provider})` : ''}
            </dd>
          </div>
        ) : null}
        {step.input_tokens !== null || step.output_tokens !== null ? (
          <div>
            <dt>Tokens in / out</dt>
            <dd>
              {formatTokens(step.input_tokens)} / {formatTokens(step.output_tokens)}
            </dd>
          </div>
        ) : null}
        {step.cost_usd !== null ? (
          <div>
            <dt>Cost</dt>
            <dd>{formatCost(step.cost_usd)}</dd>
          </div>
        ) : null}
        <div>
          <dt>Step id</dt>
          <dd className="mono">{step.id}</dd>
        </div>
      </dl>
      {step.error ? <JsonViewer label="Error" value={step.error} /> : null}
      <JsonViewer label="Input" value={step.input} />
      <JsonViewer label="Output" value={step.output} />
      {Object.keys(step.metadata).length > 0 ? (
        <JsonViewer label="Metadata" value={step.metadata} defaultOpen={false} />
      ) : null}
    </div>
  );
}

/** How many levels of nesting a step's label shows by its indent. */
const MAX_INDENT = 12;

/**
 * One bar per step on a shared time axis, nested under its parent, coloured by type;
 * failed steps marked, running ones growing live. Rows are virtualised (runs can have
 * thousands of steps) and expand to show the step's input, output and error.
 */
export function Timeline({ run, steps }: { run: Run; steps: readonly Step[] }) {
  const live = run.status === 'running' || steps.some((s) => s.status === 'running');
  // a step recorded since the last tick must not end before "now": see liveNow
  const now = useLiveNow(live, run, steps);
  const placed = useMemo(() => orderStepTree(steps), [steps]);
  const { t0, t1 } = timeAxis(run, steps, now);
  const span = t1 - t0;
  const [open, setOpen] = useState<string | null>(null);

  const listRef = useRef<HTMLDivElement>(null);
  const offset = useDocumentTop(listRef);
  const virtualizer = useWindowVirtualizer({
    count: placed.length,
    estimateSize: () => 30,
    overscan: 12,
    scrollMargin: offset,
    getItemKey: (i) => placed[i]?.step.id ?? i,
  });

  // in a long run the failed steps are what a reader looks for: one press opens the next
  const failed = useMemo(
    () => placed.flatMap((p, i) => (p.step.status === 'failed' ? [i] : [])),
    [placed],
  );
  const openIndex = open === null ? -1 : placed.findIndex((p) => p.step.id === open);
  /** Opens the step at `index` and brings it on screen; `focus` moves the keyboard there. */
  const reveal = (index: number, focus = false) => {
    setOpen(placed[index]!.step.id);
    virtualizer.scrollToIndex(index, { align: 'center' });
    // an opened step is taller than the screen on a phone: centred, its name went up under
    // the sticky header. Once drawn, its top goes just below the header and the axis row.
    requestAnimationFrame(() => {
      const item = listRef.current?.querySelector<HTMLElement>(`[data-index="${index}"]`);
      item?.scrollIntoView({ block: 'start' });
      if (focus) item?.querySelector<HTMLElement>('.tl-row')?.focus({ preventScroll: true });
    });
  };
  // what a press opened, said to a screen reader: the button keeps the focus, for the next press
  const [announced, setAnnounced] = useState('');
  const nextFailed = () => {
    const index = failed.find((i) => i > openIndex) ?? failed[0]!;
    reveal(index);
    const { step } = placed[index]!;
    setAnnounced(
      `Failed step ${failed.indexOf(index) + 1} of ${failed.length} opened: ${step.name ?? step.type}`,
    );
  };
  // Tab from the button goes to the failed step it opened, not to the first row drawn (the
  // steps drawn around it, well before it in a long run)
  const tabToOpened = (event: KeyboardEvent<HTMLButtonElement>) => {
    if (event.key !== 'Tab' || event.shiftKey || placed[openIndex]?.step.status !== 'failed')
      return;
    const row = listRef.current?.querySelector<HTMLElement>(`[data-index="${openIndex}"] .tl-row`);
    if (!row) return;
    event.preventDefault();
    row.focus();
  };

  // a link to `#step-<id>` (a score's step) opens that step, once per visit of the link; a
  // step not loaded yet is opened when it comes
  const location = useLocation();
  const linked = useRef<string | null>(null);
  const target = /^#step-(.+)$/.exec(location.hash)?.[1];
  const targetIndex = target
    ? placed.findIndex((p) => p.step.id === decodeURIComponent(target))
    : -1;
  useEffect(() => {
    if (targetIndex < 0 || linked.current === location.key) return;
    linked.current = location.key;
    reveal(targetIndex, true);
    // once per visit of the link: `reveal`, new each render, is left out on purpose
  }, [location.key, targetIndex]);

  return (
    <div className="timeline" data-testid="timeline">
      <div className="tl-axis">
        <div className="tl-label">
          {/* in the sticky axis row, so it stays in reach while the steps scroll */}
          {failed.length > 0 && placed.length > 20 ? (
            <button
              type="button"
              className="btn btn-small btn-ghost tl-next-failed"
              onClick={nextFailed}
              onKeyDown={tabToOpened}
              title={`${failed.length} of ${placed.length} steps failed`}
            >
              Next failed step ({failed.length})
            </button>
          ) : null}
          <span className="sr-only" role="status" data-testid="next-failed-news">
            {announced}
          </span>
        </div>
        <div className="tl-track" aria-hidden="true">
          {ticks(span).map((t) => (
            <span
              key={t}
              // a label near the end ends at its tick, inside the card, rather than centred on it
              className={t / span > 0.9 ? 'tl-tick tl-tick-end' : 'tl-tick'}
              style={{ left: `${(t / span) * 100}%` }}
            >
              {formatDuration(t)}
            </span>
          ))}
        </div>
      </div>
      <div
        ref={listRef}
        role="list"
        aria-label="Steps"
        style={{ height: virtualizer.getTotalSize(), position: 'relative' }}
      >
        {virtualizer.getVirtualItems().map((item) => {
          const { step, depth } = placed[item.index]!;
          const start = ms(step.started_at) ?? ms(step.ended_at) ?? t0;
          const end = ms(step.ended_at) ?? (step.status === 'running' ? now : start);
          const left = ((start - t0) / span) * 100;
          const width = Math.max(0.4, ((end - start) / span) * 100);
          // a streamed answer's first token: a mark on its bar, the wait before it lighter
          const firstToken = ms(step.first_token_at);
          const waited =
            firstToken !== null && end > start
              ? Math.min(1, Math.max(0, (firstToken - start) / (end - start)))
              : null;
          const isOpen = open === step.id;
          const dur = stepDuration(step, now);
          return (
            <div
              key={item.key}
              role="listitem"
              data-index={item.index}
              ref={virtualizer.measureElement}
              className={`tl-item${isOpen ? ' open' : ''}`}
              style={{
                position: 'absolute',
                top: 0,
                left: 0,
                width: '100%',
                transform: `translateY(${item.start - virtualizer.options.scrollMargin}px)`,
              }}
            >
              <button
                type="button"
                className={`tl-row st-${step.status}`}
                aria-expanded={isOpen}
                onClick={() => setOpen(isOpen ? null : step.id)}
                data-step-id={step.id}
              >
                <span
                  className="tl-label"
                  style={{ paddingLeft: `${8 + Math.min(depth, MAX_INDENT) * 14}px` }}
                >
                  {/* past the indent a label has room for, the depth is written out */}
                  {depth > MAX_INDENT ? (
                    <span className="tl-depth muted" title={`nested ${depth} levels deep`}>
                      {depth}
                    </span>
                  ) : null}
                  <span className={`type-chip t-${step.type}`}>{STEP_TYPE_LABELS[step.type]}</span>
                  <span className="tl-name truncate" title={step.name ?? step.type}>
                    {step.name ?? step.type}
                  </span>
                  {step.status === 'failed' ? (
                    <span className="step-failed" role="img" aria-label="failed">
                      ✖
                    </span>
                  ) : step.status === 'running' ? (
                    // the eye sees it by its bar growing; a screen reader by the row's name
                    <span className="sr-only">running</span>
                  ) : null}
                  <span className="tl-dur num">{formatDuration(dur)}</span>
                </span>
                <span className="tl-track">
                  <span
                    className={`tl-bar t-${step.type}${step.status === 'running' ? ' growing' : ''}${step.status === 'failed' ? ' failed' : ''}`}
                    style={{ left: `${left}%`, width: `${Math.min(width, 100 - left)}%` }}
                  >
                    {waited !== null ? (
                      <span className="tl-first-token" style={{ width: `${waited * 100}%` }} />
                    ) : null}
                  </span>
                </span>
              </button>
              {isOpen ? <StepDetails step={step} /> : null}
            </div>
          );
        })}
      </div>
    </div>
  );
}
