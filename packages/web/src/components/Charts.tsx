import { useCallback, useId, useRef, useState } from 'react';
import { formatDuration } from '../lib/format';

const NARROW_W = 640;
const H = 180;
const PAD = { l: 54, r: 8, t: 8, b: 22 };
/** About half the width of a time label ("01:00 PM") at the axis font size. */
const LABEL_HALF_W = 24;

/** How an axis counts: whole numbers, any decimal (rates, dollars) or milliseconds. */
export type Scale = 'count' | 'decimal' | 'duration';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
// durations tick at steps a clock reads as round
const DURATION_STEPS = [
  SECOND,
  5 * SECOND,
  10 * SECOND,
  30 * SECOND,
  MINUTE,
  5 * MINUTE,
  10 * MINUTE,
  30 * MINUTE,
  HOUR,
  2 * HOUR,
  6 * HOUR,
  12 * HOUR,
  24 * HOUR,
];
const MAX_INTERVALS = 4;

/** The smallest of 1, 2 and 5 times a power of ten that is at least `v`. */
function decimalStep(v: number): number {
  const p = 10 ** Math.floor(Math.log10(v));
  const n = v / p;
  return (n <= 1 ? 1 : n <= 2 ? 2 : n <= 5 ? 5 : 10) * p;
}

function tickStep(max: number, scale: Scale): number {
  const rough = max / MAX_INTERVALS;
  if (scale === 'duration' && rough > 500) {
    return DURATION_STEPS.find((s) => s >= rough) ?? decimalStep(rough / (24 * HOUR)) * 24 * HOUR;
  }
  const step = decimalStep(rough);
  return scale === 'count' ? Math.max(1, step) : step;
}

/**
 * Axis ticks from 0 at a round step up to the first one at or above `max`, so each tick
 * sits exactly at the value its label shows.
 * @example axisTicks(7, 'count') // [0, 2, 4, 6, 8]
 */
export function axisTicks(max: number, scale: Scale): number[] {
  const unit = scale === 'duration' ? SECOND : 1;
  const step = tickStep(max > 0 ? max : unit, scale);
  const count = Math.max(1, Math.ceil((max > 0 ? max : unit) / step - 1e-9));
  // toPrecision drops float noise (0.1 * 3) so labels read round
  return Array.from({ length: count + 1 }, (_, i) => Number((i * step).toPrecision(12)));
}

/**
 * A duration axis tick: as round as the ticks are, so it fits beside the axis where a figure's
 * own form ("30 m 00 s", "24 h 00 m") ran past the chart's edge.
 * @example [30 * MINUTE, 90 * MINUTE, 24 * HOUR, 60 * HOUR].map(durationTick) // ['30 m', '1 h 30 m', '24 h', '2 d 12 h']
 */
export function durationTick(ms: number): string {
  if (ms < MINUTE) return formatDuration(ms);
  const units: [string, number][] =
    ms >= 48 * HOUR
      ? [
          ['d', 24 * HOUR],
          ['h', HOUR],
        ]
      : [
          ['h', HOUR],
          ['m', MINUTE],
          ['s', SECOND],
        ];
  const parts: string[] = [];
  let rest = ms;
  for (const [unit, size] of units) {
    const n = Math.floor(rest / size);
    if (n > 0) parts.push(`${n} ${unit}`);
    rest -= n * size;
  }
  return parts.join(' ');
}

/**
 * A bucket's name in the viewer's time: an hour, or a day by its date (day buckets are the
 * viewer's own days: the Stats page asks for them in the browser's time zone).
 */
export function bucketLabel(t: string, bucket: 'hour' | 'day', long = false): string {
  const d = new Date(t);
  if (bucket === 'hour')
    return long
      ? d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' })
      : d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
  return long
    ? d.toLocaleDateString(undefined, { dateStyle: 'medium' })
    : d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
}

/**
 * A chart drawn at its box's own width, so its text stays at its CSS size on a phone as on a
 * wide screen (a fixed viewBox scaled down to 340 px made 10 px labels 3 px). `fallback` is
 * the width drawn before the first measure.
 */
function useChartWidth(fallback: number): [(el: SVGSVGElement | null) => void, number] {
  const [width, setWidth] = useState(fallback);
  const observer = useRef<ResizeObserver | null>(null);
  const ref = useCallback((el: SVGSVGElement | null) => {
    observer.current?.disconnect();
    observer.current = null;
    if (!el || typeof ResizeObserver === 'undefined') return;
    const measure = (w: number) => {
      if (w > 0) setWidth(Math.max(240, Math.round(w)));
    };
    measure(el.getBoundingClientRect().width);
    observer.current = new ResizeObserver(([entry]) => measure(entry?.contentRect.width ?? 0));
    observer.current.observe(el);
  }, []);
  return [ref, width];
}

