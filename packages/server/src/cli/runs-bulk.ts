import { createInterface } from 'node:readline/promises';
import {
  assertNever,
  isTerminalStatus,
  mapPool,
  readableError,
  runMoment,
  type Run,
  type RunList,
} from '@runlog/core';
import { type ApiClient, CliError } from './client.js';
import { Palette, formatCount, formatRelative, oneLine, printable, table } from './format.js';
import type { CliIo } from './io.js';
import { hasRunFilter, noneMatched, runFilterQuery, type RunFilterFlags } from './run-filters.js';

/** Stop or Retry, on many runs at once. */
export type BulkAction = 'cancel' | 'retry';

/** The flags of `runs cancel` and `runs retry` that choose and bound the runs they act on. */
export interface BulkFlags extends RunFilterFlags {
  yes?: boolean;
  dryRun?: boolean;
  limit: number;
  /** retry: also the runs retried already. */
  again?: boolean;
  json?: boolean;
}

/** How many runs a filter acts on unless `--limit` says otherwise, and the most it may say. */
export const BULK_LIMIT = 100;
export const MAX_BULK_LIMIT = 1000;
/** How many runs are acted on at the same time: a few, not to crowd out the server's others. */
export const BULK_CONCURRENCY = 4;
/** How many of the runs a filter matched are shown before asking. */
const PREVIEW_ROWS = 10;

/** The statuses a filter without `--status` acts on: those the action makes sense for. */
export const DEFAULT_STATUSES: Record<BulkAction, string> = {
  cancel: 'queued,running',
  retry: 'failed,timed_out',
};

/**
 * The statuses `runs retry --status` may name: a queued or running run cannot be retried (the
 * server answers 409 for each), so a filter naming one would list runs "to retry" that all
 * fail. (Stop takes any status: a run that ended is skipped as already ended.)
 */
const RETRIABLE = ['succeeded', 'failed', 'cancelled', 'timed_out'];

/** What became of one run. */
export type BulkOutcome =
  'queued' | 'already_retried' | 'cancelled' | 'stop_requested' | 'already_ended' | 'failed';

export interface BulkResult {
  run_id: string;
  outcome: BulkOutcome;
  /** The run the server answered: the retry (queued or found), or the run stopped. */
  run?: Run;
  /** Why it failed, or why it was skipped. */
  error?: string;
}

/** Each outcome in the summary line, in the order it is said. */
const SAID: Record<BulkAction, [BulkOutcome, string][]> = {
  retry: [
    ['queued', 'queued'],
    ['already_retried', 'already retried'],
    ['failed', 'failed'],
  ],
  cancel: [
    ['cancelled', 'cancelled'],
    ['stop_requested', 'stop requested'],
    ['already_ended', 'already ended'],
    ['failed', 'failed'],
  ],
};

const VERB: Record<BulkAction, { base: string; done: string }> = {
  cancel: { base: 'stop', done: 'stopped' },
  retry: { base: 'retry', done: 'retried' },
};

/**
 * `runs cancel` / `runs retry` on several ids, or on the runs filters match: those are shown
 * first (how many, the first few, whether `--limit` left some out) and acted on only with
 * `--yes` or a yes typed at a terminal; `--dry-run` only lists them. Runs are acted on a few
 * at a time; a retry asks for `once` (unless `--again`), so a run retried already is skipped,
 * and Stop skips a run that ended. Ends with a summary, and a failure (exit 1) if any run
 * failed.
 */
