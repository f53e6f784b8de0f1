import { describe, expect, it } from 'vitest';
import { previewJsonText, previewText } from './preview.js';

describe('previewText', () => {
  it('says a string as one line', () => {
    expect(previewText('  What is\n\tthe  weather? ', 100)).toBe('What is the weather?');
  });

  it('finds the text under a known field, a chat payload by its last message', () => {
    expect(previewText({ query: 'find flights', limit: 3 }, 100)).toBe('find flights');
    expect(previewText({ output: { answer: 'Paris' } }, 100)).toBe('Paris');
    expect(
      previewText(
        {
          messages: [
            { role: 'system', content: 'Be brief' },
            { role: 'user', content: 'Hello' },
          ],
        },
        100,
      ),
    ).toBe('Hello');
  });

  it('falls back to the JSON, and gives null for no payload', () => {
    expect(previewText({ a: 1, b: [true] }, 100)).toBe('{"a":1,"b":[true]}');
    expect(previewText(42, 100)).toBe('42');
    expect(previewText(null, 100)).toBeNull();
    expect(previewText(undefined, 100)).toBeNull();
  });

  it('cuts to max characters with an ellipsis, never within a surrogate pair', () => {
    expect(previewText('x'.repeat(20), 10)).toBe(`${'x'.repeat(9)}…`);
    const cut = previewText(`${'a'.repeat(8)}😀tail`, 10)!;
    expect(cut.length).toBeLessThanOrEqual(10);
    expect(cut.endsWith('…')).toBe(true);
    expect(cut).not.toMatch(/[\uD800-\uDBFF]…$/);
  });
});

describe('previewJsonText', () => {
  it('says JSON text whole or cut short', () => {
    expect(previewJsonText('{"query":"find flights"}', 100)).toBe('find flights');
    expect(previewJsonText('"Where is my ord', 100)).toBe('Where is my ord');
    expect(previewJsonText('{"query":"find fl', 100)).toBe('{"query":"find fl');
    expect(previewJsonText('null', 100)).toBeNull();
  });
});
