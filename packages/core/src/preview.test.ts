import { describe, expect, it } from 'vitest';
import { parseJsonPrefix, previewJsonText, previewText, readableError } from './preview.js';
import { truncatedJson } from './truncated.js';

describe('previewText', () => {
  it('says a string as one line', () => {
    expect(previewText('  What is\n\tthe  weather? ', 100)).toBe('What is the weather?');
  });

  it('says the text of a chat reply under reply, response or completion', () => {
    expect(previewText({ reply: 'Hello there', tokens: 3 }, 100)).toBe('Hello there');
    expect(previewText({ response: 'Sure.' }, 100)).toBe('Sure.');
    expect(previewText({ completion: 'Done' }, 100)).toBe('Done');
    // a field earlier in the list says it first
    expect(previewText({ reply: 'later', answer: 'first' }, 100)).toBe('first');
  });

  it("keeps a text's lines when asked, as a conversation's turn shows them", () => {
    const answer =
      'Try these:\r\n1. Restart the router  \n2. Call us\n\n\n\n```\n  ping 10.0.0.1\n```\n';
    expect(previewText({ output: answer }, 200, { lines: true })).toBe(
      'Try these:\n1. Restart the router\n2. Call us\n\n```\n  ping 10.0.0.1\n```',
    );
    // stored truncated: the start it kept, with its lines
    expect(previewText(truncatedJson('"one\\ntwo and more', 5000, 100), 200, { lines: true })).toBe(
      'one\ntwo and more',
    );
    // a long run of spaces inside a line: kept, and in linear time (a guard against quadratic
    // time, not a speed goal: /[ \t]+$/m took 13 s over these 100,000)
    const started = performance.now();
    expect(previewText(`a${' '.repeat(100_000)}b  `, 10, { lines: true })).toBe('a        …');
    expect(performance.now() - started).toBeLessThan(2_000);
    // a list's cell still reads it as one line
    expect(previewText(answer, 200)).toBe(
      'Try these: 1. Restart the router 2. Call us ``` ping 10.0.0.1 ```',
    );
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
    expect(previewJsonText('{"query":"find fl', 100)).toBe('find fl');
    expect(previewJsonText('null', 100)).toBeNull();
    // escapes read as what they stand for, one cut in half left out
    expect(previewJsonText('"Line one\\nsaid \\"hi\\" and \\u00e9\\u00', 100)).toBe(
      'Line one said "hi" and é',
    );
    // a chat payload cut inside its system prompt: what was kept of it
    expect(
      previewJsonText('{"messages":[{"role":"system","content":"You are a helpful ag', 100),
    ).toBe('You are a helpful ag');
  });

  it('says a payload stored truncated by the start it kept, not its marker', () => {
    const text = JSON.stringify({ query: `Hello there ${'y'.repeat(9000)}` });
    const marker = truncatedJson(text, text.length, 2000);
    expect(previewText(marker, 20)).toBe('Hello there yyyyyyy…');
    expect(previewJsonText(JSON.stringify(marker).slice(0, 500), 20)).toBe('Hello there yyyyyyy…');
  });
});

describe('parseJsonPrefix', () => {
  it('closes what was open where the text was cut, or cuts back to a whole value', () => {
    expect(parseJsonPrefix('{"a":[1,2,{"b":"x')).toEqual({ a: [1, 2, { b: 'x' }] });
    expect(parseJsonPrefix('{"a":1,"b":tru')).toEqual({ a: 1 });
    expect(parseJsonPrefix('[1,2,3')).toEqual([1, 2, 3]);
    expect(parseJsonPrefix('{"a":1,"b"')).toEqual({ a: 1 });
    expect(parseJsonPrefix('nul')).toBeUndefined();
  });
});

describe('readableError', () => {
  it('gives an error as it is, and one stored truncated by what its kept start says', () => {
    const whole = { message: 'boom', type: 'TypeError', stack: 'TypeError: boom\n    at f' };
    expect(readableError(whole)).toBe(whole);
    const text = JSON.stringify({
      message: 'stack overflow',
      type: 'RangeError',
      stack: 'at f()\n'.repeat(5000),
    });
    expect(readableError(truncatedJson(text, 35_123, 200))).toEqual({
      message: 'stack overflow [cut: the error was 35,123 bytes]',
      type: 'RangeError',
      stack: expect.stringMatching(/^at f\(\)\nat f\(\)/),
    });
    // cut inside its message: what it kept, and the note
    expect(
      readableError(truncatedJson(JSON.stringify({ message: 'x'.repeat(500) }), 9001, 40)),
    ).toEqual({
      message: `${'x'.repeat(28)} [cut: the error was 9,001 bytes]`,
    });
    // nothing readable kept: the note alone
    expect(readableError(truncatedJson('"not an object"', 20_000, 5))).toEqual({
      message: '[cut: the error was 20,000 bytes]',
    });
  });
});