export async function runBulk(
  client: ApiClient,
  io: CliIo,
  action: BulkAction,
  ids: readonly string[],
  flags: BulkFlags,
): Promise<void> {
  const p = Palette.for(io.stdout, io.env);
  const verb = VERB[action];
  const filtered = hasRunFilter(flags);
  if (ids.length > 0 && filtered)
    throw new CliError(
      `give run ids or filters, not both: the filters would not narrow the ids given (runlog runs list with the filters lists the ids they match)`,
      2,
    );
  if (ids.length === 0 && !filtered)
    throw new CliError(
      `give the ids of the runs to ${verb.base}, or filters (--agent, --status, --since, ...) to ${verb.base} the runs they match`,
      2,
    );
  if (
    action === 'retry' &&
    filtered &&
    flags.status?.split(',').some((status) => !RETRIABLE.includes(status))
  )
    throw new CliError(
      `--status: a queued or running run cannot be retried (stop it first); retry takes ${RETRIABLE.join(', ')}`,
      2,
    );
  const unique = [...new Set(ids)];
  if (!filtered) {
    if (flags.dryRun) return listIds(client, io, p, action, unique, flags);
    const acted = await actOn(client, io, p, action, unique, flags);
    return finish(io, p, action, acted, flags);
  }

  const { runs, total, capped } = await matching(client, action, flags);
  const selection = { matched: runs.length, total, total_capped: capped };
  if (flags.json && flags.dryRun)
    return writeJson(io, { action, dry_run: true, ...selection, runs });
  if (runs.length === 0) {
    if (flags.json) return finish(io, p, action, { ...selection, results: [] }, flags);
    const none = await noneMatched(client, flags, `no runs match: nothing to ${verb.base}`);
    io.stdout.write(`${none}${await retriedAlready(client, action, flags)}\n`);
    return;
  }
  const more = total > runs.length;
  const bound = more
    ? p.paint(
        'yellow',
        `${formatCount(total)}${capped ? '+' : ''} runs match; only the newest ${formatCount(runs.length)} (--limit ${flags.limit}) are taken: raise --limit (up to ${MAX_BULK_LIMIT}) or narrow the filters (--until)` +
          // a stopped run no longer matches, nor a retried one (unless --again)
          (action === 'cancel' || !flags.again
            ? ', or run it again, for the rest\n'
            : ' for the rest\n'),
      )
    : '';
  if (!flags.json) {
    const shown = flags.dryRun ? runs : runs.slice(0, PREVIEW_ROWS);
    io.stdout.write(
      `${countRuns(runs.length)} to ${verb.base}${flags.dryRun ? ' (dry run)' : ''}:\n` +
        runTable(shown, p) +
        (shown.length < runs.length
          ? p.paint('dim', `… and ${formatCount(runs.length - shown.length)} more\n`)
          : '') +
        bound,
    );
    if (flags.dryRun) {
      io.stdout.write(`dry run: nothing ${verb.done}\n`);
      return;
    }
  }
  if (!flags.yes) await confirm(io, flags, `${capitalized(verb.base)} ${countRuns(runs.length)}?`);
  const acted = await actOn(
    client,
    io,
    p,
    action,
    runs.map((r) => r.id),
    flags,
    new Map(runs.map((r) => [r.id, r])),
  );
  return finish(io, p, action, { ...selection, ...acted }, flags);
}

/** The runs the filters match, newest first, at most `--limit` of them, and how many match. */
/**
 * When a retry matched nothing because the runs it would take were retried already (a retry
 * leaves those out unless `--again`): how many, said after the "no runs match".
 */
async function retriedAlready(
  client: ApiClient,
  action: BulkAction,
  flags: BulkFlags,
): Promise<string> {
  if (action !== 'retry' || flags.again || flags.retried) return '';
  const retried = await client.request<RunList>('GET', '/api/v1/runs', {
    ...runFilterQuery(flags),
    status: flags.status ?? DEFAULT_STATUSES[action],
    retried: 'true',
    limit: 1,
  });
  if (retried.total === 0) return '';
  const n = `${retried.total}${retried.total_capped ? '+' : ''}`;
  return ` (${n} ${retried.total === 1 ? 'run matches that was' : 'runs match that were'} retried already: --again retries ${retried.total === 1 ? 'it' : 'them'} again)`;
}

async function matching(
  client: ApiClient,
  action: BulkAction,
  flags: BulkFlags,
): Promise<{ runs: Run[]; total: number; capped: boolean }> {
  const query = {
    ...runFilterQuery(flags),
    status: flags.status ?? DEFAULT_STATUSES[action],
    // a retry once leaves out the runs retried already, so a run past --limit is not
    // taken up by them: the next pass goes on with the rest
    ...(action === 'retry' && !flags.again && !flags.retried ? { retried: 'false' } : {}),
  };
  const runs: Run[] = [];
  let total = 0;
  let capped = false;
  for (let cursor: string | undefined; ;) {
    const page = await client.request<RunList>('GET', '/api/v1/runs', {
      ...query,
      limit: Math.min(500, flags.limit - runs.length),
      cursor,
    });
    if (cursor === undefined) {
      total = page.total;
      capped = page.total_capped === true;
    }
    runs.push(...page.runs);
    if (!page.has_more || page.next_cursor === null || runs.length >= flags.limit) break;
    cursor = page.next_cursor;
  }
  // a total counted at its cap is a lower bound; it is never below what was read
  return { runs, total: Math.max(total, runs.length), capped };
}

