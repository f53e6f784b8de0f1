/**
 * The problem with an option that must be a whole number of at least `min`, naming it, or
 * `undefined` when it is fine or not given: the one check behind `new Runlog()` and
 * `runlog.worker()`.
 * @example wholeNumberProblem('maxQueue', -5, 1) // 'maxQueue: must be a whole number >= 1, not -5'
 */
export function wholeNumberProblem(name: string, value: unknown, min: number): string | undefined {
  if (value === undefined || (Number.isSafeInteger(value) && (value as number) >= min))
    return undefined;
  return `${name}: must be a whole number >= ${min}, not ${String(value)}`;
}
