import { describe, expect, it } from 'vitest';
import { inputText } from './RetryWithInput';

describe('inputText', () => {
  it("starts the box with the run's input as indented JSON", () => {
    expect(inputText({ pr: 42, files: ['a.ts'] })).toBe(
      '{\n  "pr": 42,\n  "files": [\n    "a.ts"\n  ]\n}',
    );
    expect(inputText('hello')).toBe('"hello"');
    expect(inputText(0)).toBe('0');
  });

  it('starts it empty for no input, and for an input stored truncated (its preview is not it)', () => {
    expect(inputText(null)).toBe('');
    expect(inputText(undefined)).toBe('');
    expect(
      inputText({ __runlog_truncated__: true, original_size: 2_000_000, preview: '{"doc":"xx' }),
    ).toBe('');
  });
});
