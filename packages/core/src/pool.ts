/**
 * Calls `fn` on each item, at most `concurrency` at a time, in order; answers the results in
 * the items' order, `undefined` for those not started because `signal` fired first. A call
 * that throws starts no more, and the pool rejects with its error once the calls in flight
 * have ended, so a caller counting what was done counts them all. Bulk Stop and Retry in the
 * dashboard and the CLI go through it.
 * @example await mapPool(runs, 4, (run) => actOn('retry', run))
 */
export async function mapPool<T, R>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T, index: number) => Promise<R>,
  signal?: AbortSignal,
): Promise<(R | undefined)[]> {
  const results: (R | undefined)[] = items.map(() => undefined);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (next < items.length && !failed && !signal?.aborted) {
      const i = next++;
      try {
        results[i] = await fn(items[i]!, i);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  const settled = await Promise.allSettled(
    Array.from({ length: Math.min(concurrency, items.length) }, worker),
  );
  const failure = settled.find((s) => s.status === 'rejected');
  if (failure) throw failure.reason;
  return results;
}
