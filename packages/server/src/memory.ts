import { setFlagsFromString } from 'node:v8';

/**
 * How far V8 lets the heap grow past what the last full collection kept, in percent.
 *
 * Recording promotes nearly everything it allocates: a batch's events live until their
 * group commit is durable, across young collections. By its own measure V8 then lets the old
 * generation reach up to four times the live heap before collecting it, so `/ingest` under
 * load held 140 MB of garbage beside 25 MB live and the process passed 300 MB
 * (`BENCH_PAYLOAD_CHARS=1000 npx tsx bench/ingest.ts`). At 50% the peak is about 230 MB and
 * the events/s do not move (bench/RESULTS.md): a full collection of a small heap is cheap.
 */
export const HEAP_GROWING_PERCENT = 50;

/**
 * Holds the heap's growth to `HEAP_GROWING_PERCENT` for the server process, unless whoever
 * started Node chose a growth of their own (`node --heap-growing-percent=N`; Node refuses the
 * flag in NODE_OPTIONS). V8 reads the flag at each full collection, so setting it once
 * started takes effect.
 */
export function boundHeapGrowth(execArgv: readonly string[] = process.execArgv): boolean {
  if (execArgv.some((arg) => /^--heap[-_]growing[-_]percent\b/.test(arg))) return false;
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  return true;
}
