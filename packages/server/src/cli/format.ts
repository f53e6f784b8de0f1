/** Formatting for the CLI's human output: durations, money, tokens, times, tables, colours, charts. */

import stringWidth from 'string-width';

/** `350ms`, `1.2s`, `3m 04s`, `2h 05m`, `3d 4h`; `-` when unknown. */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '-';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.floor(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  if (s < 86_400)
    return `${Math.floor(s / 3600)}h ${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`;
  return `${Math.floor(s / 86_400)}d ${Math.floor(s / 3600) % 24}h`;
}

/**
 * A percentile read off a histogram, so an estimate: `≈240ms`; `-` (no `≈`) when there is
 * none, as for runs that have not ended.
 */
export function formatApproxDuration(ms: number | null | undefined): string {
  const text = formatDuration(ms);
  return text === '-' ? text : `≈${text}`;
}

/**
 * A span as a setting is typed, exact where `formatDuration` rounds: `500ms`, `1.5s`, `5m`,
 * `1h 30m`, `7d`.
 * @example formatSpan(5_400_000) // '1h 30m'
 */
export function formatSpan(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  const parts: string[] = [];
  let rest = ms;
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
  ] as const) {
    const n = Math.floor(rest / size);
    if (n > 0) parts.push(`${n}${unit}`);
    rest -= n * size;
  }
  if (rest > 0) parts.push(`${rest / 1000}s`);
  return parts.join(' ');
}

/** `$0.0123` under a dollar, `$12.35` above. */
export function formatMoney(usd: number | null | undefined): string {
  if (usd === null || usd === undefined) return '-';
  if (usd === 0) return '$0';
  if (usd >= 1) return `$${usd.toFixed(2)}`;
  if (usd >= 0.01) return `$${usd.toFixed(4)}`;
  // a single LLM call costs fractions of a cent: keep two significant digits
  return `$${usd
    .toPrecision(2)
    .replace(/(\.\d*?)0+$/, '$1')
    .replace(/\.$/, '')}`;
}

/** `950`, `12.3k`, `4.5M`. */
export function formatTokens(n: number | null | undefined): string {
  if (n === null || n === undefined) return '-';
  if (n < 1000) return String(n);
  if (n < 1_000_000) return `${trim1(n / 1000)}k`;
  return `${trim1(n / 1_000_000)}M`;
}

function trim1(v: number): string {
  return v >= 100 ? String(Math.round(v)) : v.toFixed(1).replace(/\.0$/, '');
}

export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

/** A count with its noun, singular for one: `1 run`, `2 runs`, `1,024 steps`. */
export function countOf(n: number, noun: string): string {
  return `${formatCount(n)} ${n === 1 ? noun : `${noun}s`}`;
}

export function formatPercent(rate: number | null | undefined): string {
  if (rate === null || rate === undefined) return '-';
  return `${(rate * 100).toFixed(1)}%`;
}

/**
 * `12s ago`, `5m ago`, `3h ago`, `4d ago`, or the date for older times; a time to come (a
 * schedule's next run, a run queued to start later) `in 5m`, to the nearest unit: a run
 * starting in 2 h 59 min reads `in 3h`, where the time passed since reads whole units.
 */
export function formatRelative(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '-';
  const ms = now - Date.parse(iso);
  const [span, say] = ms < 0 ? [-ms, (n: string) => `in ${n}`] : [ms, (n: string) => `${n} ago`];
  const count = ms < 0 ? Math.round : Math.floor;
  for (const [unit, size, below] of RELATIVE_UNITS) {
    const n = count(span / size);
    if (n < below) return say(`${n}${unit}`);
  }
  return iso.slice(0, 10);
}

/** `formatRelative`'s units: each up to the count where the next takes over. */
const RELATIVE_UNITS: readonly [string, number, number][] = [
  ['s', 1000, 60],
  ['m', 60_000, 60],
  ['h', 3_600_000, 24],
  ['d', 86_400_000, 30],
];

const CODES = {
  bold: [1, 22],
  dim: [2, 22],
  red: [31, 39],
  green: [32, 39],
  yellow: [33, 39],
  blue: [34, 39],
  cyan: [36, 39],
  gray: [90, 39],
} as const;
export type Colour = keyof typeof CODES;

/** Colours for one output stream: real only on a TTY and without NO_COLOR. */
export class Palette {
  constructor(
    readonly enabled: boolean,
    /** Columns the output may take (the terminal's, or COLUMNS); tables are cut to fit. */
    readonly width?: number,
  ) {}

  static for(stream: { isTTY?: boolean; columns?: number }, env: NodeJS.ProcessEnv): Palette {
    const columns = Number(env.COLUMNS);
    const width =
      Number.isInteger(columns) && columns > 0
        ? columns
        : stream.isTTY && stream.columns
          ? stream.columns
          : undefined;
    return new Palette(
      Boolean(stream.isTTY) && env.NO_COLOR === undefined && env.TERM !== 'dumb',
      width,
    );
  }

