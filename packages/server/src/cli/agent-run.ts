import { readFile } from 'node:fs/promises';
import { text } from 'node:stream/consumers';
import { RETRY_POLICY_TRIGGER, isTerminalStatus, type Run, type RunList } from '@runlog/core';
import { CliError, type ApiClient } from './client.js';
import { formatCount, formatDuration, formatMoney, formatTokens } from './format.js';
import type { CliIo } from './io.js';

/** `runlog agents run`'s options. */
export interface AgentRunFlags {
  input?: string;
  inputFile?: string;
  delay?: number;
  at?: number;
  thread?: string;
  user?: string;
  parent?: string;
  tag?: string[];
  id?: string;
  wait?: boolean;
  each?: boolean;
}

/** The text of `--input` or `--input-file` (`-`: standard input), and where it came from. */
async function inputText(
  flags: Pick<AgentRunFlags, 'input' | 'inputFile'>,
  io: CliIo,
): Promise<{ source: string; text: string } | undefined> {
  if (flags.input !== undefined) return { source: '--input', text: flags.input };
  if (flags.inputFile === undefined) return undefined;
  try {
    return {
      source: `--input-file ${flags.inputFile}`,
      text:
        flags.inputFile === '-'
          ? await text(io.stdin ?? process.stdin)
          : await readFile(flags.inputFile, 'utf8'),
    };
  } catch (err) {
    throw new CliError(`cannot read ${flags.inputFile}: ${(err as Error).message}`, 2);
  }
}

/**
 * The run's input from `--input` (JSON text) or `--input-file` (a file of JSON, `-` standard
 * input); undefined when neither is given. Text that is not JSON is bad usage (exit 2) naming
 * the option and where it breaks.
 * @example await runInput({ input: '{"pr": 42}' }, io) // { pr: 42 }
 */
export async function runInput(
  flags: Pick<AgentRunFlags, 'input' | 'inputFile'>,
  io: CliIo,
): Promise<unknown> {
  const given = await inputText(flags, io);
  if (given === undefined) return undefined;
  try {
    return JSON.parse(given.text) as unknown;
  } catch (err) {
    throw new CliError(
      `${given.source} must be JSON (text quoted: '"hello"'): ${(err as Error).message}`,
      2,
    );
  }
}

/** The most runs one `agents run --each` queues. */
export const MAX_EACH_RUNS = 10_000;

/**
 * The inputs of `agents run --each`: JSON Lines from `--input-file` (`-` standard input),
 * one run's input a line, blank lines skipped. A line that is not JSON is bad usage (exit 2)
 * naming it.
 * @example await eachInputs({ inputFile: 'cases.jsonl' }, io) // [{ pr: 1 }, { pr: 2 }]
 */
export async function eachInputs(
  flags: Pick<AgentRunFlags, 'input' | 'inputFile'>,
  io: CliIo,
): Promise<unknown[]> {
  if (flags.inputFile === undefined)
    throw new CliError(
      "--each reads its runs' inputs from --input-file: JSON Lines, one input a line (- for standard input)",
      2,
    );
  const { source, text: lines } = (await inputText(flags, io))!;
  const inputs: unknown[] = [];
  for (const [i, line] of lines.split('\n').entries()) {
    if (line.trim() === '') continue;
    try {
      inputs.push(JSON.parse(line) as unknown);
    } catch (err) {
      throw new CliError(`${source} line ${i + 1} must be JSON: ${(err as Error).message}`, 2);
    }
  }
  if (inputs.length === 0)
    throw new CliError(`${source} holds no input: one JSON value a line, one run each`, 2);
  if (inputs.length > MAX_EACH_RUNS)
    throw new CliError(
      `${source} holds ${inputs.length} inputs: --each queues at most ${MAX_EACH_RUNS} runs`,
      2,
    );
  return inputs;
}

/** How often a run waited for is read again. */
export const WAIT_POLL_MS = 500;

/**
 * Calls `look` every `pollMs` until it answers something, and answers that. A server away
 * for a while (restarting, the network gone) is waited out, said once on stderr; an error it
 * answers (a revoked key) ends the wait. Answers undefined when `io.signal` (else Ctrl-C)
 * stops the wait first.
 */
async function pollUntil<T>(
  client: ApiClient,
  io: CliIo,
  look: () => Promise<T | undefined>,
  pollMs: number,
): Promise<T | undefined> {
  const stopped = new AbortController();
  const stop = () => stopped.abort();
  if (io.signal) io.signal.addEventListener('abort', stop, { once: true });
  else process.once('SIGINT', stop);
  try {
    let away = false;
    for (;;) {
      if (io.signal?.aborted || stopped.signal.aborted) return undefined;
      try {
        const found = await look();
        if (away) io.stderr.write('runlog: reconnected\n');
        away = false;
        if (found !== undefined) return found;
      } catch (err) {
        if (!(err instanceof CliError) || !err.transient) throw err;
        if (!away) io.stderr.write(`runlog: lost the connection to ${client.base}; waiting...\n`);
        away = true;
      }
      // the listener goes with its pause: one left behind by each poll piles up (Node warns
      // of a leak after ten, some five seconds into a wait)
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          stopped.signal.removeEventListener('abort', wake);
          resolve();
        };
        const timer = setTimeout(wake, away ? pollMs * 4 : pollMs);
        stopped.signal.addEventListener('abort', wake, { once: true });
      });
    }
  } finally {
    if (io.signal) io.signal.removeEventListener('abort', stop);
    else process.removeListener('SIGINT', stop);
  }
}