/** Goes on once the user says yes at a terminal; without one, `--yes` is needed. */
async function confirm(io: CliIo, flags: BulkFlags, question: string): Promise<void> {
  const stdin = io.stdin ?? process.stdin;
  const terminal = (stdin as { isTTY?: boolean }).isTTY === true && io.stderr.isTTY === true;
  if (!terminal || flags.json)
    throw new CliError(
      `add --yes to ${question.replace(/\?$/, '').toLowerCase()} (or --dry-run to only list them)`,
      2,
    );
  const rl = createInterface({ input: stdin, output: io.stderr, terminal: false });
  try {
    io.stderr.write(`${question} [y/N] `);
    const answer = await new Promise<string>((resolve) => {
      rl.once('line', resolve);
      rl.once('close', () => resolve(''));
    });
    if (!/^y(es)?$/i.test(answer.trim())) throw new CliError('nothing done: not confirmed');
  } finally {
    rl.close();
  }
}

/** Acts on `ids`, `BULK_CONCURRENCY` at a time, printing each outcome as it comes. */
async function actOn(
  client: ApiClient,
  io: CliIo,
  p: Palette,
  action: BulkAction,
  ids: readonly string[],
  flags: BulkFlags,
  listed?: ReadonlyMap<string, Run>,
): Promise<{ results: BulkResult[]; stopped?: Stopped }> {
  // a failure that is not the run's (the server away, the key refused) throws: the pool
  // starts no more, as every run left would fail the same way, one line each
  const done: BulkResult[] = [];
  try {
    await mapPool(ids, BULK_CONCURRENCY, async (id) => {
      const result =
        action === 'retry'
          ? await retryOne(client, id, flags.again === true)
          : await cancelOne(client, id, listed?.get(id));
      if (!flags.json) writeOutcome(io, p, result);
      done.push(result);
      return result;
    });
  } catch (error) {
    // what was done before it stopped is said too: a script must not act on those again
    const acted = new Set(done.map((r) => r.run_id));
    const order = new Map(ids.map((id, i) => [id, i]));
    done.sort((a, b) => order.get(a.run_id)! - order.get(b.run_id)!);
    return { results: done, stopped: { error, not_done: ids.filter((id) => !acted.has(id)) } };
  }
  // in the order given, whichever answered first
  const order = new Map(ids.map((id, i) => [id, i]));
  return { results: done.sort((a, b) => order.get(a.run_id)! - order.get(b.run_id)!) };
}

/** A pass stopped by a failure of the whole command, and the runs it had not acted on. */
interface Stopped {
  error: unknown;
  not_done: string[];
}

async function retryOne(client: ApiClient, id: string, again: boolean): Promise<BulkResult> {
  try {
    const { status, body } = await client.exchange<Run>(
      'POST',
      `/api/v1/runs/${encodeURIComponent(id)}/retry`,
      undefined,
      again ? undefined : { once: true },
    );
    return { run_id: id, outcome: status === 200 ? 'already_retried' : 'queued', run: body };
  } catch (err) {
    return failed(id, err);
  }
}

async function cancelOne(client: ApiClient, id: string, listed?: Run): Promise<BulkResult> {
  // ended since it was listed is the server's to say (409); ended as listed needs no request
  if (listed && isTerminalStatus(listed.status))
    return {
      run_id: id,
      outcome: 'already_ended',
      error: `run ${id} has already ended (${listed.status})`,
    };
  try {
    const run = await client.request<Run>('POST', `/api/v1/runs/${encodeURIComponent(id)}/cancel`);
    return {
      run_id: id,
      outcome: run.status === 'cancelled' ? 'cancelled' : 'stop_requested',
      run,
    };
  } catch (err) {
    if (err instanceof CliError && err.status === 409)
      return { run_id: id, outcome: 'already_ended', error: err.message };
    return failed(id, err);
  }
}

/**
 * The run's failure; a failure of the whole command (the server away, the key refused or
 * lacking the scope, an answer that is not the API's) is thrown.
 */
function failed(id: string, err: unknown): BulkResult {
  if (
    !(err instanceof CliError) ||
    err.transient ||
    err.status === undefined ||
    err.status === 401 ||
    err.status === 403
  )
    throw err;
  return { run_id: id, outcome: 'failed', error: err.message };
}

