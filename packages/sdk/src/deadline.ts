/** Milliseconds until `deadline` (epoch ms), never negative. */
export function timeLeft(deadline: number): number {
  return Math.max(0, deadline - Date.now());
}

/**
 * Waits for `work` until `deadline` (epoch ms) at the latest; never rejects. Work still under
 * way at the deadline goes on in the background: this only stops waiting for it.
 * @example await settleBy(Promise.all(handlers), Date.now() + 5_000)
 */
export async function settleBy(work: Promise<unknown>, deadline: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const ignore = () => {};
  await Promise.race([
    work.then(ignore, ignore),
    // not unref'd: whoever awaits this wants the process to wait for it
    new Promise<void>((resolve) => (timer = setTimeout(resolve, timeLeft(deadline)))),
  ]);
  clearTimeout(timer);
}
