import { describe, expect, it } from 'vitest';
import { parsePrice, priceError } from './priceInput';

describe('price inputs', () => {
  it('reads a plain decimal of dollars, 0 or more', () => {
    expect(['0.15', ' 2 ', '$0.60', '.5', '0', '10.'].map(parsePrice)).toEqual([
      0.15, 2, 0.6, 0.5, 0, 10,
    ]);
    // what Number() took: blanks as 0, hex and exponents
    expect(['', '  ', '0x10', '1e3', '-1', '0,15', 'abc'].map(parsePrice)).toEqual(
      Array(7).fill(undefined),
    );
  });

  it('says why an input cannot be saved, and nothing for an empty or valid one', () => {
    expect(priceError('0,15')).toBe('Use a dot for decimals: 0.15');
    expect(priceError('abc')).toBe('Enter a number, 0 or more');
    expect(priceError('')).toBeUndefined();
    expect(priceError('0.15')).toBeUndefined();
  });
});