  paint(colour: Colour, text: string): string {
    if (!this.enabled) return text;
    const [open, close] = CODES[colour];
    return `\u001b[${open}m${text}\u001b[${close}m`;
  }

  status(status: string): string {
    const colour: Colour =
      status === 'succeeded'
        ? 'green'
        : status === 'failed' || status === 'timed_out'
          ? 'red'
          : status === 'running'
            ? 'cyan'
            : status === 'queued'
              ? 'yellow'
              : 'gray';
    return this.paint(colour, status);
  }
}

// eslint-disable-next-line no-control-regex -- matching ANSI escapes is the point
const ANSI = /\u001b\[[0-9;]*m/g;

/** Display width of a cell: without colour codes, a wide character (漢, 🚀) as two columns. */
export function visibleWidth(text: string): number {
  return stringWidth(text);
}

const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

/**
 * `text` (without colour codes) cut to `width` columns, ending in "…" when cut; never inside
 * a character a terminal draws as one (an emoji of several code points, a letter and its
 * accent).
 * @example cutToWidth('漢字テキスト', 6) // '漢字…'
 */
export function cutToWidth(text: string, width: number): string {
  const plain = text.replace(ANSI, '');
  if (stringWidth(plain) <= width) return plain;
  let out = '';
  let used = 0;
  for (const { segment } of graphemes.segment(plain)) {
    const w = stringWidth(segment);
    if (used + w > width - 1) break;
    out += segment;
    used += w;
  }
  return out + '…';
}

/**
 * Items joined by ", " after text already `start` columns wide, broken before an item that
 * would pass `width` onto a line indented `indent` columns (one line without a width).
 * @example wrapList(['3 succeeded', '1 failed'], 13, 13, 80)
 */
export function wrapList(items: string[], start: number, indent: number, width?: number): string {
  let out = '';
  let col = start;
  items.forEach((item, i) => {
    const piece = i < items.length - 1 ? `${item},` : item;
    const w = visibleWidth(piece);
    if (i > 0) {
      if (width !== undefined && col + 1 + w > width) {
        out += '\n' + ' '.repeat(indent);
        col = indent;
      } else {
        out += ' ';
        col += 1;
      }
    }
    out += piece;
    col += w;
  });
  return out;
}

export interface Column {
  header: string;
  align?: 'left' | 'right';
  /** Never cut (ids and states, which are copied or read whole). */
  whole?: boolean;
  /** Left out when the table cannot fit otherwise; the lowest number goes first. */
  optional?: number;
}

/** The narrowest a text column is cut to when a table does not fit its width. */
const MIN_CUT_WIDTH = 8;

/**
 * An aligned table: a header and rows, columns two spaces apart. Wider than
 * `palette.width`, its widest text (left-aligned) columns are cut, each cell ending in "…",
 * so every row stays one line; numbers are never cut.
 */
export function table(
  allColumns: Column[],
  allRows: string[][],
  palette: Palette,
  /** The width to fit, when not the terminal's (a table printed indented). */
  width = palette.width,
): string {
  let columns = allColumns.map((c) => ({ ...c, header: oneLine(c.header) }));
  let rows = allRows.map((r) => r.map(oneLine));
  const widthsOf = (cols: Column[], cells: string[][]) =>
    cols.map((c, i) =>
      Math.max(visibleWidth(c.header), ...cells.map((r) => visibleWidth(r[i] ?? ''))),
    );
  const cuttable = (c: Column) => c.align !== 'right' && !c.whole;
  let widths = widthsOf(columns, rows);
  const limit = width;
  if (limit !== undefined) {
    // what no cutting can make fit goes first: the least needed columns, whole
    const narrowest = () =>
      widths.reduce(
        (n, w, i) => n + (cuttable(columns[i]!) ? Math.min(w, MIN_CUT_WIDTH) : w),
        2 * (widths.length - 1),
      );
    while (narrowest() > limit) {
      const drop = columns.reduce<number>((best, c, i) => {
        if (c.optional === undefined) return best;
        return best < 0 || c.optional < columns[best]!.optional! ? i : best;
      }, -1);
      if (drop < 0) break;
      columns = columns.filter((_, i) => i !== drop);
      rows = rows.map((r) => r.filter((_, i) => i !== drop));
      widths = widthsOf(columns, rows);
    }
  }
  const total = () => widths.reduce((a, b) => a + b, 0) + 2 * (widths.length - 1);
  if (limit !== undefined) {
    while (total() > limit) {
      let widest = -1;
      for (let i = 0; i < widths.length; i++) {
        if (!cuttable(columns[i]!) || widths[i]! <= MIN_CUT_WIDTH) continue;
        if (widest < 0 || widths[i]! > widths[widest]!) widest = i;
      }
      if (widest < 0) break;
      widths[widest] = Math.max(MIN_CUT_WIDTH, widths[widest]! - (total() - limit));
    }
  }
  const fit = (cell: string, i: number) => {
    if (visibleWidth(cell) <= widths[i]!) return cell;
    // cut the text without its colour codes: a cut code would colour the rest of the line
    return cutToWidth(cell, widths[i]!);
  };
  const line = (cells: string[]) =>
    cells
      .map((raw, i) => {
        const cell = fit(raw, i);
        const pad = ' '.repeat(Math.max(0, widths[i]! - visibleWidth(cell)));
        return columns[i]!.align === 'right' ? pad + cell : cell + pad;
      })
      .join('  ')
      .trimEnd();
  const header = line(columns.map((c) => c.header));
  return [palette.paint('bold', header), ...rows.map(line)].join('\n') + '\n';
}

/**
 * Text for one line (a table's cell, a heading): a newline or tab in recorded text (a thread
 * id, a step's name) written as a backslash and `n` or `t`; it would break the row in two.
 * @example oneLine('a\nb') // 'a\\nb'
 */
export function oneLine(text: string): string {
  return text.replace(/\n/g, '\\n').replace(/\t/g, '\\t');
}

const SPARKS = '▁▂▃▄▅▆▇█';

/**
 * A one-line chart of `values`; `null` shows as a gap. Past `width` characters, neighbouring
 * values share a character, which shows the largest of them (a spike stays visible).
 */
export function sparkline(all: (number | null)[], width = Infinity): string {
  let values = all;
  if (all.length > width && width >= 1) {
    const per = Math.ceil(all.length / width);
    values = [];
    for (let i = 0; i < all.length; i += per) {
      const group = all.slice(i, i + per).filter((v): v is number => v !== null);
      values.push(group.length > 0 ? Math.max(...group) : null);
    }
  }
  const present = values.filter((v): v is number => v !== null);
  const max = Math.max(0, ...present);
  return values
    .map((v) => {
      if (v === null) return ' ';
      if (max === 0) return SPARKS[0];
      return SPARKS[Math.min(SPARKS.length - 1, Math.floor((v / max) * (SPARKS.length - 1)))];
    })
    .join('');
}

/** A horizontal bar `width` characters at most, for `value` out of `max`. */
export function bar(value: number, max: number, width: number): string {
  if (max <= 0 || value <= 0) return '';
  return '█'.repeat(Math.max(1, Math.round((value / max) * width)));
}

/** A progress line on stderr (only on a TTY): counts, percent when the total is known, rate. */
export class Progress {
  private readonly started = Date.now();
  private lastDraw = 0;

  constructor(
    private readonly stream: { isTTY?: boolean; write(text: string): unknown },
    private readonly label: string,
    private readonly total?: number,
  ) {}

  get active(): boolean {
    return Boolean(this.stream.isTTY);
  }

  update(done: number, force = false): void {
    if (!this.active) return;
    const now = Date.now();
    if (!force && now - this.lastDraw < 100) return;
    this.lastDraw = now;
    const rate = done / Math.max(0.001, (now - this.started) / 1000);
    let text = `${this.label} ${formatCount(done)}`;
    if (this.total !== undefined && this.total > 0) {
      const frac = Math.min(1, done / this.total);
      const width = 24;
      const full = Math.round(frac * width);
      text = `${this.label} [${'#'.repeat(full)}${'-'.repeat(width - full)}] ${formatCount(done)}/${formatCount(this.total)} ${Math.floor(frac * 100)}%`;
    }
    this.stream.write(`\r${text}  ${formatCount(Math.round(rate))}/s\u001b[K`);
  }

  done(count: number): void {
    if (!this.active) return;
    this.update(count, true);
    this.stream.write('\n');
  }
}

/**
 * Control characters other than newline and tab (C0, DEL and C1) in a string, written as
 * `\x1b`-style escapes; and the bidirectional controls (U+202E, right-to-left override...),
 * written as `\u202e`: a terminal that lays out bidirectional text would show what follows
 * one reversed or moved, as a Trojan Source does.
 */
const CONTROL =
  // eslint-disable-next-line no-control-regex
  /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * `value` with every string in it made safe to print to a terminal: recorded text (a
 * model's output, an error, a name) is data, and an escape sequence in it must not clear
 * the screen, move the cursor, retitle the window or hide a link. For human output only;
 * `--json` prints the data as it is (JSON escapes C0 controls itself).
 * @example printable({ error: 'a\u001b[2Jb' }) // { error: 'a\\x1b[2Jb' }
 */
export function printable<T>(value: T): T {
  if (typeof value === 'string')
    return value.replace(CONTROL, (c) => {
      const code = c.charCodeAt(0);
      return code > 0xff
        ? `\\u${code.toString(16).padStart(4, '0')}`
        : `\\x${code.toString(16).padStart(2, '0')}`;
    }) as T;
  if (Array.isArray(value)) return value.map(printable) as T;
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[printable(k)] = printable(v);
    return out as T;
  }
  return value;
}
