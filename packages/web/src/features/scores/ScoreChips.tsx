import type { Run, Score } from '@runlog/core';
import { booleanText, formatScoreNumber, scoreSummaryText } from './scoreText';

/**
 * A thumb up or down, drawn rather than typed as 👍: a system without an emoji font shows
 * an empty box, and icons must look the same everywhere (as the status icons are drawn).
 * With `label` it is an image named so; without, decoration beside words that say it.
 * @example <ThumbIcon dir="up" label="thumbs up" />
 */
export function ThumbIcon({ dir, label }: { dir: 'up' | 'down'; label?: string }) {
  return (
    <svg
      className={`thumb thumb-${dir}`}
      viewBox="0 0 16 16"
      width="14"
      height="14"
      focusable="false"
      data-thumb={dir}
      {...(label ? { role: 'img', 'aria-label': label } : { 'aria-hidden': true })}
    >
      {label ? <title>{label}</title> : null}
      <g
        fill="none"
        stroke="currentColor"
        strokeWidth="1.4"
        strokeLinejoin="round"
        strokeLinecap="round"
        // a thumb down is the thumb up upside down, its cuff on the same side
        transform={dir === 'down' ? 'translate(0 16) scale(1 -1)' : undefined}
      >
        <rect x="1.5" y="7" width="3" height="7.5" rx="0.8" />
        <path d="M4.5 7.5l2.7-4.9c.3-.6 1.1-.8 1.6-.4.5.4.6 1 .4 1.6L8.6 6h4.2c1 0 1.7.9 1.5 1.9l-1 5c-.2.9-.9 1.6-1.8 1.6h-7" />
      </g>
    </svg>
  );
}

/** The names most scored first, then by name: the order a run's summary chips show. */
function byMostScored(scores: Run['scores']) {
  return Object.entries(scores).sort((a, b) => b[1].n - a[1].n || (a[0] < b[0] ? -1 : 1));
}

/**
 * A run's scores by name as small chips ("feedback 👍 75% (4)", "helpfulness 0.82"), the
 * first `max` names and how many more. Nothing for a run without scores.
 * @example <ScoreSummaryChips scores={run.scores} max={2} />
 */
export function ScoreSummaryChips({ scores, max = 3 }: { scores: Run['scores']; max?: number }) {
  const names = byMostScored(scores);
  if (names.length === 0) return null;
  const shown = names.slice(0, max);
  const rest = names.slice(max);
  return (
    <span className="score-chips">
      {shown.map(([name, s]) => {
        const text = scoreSummaryText(name, s);
        return (
          <span key={name} className="score-chip" title={text.long}>
            {/* the emoji and figures are for the eye; a screen reader hears the sentence */}
            {/* a long name is cut, never the value after it */}
            <span aria-hidden="true" className="score-chip-text">
              <span className="score-chip-name">{name}</span>
              <span className="score-chip-value">
                {text.thumb ? (
                  <>
                    {' '}
                    <ThumbIcon dir={text.thumb} />
                  </>
                ) : null}
                {text.short ? ` ${text.short}` : null}
              </span>
            </span>
            <span className="sr-only">{text.long}</span>
          </span>
        );
      })}
      {rest.length > 0 ? (
        <span
          className="score-chip score-chip-more"
          title={rest.map(([name, s]) => scoreSummaryText(name, s).long).join('\n')}
        >
          <span aria-hidden="true">+{rest.length}</span>
          <span className="sr-only">
            and {rest.length} more:{' '}
            {rest.map(([name, s]) => scoreSummaryText(name, s).long).join('; ')}
          </span>
        </span>
      ) : null}
    </span>
  );
}

/**
 * One score's value: a number compact (exact in its tooltip), a yes/no as a thumb or a word,
 * a label as a chip.
 */
export function ScoreValue({ score }: { score: Pick<Score, 'name' | 'value'> }) {
  const { value } = score;
  if (typeof value === 'boolean') {
    const b = booleanText(score.name, value);
    return (
      <span className={`score-bool ${value ? 'score-yes' : 'score-no'}`}>
        {b.thumb ? <ThumbIcon dir={b.thumb} label={b.text} /> : b.text}
      </span>
    );
  }
  if (typeof value === 'number')
    return (
      <span className="score-num" title={String(value)}>
        {formatScoreNumber(value)}
      </span>
    );
  return <span className="score-label">{value}</span>;
}
