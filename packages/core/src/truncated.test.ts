import { describe, expect, it } from 'vitest';
import { TRUNCATED_MARKER, isTruncatedJson, truncatedJson } from './truncated.js';

describe('truncatedJson', () => {
  it('keeps the first characters of the text and says its size', () => {
    expect(truncatedJson('"abcdef"', 8, 3)).toEqual({
      [TRUNCATED_MARKER]: true,
      original_size: 8,
      preview: '"ab',
    });
    expect(isTruncatedJson(truncatedJson('"a"', 3, 10))).toBe(true);
    expect(truncatedJson('"a"', 3, 10).preview).toBe('"a"');
  });

  it('never ends its preview in half an emoji', () => {
    const text = `"ab${'😀'.repeat(3)}"`;
    // 4 units would end between the two halves of the first emoji
    expect(truncatedJson(text, 15, 4).preview).toBe('"ab');
    expect(truncatedJson(text, 15, 5).preview).toBe('"ab😀');
  });
});
