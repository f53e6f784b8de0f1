/**
 * A model price as typed in Settings (US$ per million tokens): a plain decimal, 0 or more, a
 * leading `$` allowed; `undefined` for what does not read as one (`0,15`, `1e3`, blanks).
 * @example [parsePrice('0.15'), parsePrice('$2'), parsePrice('0,15')] // [0.15, 2, undefined]
 */
export function parsePrice(text: string): number | undefined {
  const t = text.trim().replace(/^\$/, '');
  return /^(\d+(\.\d*)?|\.\d+)$/.test(t) ? Number(t) : undefined;
}

/**
 * Why a price input cannot be saved, said beside it (a Save button disabled with no reason
 * left a user who typed `0,15` guessing); `undefined` when it can, or is empty.
 * @example priceError('0,15') // 'Use a dot for decimals: 0.15'
 */
export function priceError(text: string): string | undefined {
  if (text.trim() === '' || parsePrice(text) !== undefined) return undefined;
  return text.includes(',') ? 'Use a dot for decimals: 0.15' : 'Enter a number, 0 or more';
}
