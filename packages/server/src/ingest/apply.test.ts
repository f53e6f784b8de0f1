import { expect, it } from 'vitest';
import { encodeJson } from './apply.js';

it('cuts a payload over the limit without splitting a surrogate pair', () => {
  const max = 1024;
  const keep = Math.floor((max - 256) / 3);
  // every alignment of the emojis against the cut: `"` plus 0-3 ASCII characters before them
  for (let pad = 0; pad < 4; pad++) {
    const value = 'a'.repeat(pad) + '😀'.repeat(2000);
    const stored = JSON.parse(encodeJson(value, max)!) as {
      preview: string;
      original_size: number;
    };
    expect(stored.original_size).toBe(Buffer.byteLength(JSON.stringify(value)));
    // before, half the cut had a lone high surrogate at its end
    expect(stored.preview).not.toMatch(/[\uD800-\uDBFF]$/);
    expect(stored.preview.length).toBeGreaterThanOrEqual(keep - 1);
    expect(stored.preview.length).toBeLessThanOrEqual(keep);
  }
});
