import { readFile } from 'node:fs/promises';
import { text } from 'node:stream/consumers';
import { isTerminalStatus, type Run } from '@runlog/core';
import { CliError, type ApiClient } from './client.js';
import type { CliIo } from './io.js';

/** `runlog agents run`'s options. */
export interface AgentRunFlags {
  input?: string;
  inputFile?: string;
  delay?: number;
  at?: number;
  thread?: string;
  user?: string;
  tag?: string[];
  id?: string;
  wait?: boolean;
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
  let source: string;
  let json: string;
  if (flags.input !== undefined) {
    source = '--input';
    json = flags.input;
  } else if (flags.inputFile !== undefined) {
    source = `--input-file ${flags.inputFile}`;
    try {
      json =
        flags.inputFile === '-'
          ? await text(io.stdin ?? process.stdin)
          : await readFile(flags.inputFile, 'utf8');
    } catch (err) {
      throw new CliError(`cannot read ${flags.inputFile}: ${(err as Error).message}`, 2);
    }
  } else {
    return undefined;
  }
  try {
    return JSON.parse(json) as unknown;
  } catch (err) {
    throw new CliError(
      `${source} must be JSON (text quoted: '"hello"'): ${(err as Error).message}`,
      2,
    );
  }
}

/** How often a run waited for is read again. */
export const WAIT_POLL_MS = 500;

/**
 * Reads run `id` until it has ended and answers it, calling `onChange` with each new status
 * it is seen in (queued, running) on the way. A server away for a while (restarting, the
 * network gone) is waited out, said once on stderr; an error it answers (a revoked key, the
 * run deleted) ends the wait. Answers undefined when `io.signal` (else Ctrl-C) stops the wait
 * first: the run goes on.
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
  const stopped = new AbortController();
  const stop = () => stopped.abort();
  if (io.signal) io.signal.addEventListener('abort', stop, { once: true });
  else process.once('SIGINT', stop);
  try {
    let status: string | undefined;
    let away = false;
    for (;;) {
      if (io.signal?.aborted || stopped.signal.aborted) return undefined;
      let run: Run | undefined;
      try {
        run = await client.request<Run>('GET', path);
      } catch (err) {
        if (!(err instanceof CliError) || !err.transient) throw err;
        if (!away) io.stderr.write(`runlog: lost the connection to ${client.base}; waiting...\n`);
        away = true;
      }
      if (run) {
        if (away) io.stderr.write('runlog: reconnected\n');
        away = false;
        if (isTerminalStatus(run.status)) return run;
        if (run.status !== status) onChange(run);
        status = run.status;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, away ? pollMs * 4 : pollMs);
        stopped.signal.addEventListener(
          'abort',
          () => {
            clearTimeout(timer);
            resolve();
          },
          { once: true },
        );
      });
    }
  } finally {
    if (io.signal) io.signal.removeEventListener('abort', stop);
    else process.removeListener('SIGINT', stop);
  }
}
