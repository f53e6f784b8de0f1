import { describe, expect, it } from 'vitest';
import {
  formatScoreNumber,
  parseScoreValue,
  scoreSummaryText,
  scoreValueKind,
  scoreValueText,
} from './scoreText';

describe('formatScoreNumber', () => {
  it('writes a score compactly, whole numbers grouped and large ones in k and M', () => {
    expect(
      [0.8234, 0.9, 12.345, 1234, 999.25, 45_600, 2_500_000, -0.5, 0].map(formatScoreNumber),
    ).toEqual(['0.823', '0.9', '12.3', '1,234', '999.3', '45.6k', '2.5M', '-0.5', '0']);
  });
});

describe('scoreSummaryText', () => {
  it("reads a run's thumbs as a thumb, several as the share of thumbs up", () => {
    expect(scoreSummaryText('feedback', { type: 'boolean', n: 1, avg: 0, labels: {} })).toEqual({
      thumb: 'down',
      short: '',
      long: 'feedback: thumbs down',
    });
    expect(scoreSummaryText('feedback', { type: 'boolean', n: 4, avg: 0.75, labels: {} })).toEqual({
      thumb: 'up',
      short: '75% (4)',
      long: 'feedback: 75% thumbs up, of 4',
    });
  });

  it('reads another yes/no score as yes or no, a boolean having no direction', () => {
    expect(
      scoreSummaryText('hallucinated', { type: 'boolean', n: 1, avg: 1, labels: {} }).short,
    ).toBe('yes');
    expect(scoreSummaryText('correct', { type: 'boolean', n: 2, avg: 0.5, labels: {} }).short).toBe(
      'yes 50% (2)',
    );
  });

  it('gives numbers their mean and labels the most given one', () => {
    expect(
      scoreSummaryText('helpfulness', { type: 'numeric', n: 3, avg: 0.8234, labels: {} }),
    ).toEqual({
      thumb: null,
      short: '0.823 (3)',
      long: 'helpfulness: mean 0.823, of 3',
    });
    expect(
      scoreSummaryText('topic', {
        type: 'categorical',
        n: 4,
        avg: null,
        labels: { refund: 1, billing: 3 },
      }),
    ).toEqual({ thumb: null, short: 'billing +1', long: 'topic: billing ×3, refund' });
  });
});

describe('parseScoreValue', () => {
  it('reads a number, true or false, else a label', () => {
    expect(
      ['0.9', ' -2 ', '1e3', 'TRUE', 'false', 'billing', '0x10', '1.2.3', '  '].map(
        parseScoreValue,
      ),
    ).toEqual([0.9, -2, 1000, true, false, 'billing', '0x10', '1.2.3', undefined]);
  });

  it('says what the value will be saved as', () => {
    expect(scoreValueKind(parseScoreValue('0.8234'))).toBe('Saved as the number 0.8234');
    expect(scoreValueKind(parseScoreValue('true'))).toBe('Saved as yes (true)');
    expect(scoreValueKind(parseScoreValue('billing'))).toBe('Saved as the label “billing”');
    expect(scoreValueText({ name: 'feedback', value: false })).toBe('thumbs down');
    expect(scoreValueText({ name: 'ok', value: true })).toBe('yes');
  });
});