function writeOutcome(io: CliIo, p: Palette, r: BulkResult): void {
  const shown = printable(r);
  const run = shown.run;
  switch (shown.outcome) {
    case 'queued':
      io.stdout.write(
        `queued run ${run!.id} (attempt ${run!.attempt}, retry of ${shown.run_id})\n`,
      );
      return;
    case 'already_retried':
      io.stdout.write(
        p.paint(
          'dim',
          `skipped run ${shown.run_id}: retried already as ${run!.id} (attempt ${run!.attempt}, ${run!.status})`,
        ) + '\n',
      );
      return;
    case 'cancelled':
      io.stdout.write(`run ${shown.run_id} cancelled\n`);
      return;
    case 'stop_requested':
      io.stdout.write(`stop requested for run ${shown.run_id} (${run!.status})\n`);
      return;
    case 'already_ended':
      // the server's message names the run: said once
      io.stdout.write(
        p.paint(
          'dim',
          `skipped run ${shown.run_id}: ${oneLine(shown.error!.replace(`run ${shown.run_id} `, ''))}`,
        ) + '\n',
      );
      return;
    case 'failed':
      // the server's message names the run too: said once (`run x: not found`)
      io.stderr.write(
        `runlog: run ${shown.run_id}: ${oneLine(shown.error!.replace(`run ${shown.run_id} `, ''))}\n`,
      );
      return;
    default:
      assertNever(shown.outcome);
  }
}

/** The summary (text, or the results as JSON); a failure (exit 1) when any run failed. */
function finish(
  io: CliIo,
  p: Palette,
  action: BulkAction,
  outcome: {
    results: BulkResult[];
    stopped?: Stopped;
    matched?: number;
    total?: number;
    total_capped?: boolean;
  },
  flags: BulkFlags,
): void {
  const { stopped, ...shown } = outcome;
  const counts: Partial<Record<BulkOutcome, number>> = {};
  for (const r of outcome.results) counts[r.outcome] = (counts[r.outcome] ?? 0) + 1;
  const summary = Object.fromEntries(SAID[action].map(([key]) => [key, counts[key] ?? 0]));
  const reason = stopped && errorText(stopped.error);
  if (flags.json)
    writeJson(io, {
      action,
      ...shown,
      summary,
      ...(stopped ? { stopped: reason, not_done: stopped.not_done } : {}),
    });
  else if (!stopped || outcome.results.length > 0) {
    const parts = SAID[action].map(([key, said]) => {
      const text = `${said} ${formatCount(counts[key] ?? 0)}`;
      return key === 'failed' && counts.failed ? p.paint('red', text) : text;
    });
    io.stdout.write(`${countRuns(outcome.results.length)}: ${parts.join(', ')}\n`);
    if (stopped)
      io.stdout.write(
        p.paint(
          'red',
          `stopped before ${countRuns(stopped.not_done.length)}: ${stopped.not_done.join(', ')}`,
        ) + '\n',
      );
  }
  // the failure that stopped it, as it would have been said (exit code, message)
  if (stopped) throw stopped.error;
  const failures = counts.failed ?? 0;
  if (failures > 0)
    throw new CliError(
      `${formatCount(failures)} of ${countRuns(outcome.results.length)} could not be ${VERB[action].done}`,
    );
}

/** `--dry-run` with ids: each run as it is now (a missing one said), nothing done. */
async function listIds(
  client: ApiClient,
  io: CliIo,
  p: Palette,
  action: BulkAction,
  ids: readonly string[],
  flags: BulkFlags,
): Promise<void> {
  const found: Run[] = [];
  const missing: { run_id: string; error: string }[] = [];
  for (const id of ids) {
    try {
      found.push(await client.request<Run>('GET', `/api/v1/runs/${encodeURIComponent(id)}`));
    } catch (err) {
      if (!(err instanceof CliError) || err.status !== 404) throw err;
      missing.push({ run_id: id, error: err.message });
    }
  }
  if (flags.json) return writeJson(io, { action, dry_run: true, runs: found, missing });
  if (found.length > 0)
    io.stdout.write(
      `${countRuns(found.length)} to ${VERB[action].base} (dry run):\n` + runTable(found, p),
    );
  for (const m of printable(missing)) io.stdout.write(`not found: ${m.run_id}\n`);
  io.stdout.write(`dry run: nothing ${VERB[action].done}\n`);
}

function runTable(runs: readonly Run[], p: Palette): string {
  const shown = printable(runs);
  const errors = shown.some((r) => r.error);
  return table(
    [
      { header: 'ID', whole: true },
      { header: 'AGENT', whole: true },
      { header: 'STATUS', whole: true },
      { header: 'TRIGGER', optional: 1 },
      { header: 'WHEN' },
      ...(errors ? [{ header: 'ERROR', optional: 2 }] : []),
    ],
    shown.map((r) => [
      r.id,
      r.agent_id,
      p.status(r.status),
      r.trigger,
      formatRelative(runMoment(r).at),
      ...(errors ? [r.error ? p.paint('red', readableError(r.error).message) : ''] : []),
    ]),
    p,
  );
}

function countRuns(n: number): string {
  return `${formatCount(n)} ${n === 1 ? 'run' : 'runs'}`;
}

function capitalized(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function writeJson(io: CliIo, value: unknown): void {
  io.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
