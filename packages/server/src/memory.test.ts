import type * as v8 from 'node:v8';
import { beforeEach, describe, expect, it, vi } from 'vitest';

const setFlags = vi.hoisted(() => vi.fn());
vi.mock('node:v8', async (importOriginal) => ({
  ...(await importOriginal<typeof v8>()),
  setFlagsFromString: setFlags,
}));

const { boundHeapGrowth, HEAP_GROWING_PERCENT } = await import('./memory.js');

describe('the server heap growth', () => {
  beforeEach(() => setFlags.mockClear());

  it('is held to HEAP_GROWING_PERCENT when Node was started without a choice', () => {
    expect(boundHeapGrowth(['--enable-source-maps', '--max-old-space-size=512'])).toBe(true);
    expect(setFlags).toHaveBeenCalledWith(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
    expect(HEAP_GROWING_PERCENT).toBeGreaterThan(0);
    expect(HEAP_GROWING_PERCENT).toBeLessThan(100);
  });

  it('is left to whoever started Node with a growth of their own', () => {
    expect(boundHeapGrowth(['--heap-growing-percent=200'])).toBe(false);
    expect(boundHeapGrowth(['--inspect', '--heap_growing_percent=10'])).toBe(false);
    expect(setFlags).not.toHaveBeenCalled();
  });
});
