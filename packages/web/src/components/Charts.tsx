import { useId } from 'react';

const NARROW_W = 640;
const H = 180;
const PAD = { l: 54, r: 8, t: 8, b: 22 };

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  const n = v / p;
  return (n <= 1 ? 1 : n <= 2 ? 2 : n <= 5 ? 5 : 10) * p;
}

function xLabels(times: string[], bucket: 'hour' | 'day'): { i: number; text: string }[] {
  const every = Math.max(1, Math.ceil(times.length / 6));
  return times
    .map((t, i) => ({ i, t }))
    .filter(({ i }) => i % every === 0)
    .map(({ i, t }) => {
      const d = new Date(t);
      return {
        i,
        text:
          bucket === 'hour'
            ? d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' })
            : d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' }),
      };
    });
}

function Frame({
  W,
  max,
  format,
  children,
  labels,
  n,
}: {
  W: number;
  max: number;
  format: (v: number) => string;
  children: React.ReactNode;
  labels: { i: number; text: string }[];
  n: number;
}) {
  const ih = H - PAD.t - PAD.b;
  const iw = W - PAD.l - PAD.r;
  return (
    <>
      {[0, 0.5, 1].map((f) => (
        <g key={f}>
          <line
            className="grid"
            x1={PAD.l}
            x2={W - PAD.r}
            y1={PAD.t + ih * (1 - f)}
            y2={PAD.t + ih * (1 - f)}
          />
          <text className="axis" x={PAD.l - 6} y={PAD.t + ih * (1 - f) + 4} textAnchor="end">
            {format(max * f)}
          </text>
        </g>
      ))}
      {labels.map(({ i, text }) => (
        <text
          key={i}
          className="axis"
          x={PAD.l + (iw / n) * (i + 0.5)}
          y={H - 6}
          textAnchor="middle"
        >
          {text}
        </text>
      ))}
      {children}
    </>
  );
}

export interface Stack {
  key: string;
  label: string;
  className: string;
}

/** Bars over time, each stacked by `stacks`; one <title> per segment for hover detail. */
export function StackedBars({
  label,
  times,
  bucket,
  stacks,
  values,
  format = (v) => String(Math.round(v)),
  wide = false,
}: {
  label: string;
  times: string[];
  bucket: 'hour' | 'day';
  stacks: Stack[];
  values: Record<string, number>[];
  format?: (v: number) => string;
  /** Spans the whole grid: a wider drawing keeps text the same size. */
  wide?: boolean;
}) {
  const W = wide ? NARROW_W * 2 : NARROW_W;
  const n = Math.max(1, times.length);
  const totals = values.map((v) => stacks.reduce((s, k) => s + (v[k.key] ?? 0), 0));
  const max = niceMax(Math.max(0, ...totals));
  const ih = H - PAD.t - PAD.b;
  const iw = W - PAD.l - PAD.r;
  const bw = (iw / n) * 0.72;
  return (
    <svg className="chart" viewBox={`0 0 ${W} ${H}`} role="img" aria-label={label}>
      <Frame W={W} max={max} format={format} labels={xLabels(times, bucket)} n={n}>
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
                    <title>{`${new Date(times[i] ?? '').toLocaleString()} · ${s.label}: ${format(v[s.key] ?? 0)}`}</title>
                  </rect>
                );
              })}
            </g>
          );
        })}
      </Frame>
    </svg>
  );
}

export interface Line {
  label: string;
  className: string;
  values: (number | null)[];
}

/** Lines over time; a null value breaks the line (no data in that bucket). */
export function LineChart({
  label,
  times,
  bucket,
  lines,
  format,
}: {
  label: string;
  times: string[];
  bucket: 'hour' | 'day';
  lines: Line[];
  format: (v: number) => string;
}) {
  const W = NARROW_W;
  const id = useId();
  const n = Math.max(1, times.length);
  const all = lines.flatMap((l) => l.values.filter((v): v is number => v !== null));
  const max = niceMax(Math.max(0, ...all));
  const ih = H - PAD.t - PAD.b;
  const iw = W - PAD.l - PAD.r;
  const x = (i: number) => PAD.l + (iw / n) * (i + 0.5);
  const y = (v: number) => PAD.t + ih * (1 - v / max);
  return (
    <svg className="chart" viewBox={`0 0 ${W} ${H}`} role="img" aria-label={label}>
      <Frame W={W} max={max} format={format} labels={xLabels(times, bucket)} n={n}>
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
              {line.values.map((v, i) =>
                v === null ? null : (
                  // dots only where few enough to read; a transparent hit area keeps the tooltip
                  <circle
                    key={i}
                    cx={x(i)}
                    cy={y(v)}
                    r={line.values.length <= 14 ? 2.5 : 4}
                    className={line.values.length <= 14 ? undefined : 'hit'}
                  >
                    <title>{`${new Date(times[i] ?? '').toLocaleString()} · ${line.label}: ${format(v)}`}</title>
                  </circle>
                ),
              )}
            </g>
          );
        })}
      </Frame>
    </svg>
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