/** Time labels under the bars: as many as fit, about one per 64 px of plot. */
function xLabels(
  times: string[],
  bucket: 'hour' | 'day',
  plotWidth: number,
): { i: number; text: string }[] {
  const fit = Math.max(2, Math.min(8, Math.floor(plotWidth / 64)));
  const every = Math.max(1, Math.ceil(times.length / fit));
  return times
    .map((t, i) => ({ i, t }))
    .filter(({ i }) => i % every === 0)
    .map(({ i, t }) => ({ i, text: bucketLabel(t, bucket) }));
}

function Frame({
  W,
  ticks,
  format,
  children,
  labels,
  n,
}: {
  W: number;
  ticks: number[];
  format: (v: number) => string;
  children: React.ReactNode;
  labels: { i: number; text: string }[];
  n: number;
}) {
  const ih = H - PAD.t - PAD.b;
  const iw = W - PAD.l - PAD.r;
  return (
    <>
      {ticks.map((t) => {
        const y = PAD.t + ih * (1 - t / (ticks.at(-1) ?? 1));
        return (
          <g key={t}>
            <line className="grid" x1={PAD.l} x2={W - PAD.r} y1={y} y2={y} />
            <text className="axis" x={PAD.l - 6} y={y + 4} textAnchor="end">
              {format(t)}
            </text>
          </g>
        );
      })}
      {labels.map(({ i, text }) => {
        // a label centred on the last bucket would run past the edge: it ends there instead
        const x = PAD.l + (iw / n) * (i + 0.5);
        const end = x + LABEL_HALF_W > W;
        return (
          <text
            key={i}
            className="axis"
            x={end ? W - 2 : x}
            y={H - 6}
            textAnchor={end ? 'end' : 'middle'}
          >
            {text}
          </text>
        );
      })}
      {children}
    </>
  );
}

export interface Stack {
  key: string;
  label: string;
  className: string;
}

/**
 * A chart's figures as a table for screen readers, which read a chart drawn as an image by its
 * name alone (its hover titles reach neither them nor the keyboard): one row per bucket, one
 * column per series.
 */
