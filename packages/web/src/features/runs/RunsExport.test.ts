import { describe, expect, it } from 'vitest';
import { exportContents } from './RunsExport';

describe('what an export says it holds', () => {
  it('is every matching run, in the order the list shows', () => {
    expect(exportContents({ total: 1234 }, 'newest')).toBe(
      'All 1,234 matching runs, newest first.',
    );
    expect(exportContents({ total: 100_000 }, 'duration')).toBe(
      'All 100,000 matching runs, longest first.',
    );
    expect(exportContents({ total: 1 }, 'cost')).toBe('The one matching run.');
    expect(exportContents({ total: 0 }, 'newest')).toBe('No runs match these filters.');
  });

  it('is the first 100,000 in the list order when more match', () => {
    expect(exportContents({ total: 123_456 }, 'newest')).toBe(
      'The newest 100,000 of the 123,456 matching runs.',
    );
    expect(exportContents({ total: 100_001 }, 'tokens')).toBe(
      'The first 100,000 of the 100,001 matching runs, most tokens first.',
    );
  });

  it('says the count is a floor when the server stopped counting, and before it counts', () => {
    expect(exportContents({ total: 10_000, total_capped: true }, 'newest')).toBe(
      'The 10,000+ matching runs, newest first, at most 100,000.',
    );
    expect(exportContents(undefined, 'cost')).toBe(
      'The matching runs, most cost first, at most 100,000.',
    );
  });
});
