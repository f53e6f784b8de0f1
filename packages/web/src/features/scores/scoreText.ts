import type { Score, ScoreSummary } from '@runlog/core';
import { formatPercent } from '../../lib/format';

/**
 * The score name the dashboard's 👍/👎 records. A boolean has no direction of its own
 * ("hallucinated: true" is bad news): only this name reads as a thumb, others as yes or no.
 */
export const FEEDBACK_NAME = 'feedback';

/**
 * A score's number, compact: three significant digits under 100, whole numbers grouped, and
 * "k"/"M" from 10,000 on.
 * @example [0.8234, 12.345, 1234, 45_600, -0.5].map(formatScoreNumber) // ['0.823', '12.3', '1,234', '45.6k', '-0.5']
 */
export function formatScoreNumber(n: number): string {
  const a = Math.abs(n);
  // "k" as token counts write it
  if (a >= 10_000)
    return new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 })
      .format(n)
      .replace(/K$/, 'k');
  if (Number.isInteger(n)) return n.toLocaleString('en-US');
  if (a >= 100) return n.toLocaleString('en-US', { maximumFractionDigits: 1 });
  return String(Number(n.toPrecision(3)));
}

/** Which thumb a yes/no value draws (`null`: it reads as a word). */
export type Thumb = 'up' | 'down' | null;

/** How a yes/no score of `name` reads: a thumb for feedback, else the word. */
export function booleanText(name: string, value: boolean): { thumb: Thumb; text: string } {
  if (name === FEEDBACK_NAME)
    return value ? { thumb: 'up', text: 'thumbs up' } : { thumb: 'down', text: 'thumbs down' };
  return { thumb: null, text: value ? 'yes' : 'no' };
}

/**
 * One score's value as words, for a label or a tooltip.
 * @example scoreValueText({ name: 'feedback', value: true }) // 'thumbs up'
 */
export function scoreValueText(score: Pick<Score, 'name' | 'value'>): string {
  const { value } = score;
  if (typeof value === 'boolean') return booleanText(score.name, value).text;
  if (typeof value === 'number') return formatScoreNumber(value);
  return value;
}

/**
 * What a run holds of one score name, short for a chip (after its thumb, if any) and whole
 * for its label: 👍 "75% (4)" and "feedback: 75% thumbs up, of 4".
 * @example scoreSummaryText('helpfulness', { type: 'numeric', n: 1, avg: 0.9, labels: {} }) // { thumb: null, short: '0.9', long: 'helpfulness: 0.9' }
 */
export function scoreSummaryText(
  name: string,
  s: ScoreSummary,
): { thumb: Thumb; short: string; long: string } {
  const of = s.n > 1 ? ` (${s.n.toLocaleString()})` : '';
  const ofLong = s.n > 1 ? `, of ${s.n.toLocaleString()}` : '';
  const labels = Object.entries(s.labels).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  if (s.avg !== null && (s.type !== 'categorical' || labels.length === 0)) {
    if (s.type === 'boolean') {
      const yes = booleanText(name, true);
      if (s.n === 1) {
        const one = booleanText(name, s.avg >= 0.5);
        return {
          thumb: one.thumb,
          short: one.thumb ? '' : one.text,
          long: `${name}: ${one.text}`,
        };
      }
      const pct = formatPercent(s.avg);
      return {
        thumb: yes.thumb,
        short: `${yes.thumb ? '' : 'yes '}${pct}${of}`,
        long: `${name}: ${pct} ${yes.text}${ofLong}`,
      };
    }
    const avg = formatScoreNumber(s.avg);
    return {
      thumb: null,
      short: `${avg}${of}`,
      long: s.n > 1 ? `${name}: mean ${avg}${ofLong}` : `${name}: ${avg}`,
    };
  }
  const [top] = labels;
  if (!top) return { thumb: null, short: `(${s.n})`, long: `${name}: ${s.n} scores` };
  const more = labels.length > 1 ? ` +${labels.length - 1}` : '';
  return {
    thumb: null,
    short: `${top[0]}${more}`,
    long: `${name}: ${labels.map(([l, n]) => (n > 1 ? `${l} ×${n}` : l)).join(', ')}`,
  };
}

/**
 * A score's value as typed in the dashboard: a number, true or false, else a label.
 * `undefined` for nothing typed.
 * @example ['0.9', 'TRUE', 'billing', ' '].map(parseScoreValue) // [0.9, true, 'billing', undefined]
 */
export function parseScoreValue(text: string): number | boolean | string | undefined {
  const t = text.trim();
  if (!t) return undefined;
  if (/^(true|false)$/i.test(t)) return t.toLowerCase() === 'true';
  // Number('') and Number('0x10') are numbers too: only decimal notation counts as one
  if (/^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(t)) {
    const n = Number(t);
    if (Number.isFinite(n)) return n;
  }
  return t;
}

/** What `parseScoreValue` made of the text, as the form tells it. */
export function scoreValueKind(value: number | boolean | string | undefined): string {
  if (value === undefined) return 'A number, true or false, or a label';
  if (typeof value === 'number') return `Saved as the number ${value}`;
  if (typeof value === 'boolean') return `Saved as ${value ? 'yes (true)' : 'no (false)'}`;
  return `Saved as the label “${value}”`;
}