/**
 * Reads run `id` until it has ended and answers it, calling `onChange` with each new status
 * it is seen in (queued, running) on the way; as `pollUntil` waits (undefined: stopped by
 * Ctrl-C, the run goes on).
 * @example const ended = await waitForEnd(client, io, run.id, (r) => say(r.status));
 */
export async function waitForEnd(
  client: ApiClient,
  io: CliIo,
  id: string,
  onChange: (run: Run) => void,
  pollMs = WAIT_POLL_MS,
): Promise<Run | undefined> {
  const path = `/api/v1/runs/${encodeURIComponent(id)}`;
  let status: string | undefined;
  return pollUntil(
    client,
    io,
    async () => {
      const run = await client.request<Run>('GET', path);
      if (isTerminalStatus(run.status)) return run;
      if (run.status !== status) onChange(run);
      status = run.status;
      return undefined;
    },
    pollMs,
  );
}

/**
 * Follows runs of `agentId` to their ends, each through the retries its agent's retry
 * policy queues (the last attempt is its outcome), calling `onEnd` with each outcome and the
 * run's place in `runs` as it comes. One look lists the agent's runs since the first of them
 * (pages of 500), so a thousand runs cost a few requests a look, not a thousand. A failure
 * seen with no retry is taken as the outcome at the next look: the pages of one look are
 * not one snapshot, so its retry may have been queued between them. Answers the outcomes in
 * the order of `runs`, or undefined when stopped (Ctrl-C).
 */
export async function followRuns(
  client: ApiClient,
  io: CliIo,
  agentId: string,
  runs: readonly Run[],
  onEnd: (run: Run, index: number) => void,
  pollMs = 1000,
): Promise<Run[] | undefined> {
  const from = Math.min(...runs.map((r) => Date.parse(r.queued_at ?? r.created_at)));
  // the run followed for each place (a retry takes its run's place), and the outcomes
  const following = new Map(runs.map((r, i) => [r.id, i]));
  const outcomes: Run[] = [];
  let failedBefore = new Set<string>();
  return pollUntil(
    client,
    io,
    async () => {
      const seen = new Map<string, Run>();
      const retryOf = new Map<string, Run>();
      for (let cursor: string | undefined; ;) {
        const page = await client.request<RunList>('GET', '/api/v1/runs', {
          agent_id: agentId,
          from,
          limit: 500,
          cursor,
        });
        for (const r of page.runs) {
          seen.set(r.id, r);
          if (r.retry_of !== null && r.triggered_by === RETRY_POLICY_TRIGGER)
            retryOf.set(r.retry_of, r);
        }
        if (!page.has_more || page.next_cursor === null) break;
        cursor = page.next_cursor;
      }
      const failedNow = new Set<string>();
      for (const [id, index] of [...following]) {
        const run = seen.get(id);
        // deleted meanwhile: it has no outcome to wait for
        if (run === undefined || !isTerminalStatus(run.status)) continue;
        const retry = retryOf.get(id);
        if (retry !== undefined) {
          following.delete(id);
          following.set(retry.id, index);
          continue;
        }
        if ((run.status === 'failed' || run.status === 'timed_out') && !failedBefore.has(id)) {
          failedNow.add(id);
          continue;
        }
        following.delete(id);
        outcomes[index] = run;
        onEnd(run, index);
      }
      failedBefore = failedNow;
      return following.size === 0 ? outcomes : undefined;
    },
    pollMs,
  );
}

/**
 * What runs came to, in one line: how many, by status, their p50 and p95 duration, tokens
 * and cost.
 * @example summarizeRuns(runs) // '3 runs: 2 succeeded, 1 failed; p50 1.2s, p95 3.4s; 1.2k tokens; $0.0123'
 */
export function summarizeRuns(runs: readonly Run[]): string {
  const counts = new Map<string, number>();
  for (const r of runs) counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
  const byStatus = [...counts]
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .map(([status, n]) => `${formatCount(n)} ${status}`)
    .join(', ');
  const durations = runs
    .map((r) => r.duration_ms)
    .filter((d): d is number => d !== null)
    .sort((a, b) => a - b);
  const at = (q: number) =>
    durations[Math.min(durations.length - 1, Math.floor(q * durations.length))];
  const tokens = runs.reduce((n, r) => n + r.total_tokens, 0);
  const cost = runs.reduce((n, r) => n + r.cost_usd, 0);
  return (
    `${formatCount(runs.length)} ${runs.length === 1 ? 'run' : 'runs'}: ${byStatus}` +
    (durations.length > 0
      ? `; p50 ${formatDuration(at(0.5))}, p95 ${formatDuration(at(0.95))}`
      : '') +
    `; ${formatTokens(tokens)} tokens; ${formatMoney(cost)}`
  );
}