function ChartTable({
  label,
  times,
  bucket,
  columns,
  format,
}: {
  label: string;
  times: string[];
  bucket: 'hour' | 'day';
  columns: { label: string; values: (number | null)[] }[];
  format: (v: number) => string;
}) {
  return (
    // in a box: a table is as tall as its rows, whatever height it is given
    <div className="sr-only">
      <table>
        <caption>{label}</caption>
        <thead>
          <tr>
            <th scope="col">{bucket === 'hour' ? 'Hour' : 'Day'}</th>
            {columns.map((c) => (
              <th key={c.label} scope="col">
                {c.label}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {times.map((t, i) => (
            <tr key={t}>
              <th scope="row">{bucketLabel(t, bucket, true)}</th>
              {columns.map((c) => {
                const v = c.values[i] ?? null;
                return <td key={c.label}>{v === null ? 'no data' : format(v)}</td>;
              })}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/**
 * Bars over time, each stacked by `stacks`; one <title> per segment for hover detail, and the
 * figures as a table for screen readers.
 */
export function StackedBars({
  label,
  times,
  bucket,
  stacks,
  values,
  format = (v) => String(Math.round(v)),
  scale = 'count',
  wide = false,
}: {
  label: string;
  times: string[];
  bucket: 'hour' | 'day';
  stacks: Stack[];
  values: Record<string, number>[];
  format?: (v: number) => string;
  scale?: Scale;
  /** Spans the whole grid: drawn twice as wide until its box is measured. */
  wide?: boolean;
}) {
  const [ref, W] = useChartWidth(wide ? NARROW_W * 2 : NARROW_W);
  const n = Math.max(1, times.length);
  const totals = values.map((v) => stacks.reduce((s, k) => s + (v[k.key] ?? 0), 0));
  const ticks = axisTicks(Math.max(0, ...totals), scale);
  const max = ticks.at(-1) ?? 1;
  const ih = H - PAD.t - PAD.b;
  const iw = W - PAD.l - PAD.r;
  const bw = (iw / n) * 0.72;
  return (
    <>
      <svg ref={ref} className="chart" viewBox={`0 0 ${W} ${H}`} role="img" aria-label={label}>
        <Frame
          W={W}
          ticks={ticks}
          format={scale === 'duration' ? durationTick : format}
          labels={xLabels(times, bucket, iw)}
          n={n}
        >
          {values.map((v, i) => {
            let y = PAD.t + ih;
            const x = PAD.l + (iw / n) * i + (iw / n - bw) / 2;
            return (
              <g key={times[i]}>
                {stacks.map((s) => {
                  const h = ((v[s.key] ?? 0) / max) * ih;
                  if (h <= 0) return null;
                  y -= h;
                  return (
                    <rect key={s.key} className={s.className} x={x} y={y} width={bw} height={h}>
                      <title>{`${bucketLabel(times[i] ?? '', bucket, true)} · ${s.label}: ${format(v[s.key] ?? 0)}`}</title>
                    </rect>
                  );
                })}
              </g>
            );
          })}
        </Frame>
      </svg>
      <ChartTable
        label={label}
        times={times}
        bucket={bucket}
        format={format}
        columns={stacks.map((s) => ({ label: s.label, values: values.map((v) => v[s.key] ?? 0) }))}
      />
    </>
  );
}

export interface Line {
  label: string;
  className: string;
  values: (number | null)[];
}

/** Whether a point has no neighbour to draw a line to. */
export function isolated(values: readonly (number | null)[], i: number): boolean {
  return (values[i - 1] ?? null) === null && (values[i + 1] ?? null) === null;
}

/**
 * Lines over time; a null value breaks the line (no data in that bucket). The figures are a
 * table for screen readers too.
 */
export function LineChart({
  label,
  times,
  bucket,
  lines,
  format,
  tickFormat = format,
  scale,
}: {
  label: string;
  times: string[];
  bucket: 'hour' | 'day';
  lines: Line[];
  format: (v: number) => string;
  /** The axis ticks' labels, when they need digits the figures do not (`format` by default). */
  tickFormat?: (v: number) => string;
  scale: Scale;
}) {
  const [ref, W] = useChartWidth(NARROW_W);
  const id = useId();
  const n = Math.max(1, times.length);
  const all = lines.flatMap((l) => l.values.filter((v): v is number => v !== null));
  const ticks = axisTicks(Math.max(0, ...all), scale);
  const max = ticks.at(-1) ?? 1;
  const ih = H - PAD.t - PAD.b;
  const iw = W - PAD.l - PAD.r;
  const x = (i: number) => PAD.l + (iw / n) * (i + 0.5);
  const y = (v: number) => PAD.t + ih * (1 - v / max);
  return (
    <>
      <svg ref={ref} className="chart" viewBox={`0 0 ${W} ${H}`} role="img" aria-label={label}>
        <Frame
          W={W}
          ticks={ticks}
          format={scale === 'duration' ? durationTick : tickFormat}
          labels={xLabels(times, bucket, iw)}
          n={n}
        >
          {lines.map((line, li) => {
            let d = '';
            let pen = false;
            line.values.forEach((v, i) => {
              if (v === null) {
                pen = false;
                return;
              }
              d += `${pen ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
              pen = true;
            });
            return (
              <g key={`${id}-${li}`} className={line.className}>
                <path d={d} fill="none" vectorEffect="non-scaling-stroke" />
                {line.values.map((v, i) => {
                  if (v === null) return null;
                  // dots only where few enough to read, or where no line reaches the point;
                  // elsewhere a transparent hit area keeps the tooltip
                  const dot = line.values.length <= 14 || isolated(line.values, i);
                  return (
                    <circle
                      key={i}
                      cx={x(i)}
                      cy={y(v)}
                      r={dot ? 2.5 : 4}
                      className={dot ? undefined : 'hit'}
                    >
                      <title>{`${bucketLabel(times[i] ?? '', bucket, true)} · ${line.label}: ${format(v)}`}</title>
                    </circle>
                  );
                })}
              </g>
            );
          })}
        </Frame>
      </svg>
      <ChartTable label={label} times={times} bucket={bucket} format={format} columns={lines} />
    </>
  );
}

export function Legend({ items }: { items: { label: string; className: string }[] }) {
  return (
    <ul className="legend" aria-hidden="true">
      {items.map((i) => (
        <li key={i.label}>
          <span className={`swatch ${i.className}`} />
          {i.label}
        </li>
      ))}
    </ul>
  );
}
