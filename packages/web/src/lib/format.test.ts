import { describe, expect, it } from 'vitest';
import { formatCost, formatCostTick, runCost } from './format';

describe('formatCostTick', () => {
  it('gives axis ticks under $1 the digits that tell them apart', () => {
    const ticks = [0, 0.005, 0.01, 0.015, 0.02].map(formatCostTick);
    expect(ticks).toEqual(['$0', '$0.005', '$0.01', '$0.015', '$0.02']);
    expect(new Set([0.005, 0.01, 0.015].map(formatCost)).size).toBeLessThan(3);
  });

  it('reads as formatCost from $1 up', () => {
    expect(formatCostTick(2.5)).toBe(formatCost(2.5));
    expect(formatCostTick(1500)).toBe('$1,500');
  });
});

describe('runCost', () => {
  it('reads a run that used tokens at no recorded cost as unpriced, not free', () => {
    expect(runCost({ cost_usd: 0, total_tokens: 5200 })).toEqual({ text: '—', unpriced: true });
    expect(runCost({ cost_usd: 0, total_tokens: 0 })).toEqual({ text: '$0', unpriced: false });
    expect(runCost({ cost_usd: 0.5, total_tokens: 10 })).toEqual({
      text: '$0.50',
      unpriced: false,
    });
  });
});
