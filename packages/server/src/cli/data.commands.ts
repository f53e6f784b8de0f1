import type { Command } from 'commander';
import WebSocket from 'ws';
import type {
  Agent,
  AgentSummary,
  AgentUpsertBody,
  PostScoreBody,
  Run,
  RunList,
  RunSort,
  RunWithSteps,
  Score,
  ScoreList,
  ScoreSummary,
  StatsResponse,
  StatsScore,
  StatsTotals,
  Step,
  StepList,
  RetryPolicy,
  ThreadList,
  ThreadSummary,
  UserList,
  UserSummary,
  WorkerList,
  WorkerWait,
} from '@runlog/core';
import {
  DEFAULT_RETRY_DELAY_MS,
  RETRY_POLICY_TRIGGER,
  MAX_RETRY_ATTEMPTS,
  MAX_AGENT_CONCURRENCY,
  MAX_RETRY_DELAY_MS,
  MAX_RUN_DELAY_MS,
  RUN_SORTS,
  agentBudget,
  assertNever,
  budgetReached,
  costUnknown,
  canonicalZone,
  cutText,
  isHeldBack,
  isTimeZone,
  lastBucketsFrom,
  localDate,
  systemZone,
  orderStepTree,
  previewText,
  readableError,
  runMoment,
  unpricedModels,
  usageByModel,
  workerWait,
} from '@runlog/core';
import { ApiClient, CliError, DEFAULT_URL } from './client.js';
import {
  eachInputs,
  followRuns,
  runInput,
  summarizeRuns,
  waitForEnd,
  type AgentRunFlags,
} from './agent-run.js';
import {
  Palette,
  bar,
  countOf,
  cutToWidth,
  formatApproxDuration,
  formatCount,
  formatDuration,
  formatMoney,
  formatPercent,
  formatRelative,
  formatSpan,
  formatTokens,
  oneLine,
  printable,
  sparkline,
  table,
  visibleWidth,
  wrapList,
} from './format.js';
import type { CliIo } from './io.js';
import {
  hasRunFilter,
  runFilterQuery,
  timeWindow,
  withRunFilters,
  type RunFilterFlags,
  type RunFilterQuery,
  agentUnknown,
  noneMatched,
  unknownAgentLine,
} from './run-filters.js';
import {
  BULK_LIMIT,
  DEFAULT_STATUSES,
  MAX_BULK_LIMIT,
  runBulk,
  type BulkAction,
  type BulkFlags,
} from './runs-bulk.js';
import {
  NONE,
  atArg,
  durationArg,
  idArg,
  idListArg,
  intArg,
  oneOf,
  orNone,
  parseWhen,
  runIdArg,
  runIdsArg,
  scoreValueArg,
  textArg,
  usdArg,
  withJson,
} from './options.js';

export interface ClientFlags {
  url?: string;
  apiKey?: string;
  json?: boolean;
}

/** `--url`, `--api-key` and `--json`: what every command that talks to the server takes. */
export function withClient(cmd: Command): Command {
  return withJson(
    cmd
      .option('--url <url>', `server URL (env RUNLOG_URL, default ${DEFAULT_URL})`)
      .option('--api-key <key>', 'API key (env RUNLOG_API_KEY)'),
  );
}

export function clientFor(flags: ClientFlags, io: CliIo): ApiClient {
  // a key read from a file often ends in a newline: every command takes it as the server does
  const apiKey = (flags.apiKey ?? io.env.RUNLOG_API_KEY)?.trim();
  return new ApiClient({
    url: (flags.url ?? io.env.RUNLOG_URL ?? DEFAULT_URL).trim(),
    apiKey: apiKey || undefined,
  });
}

/** `--tz`: whose calendar days `--days` counts and the days are printed in. */
function withZone(cmd: Command): Command {
  return cmd.option(
    '--tz <zone>',
    "days of this IANA time zone, or local for this machine's (env RUNLOG_TZ, default UTC)",
  );
}

/**
 * The zone of `--tz`, else of RUNLOG_TZ, else UTC (the zone the CLI prints times in): `local`
 * is this machine's. An unknown one is bad usage, naming where it came from.
 */
function zoneFor(flags: { tz?: string }, io: CliIo): string {
  const given = flags.tz ?? io.env.RUNLOG_TZ?.trim();
  if (given === undefined || given === '') return 'UTC';
  const zone = given === 'local' ? systemZone() : given;
  if (!isTimeZone(zone))
    throw new CliError(
      `${flags.tz !== undefined ? '--tz' : 'RUNLOG_TZ'} must be an IANA time zone such as America/Los_Angeles, UTC or local, not ${given}`,
      2,
    );
  return canonicalZone(zone);
}

/**
 * What a stats request of the last `days` days asks for: from the start of the zone's day
 * `days - 1` days back; in a zone other than UTC, that zone's day buckets (the server's hour
 * buckets, over one or two days, are UTC hours).
 */
function lastDays(days: number, zone: string): { from: number; tz?: string; bucket?: 'day' } {
  const from = lastBucketsFrom(days, 'day', Date.now(), zone);
  return zone === 'UTC' ? { from } : { from, tz: zone, bucket: 'day' };
}

export function printJson(io: CliIo, value: unknown): void {
  io.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** When a run started; one that never did says when it was queued or ended, as the dashboard does. */
function runWhen(run: Run, p: Palette): string {
  const { at, label } = runMoment(run);
  // queued to start later, or an automatic retry waiting its delay: when it starts
  const said = label === 'queued' && isHeldBack(run) ? 'starts' : label;
  return said ? p.paint('dim', `${said} ${formatRelative(at)}`) : formatRelative(at);
}

function runRow(run: Run, p: Palette): string[] {
  return [
    run.id,
    run.agent_id,
    p.status(run.status),
    run.trigger,
    runWhen(run, p),
    formatDuration(run.duration_ms),
    String(run.step_count),
    formatTokens(run.total_tokens),
    costText(run),
  ];
}

const RUN_COLUMNS = [
  { header: 'ID', whole: true },
  { header: 'AGENT', whole: true },
  { header: 'STATUS', whole: true },
  { header: 'TRIGGER', optional: 1 },
  { header: 'STARTED' },
  { header: 'DURATION', align: 'right' as const },
  { header: 'STEPS', align: 'right' as const, optional: 2 },
  { header: 'TOKENS', align: 'right' as const, optional: 3 },
  { header: 'COST', align: 'right' as const, optional: 4 },
];

/**
 * The options of a list of summed-up owners (threads, users): a search of their ids, the
 * runs' time window, the page's size and cursor.
 */
function summedListOptions(command: Command, noun: string): Command {
  return command
    .option(
      '--search <text>',
      `only ${noun} whose id holds this text, in any case`,
      textArg('--search', 200),
    )
    .option(
      '--since <when>',
      'only runs queued or started since: 24h, 7d or a date',
      parseWhen('--since'),
    )
    .option('--until <when>', 'and until: 24h (ago), 7d or a date', parseWhen('--until'))
    .option('--limit <n>', `how many ${noun} (1-200)`, intArg('--limit', 1, 200), 20)
    .option(
      '--cursor <cursor>',
      'the next page: the cursor the previous page named',
      textArg('--cursor', 1000),
    );
}

/**
 * `runs list|show|tail|cancel|retry|start-now|score|scores|unscore`, `threads list|show`,
 * `users list|show`, `agents list|show|run|set`,
 * `workers`, `stats`, `metrics`.
 */
export function registerDataCommands(program: Command, io: CliIo): void {
  const palette = () => Palette.for(io.stdout, io.env);
  const runs = program
    .command('runs')
    .description('list, inspect, watch, stop, retry, start and score runs');

  const listCmd = withRunFilters(
    runs.command('list').description('list runs, newest first (or --sort cost, duration, tokens)'),
  )
    .option(
      '--sort <order>',
      `newest first, or the most cost, longest duration or most tokens first (${RUN_SORTS.join(', ')})`,
      oneOf('--sort', RUN_SORTS),
    )
    .option('--limit <n>', 'how many runs (1-500)', intArg('--limit', 1, 500), 20)
    .option(
      '--cursor <cursor>',
      'the next page: the cursor the previous page named (with the same filters and sort)',
      textArg('--cursor', 500),
    );
  withClient(listCmd).action(
    async (
      flags: ClientFlags &
        RunFilterFlags & {
          sort?: RunSort;
          limit: number;
          cursor?: string;
        },
    ) => {
      const client = clientFor(flags, io);
      const list = await listPage<RunList>(client, '/api/v1/runs', {
        ...runFilterQuery(flags),
        sort: flags.sort,
        limit: flags.limit,
        cursor: flags.cursor,
      });
      if (flags.json) return printJson(io, list);
      const shown = printable(list.runs);
      const p = palette();
      if (shown.length === 0) {
        io.stdout.write(
          (flags.cursor !== undefined
            ? 'no more runs'
            : await noneMatched(client, flags, 'no runs match')) + '\n',
        );
        return;
      }
      // listed by a score: what each run holds of it, a column that stays on a narrow terminal
      const score = flags.score !== undefined ? printable(flags.score) : undefined;
      // what the failed runs failed with, side by side: what they have in common shows
      const errors = shown.some((r) => r.error);
      io.stdout.write(
        table(
          [
            // the column a list is sorted by stays on a narrow terminal
            ...RUN_COLUMNS.map((c) =>
              (flags.sort === 'cost' && c.header === 'COST') ||
              (flags.sort === 'tokens' && c.header === 'TOKENS')
                ? { ...c, optional: undefined }
                : c,
            ),
            ...(score !== undefined ? [{ header: score.toUpperCase() }] : []),
            ...(errors ? [{ header: 'ERROR', optional: 5 }] : []),
          ],
          shown.map((r) => {
            const held =
              score !== undefined && Object.hasOwn(r.scores, score) ? r.scores[score] : undefined;
            return [
              ...runRow(r, p),
              ...(score !== undefined ? [held ? scoreSummaryText(held) : ''] : []),
              ...(errors
                ? [r.error ? p.paint('red', clip(readableError(r.error).message, 60)) : '']
                : []),
            ];
          }),
          p,
        ),
      );
      io.stdout.write(
        p.paint(
          'dim',
          // a filtered count stops at its cap: say so rather than show the cap as the count
          `${formatCount(list.runs.length)} of ${formatCount(list.total)}${list.total_capped ? '+' : ''} runs` +
            (list.has_more && list.next_cursor !== null
              ? `; the next page: --cursor ${list.next_cursor}`
              : ''),
        ) + '\n',
      );
    },
  );

  withClient(
    runs
      .command('show')
      .alias('get')
      .description('a run: its summary, then its steps as a tree')
      .argument('<id>', 'run id', runIdArg('<id>')),
  ).action(async (id: string, flags: ClientFlags) => {
    const client = clientFor(flags, io);
    const path = `/api/v1/runs/${encodeURIComponent(id)}`;
    const { steps_next_cursor: more, ...run } = await client.request<RunWithSteps>('GET', path, {
      include: 'steps',
    });
    // past the first page of steps the server answers inline, the rest a page at a time
    for (let cursor = more; cursor !== undefined;) {
      const page = await client.request<StepList>('GET', `${path}/steps`, { cursor });
      run.steps.push(...page.steps);
      cursor = page.next_cursor ?? undefined;
    }
    if (flags.json) return printJson(io, run);
    // the runs it started (sub-agents): `runs list --parent <id>` lists them all
    // (a server older than that filter refuses it: the run is shown without them)
    const subRuns = await client
      .request<RunList>('GET', '/api/v1/runs', { parent_run_id: id, limit: 10 })
      .catch(() => undefined);
    // a queued run waits for a worker of its agent: whether one was ever seen says why it waits,
    // and whether one is online but busy (it asks for runs only with a slot free)
    const queued = run.status === 'queued';
    const [agent, workers] = queued
      ? await Promise.all([
          client
            .request<AgentSummary>('GET', `/api/v1/agents/${encodeURIComponent(run.agent_id)}`)
            .catch(() => undefined),
          client.request<WorkerList>('GET', '/api/v1/workers').catch(() => undefined),
        ])
      : [undefined, undefined];
    // a run of a thread whose agent takes so many runs of a thread at once: how many run now
    const perThread = agent?.max_concurrency_per_thread ?? null;
    const threadId = run.thread_id;
    const thread =
      perThread !== null && threadId !== null
        ? await client
            .request<RunList>('GET', '/api/v1/runs', {
              agent_id: run.agent_id,
              thread_id: threadId,
              status: 'running',
              limit: 1,
            })
            .then((list) => ({ id: threadId, cap: perThread, running: list.total }))
            .catch(() => undefined)
        : undefined;
    io.stdout.write(
      showRun(
        printable(run),
        palette(),
        subRuns && printable(subRuns),
        agent &&
          workerWait(run.agent_id, agent.worker_seen_at, workers?.workers, Date.now(), {
            cap: agent.max_concurrency,
            thread,
            pausedAt: agent.paused_at,
            budget: agentBudget(agent),
          }),
      ),
    );
  });

  withClient(
    runs
      .command('tail')
      .description('watch runs start and change, live, until Ctrl-C')
      .option('--agent <id>', 'only this agent', idArg('--agent')),
  ).action(async (flags: ClientFlags & { agent?: string }) => {
    const client = clientFor(flags, io);
    const p = palette();
    const topic = flags.agent ? `agent:${flags.agent}` : 'runs';
    const onMessage = (msg: unknown) => {
      const m = msg as { type?: string; data?: Run };
      if (m.type !== 'run_update' || !m.data) return;
      if (flags.json) io.stdout.write(JSON.stringify(m.data) + '\n');
      else io.stdout.write(tailLine(printable(m.data), p) + '\n');
    };
    // a connection that went silent (a network dropped, a laptop asleep) closes no socket:
    // one that has not answered a ping for a whole interval is ended, and reconnected below
    const heartbeat = (socket: WebSocket) => {
      let answered = true;
      const answer = () => (answered = true);
      socket.on('pong', answer).on('ping', answer).on('message', answer);
      const timer = setInterval(() => {
        if (socket.readyState !== WebSocket.OPEN) return clearInterval(timer);
        if (!answered) return socket.terminate();
        answered = false;
        socket.ping();
      }, io.heartbeatMs ?? HEARTBEAT_MS);
      timer.unref();
      return socket;
    };
    let ws = heartbeat(await client.subscribe([topic], onMessage));
    // a misspelt agent would be watched in silence until Ctrl-C: one not recorded yet is
    // said (it may still come: its first run makes it)
    const unknownAgent =
      flags.agent !== undefined &&
      !flags.json &&
      (await agentUnknown(client, flags.agent).catch((err: unknown) => {
        ws.close();
        throw err;
      }))
        ? flags.agent
        : undefined;
    if (!flags.json)
      io.stderr.write(
        `watching ${flags.agent ? `agent ${flags.agent}` : 'all runs'}; Ctrl-C to stop\n` +
          (unknownAgent !== undefined
            ? palette().paint(
                'yellow',
                unknownAgentLine(unknownAgent, ' yet: its first run will show here'),
              ) + '\n'
            : ''),
      );
    let stopped = false;
    const stopSignal = new Promise<void>((resolve) => {
      const stop = () => {
        stopped = true;
        resolve();
      };
      if (io.signal) {
        if (io.signal.aborted) stop();
        io.signal.addEventListener('abort', stop, { once: true });
      } else {
        process.once('SIGINT', stop);
      }
    });
    // until Ctrl-C: a server that restarts or a dropped connection is waited out, as the
    // dashboard does; a key that no longer opens the socket ends it
    for (;;) {
      const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
      await Promise.race([closed, stopSignal]);
      if (stopped) {
        ws.removeAllListeners('close');
        ws.close();
        return;
      }
      io.stderr.write(`runlog: lost the connection to ${client.base}; reconnecting...\n`);
      for (let attempt = 1; ; attempt++) {
        const wait = Math.min(10_000, 500 * 2 ** (attempt - 1));
        await Promise.race([new Promise((r) => setTimeout(r, wait)), stopSignal]);
        if (stopped) return;
        try {
          ws = heartbeat(await client.subscribe([topic], onMessage));
          io.stderr.write('runlog: reconnected (updates while away are not shown)\n');
          break;
        } catch (err) {
          // the server is still away: try again; anything else (a revoked key) is the end
          if (!(err instanceof CliError) || !err.transient) throw err;
        }
      }
    }
  });

  /** `runs cancel` and `runs retry`: one run by its id, or many (`runs-bulk.ts`). */
  const bulkCommand = (action: BulkAction, description: string) =>
    withClient(
      withRunFilters(
        runs
          .command(action)
          .description(description)
          .argument('[ids...]', 'run ids (or filters instead)', runIdsArg('<id>')),
        `only these statuses (comma list; default ${DEFAULT_STATUSES[action]})`,
      )
        .option(
          '--limit <n>',
          `with filters: act on at most n runs, the newest (1-${MAX_BULK_LIMIT})`,
          intArg('--limit', 1, MAX_BULK_LIMIT),
          BULK_LIMIT,
        )
        .option('--dry-run', `list the runs it would ${action}; change nothing`)
        .option('-y, --yes', 'act on the runs filters match without asking'),
    );

  bulkCommand(
    'cancel',
    'stop runs (their queued and running sub-runs too): a queued run ends at once, a running ' +
      'one is told to stop; several ids, or ' +
      'filters (the runs they match are listed first; --yes to go on)',
  ).action(async (given: string[] | undefined, flags: ClientFlags & BulkFlags) => {
    const ids = given ?? [];
    const client = clientFor(flags, io);
    if (ids.length !== 1 || hasRunFilter(flags) || flags.dryRun)
      return runBulk(client, io, 'cancel', ids, flags);
    const [id] = ids as [string];
    const run = await client.request<Run>('POST', `/api/v1/runs/${encodeURIComponent(id)}/cancel`);
    if (flags.json) return printJson(io, run);
    // a run's id is its project's: another project (another key) may have one of the same id
    io.stdout.write(
      run.status === 'cancelled'
        ? `run ${run.id} of project ${run.project_id} cancelled\n`
        : `stop requested for run ${run.id} of project ${run.project_id} (${run.status}); the agent running it is told to stop\n`,
    );
  });

  bulkCommand(
    'retry',
    'queue a new run with the same agent, input and thread; a run retried already is ' +
      'skipped unless --again. Several ids, or filters (the runs they match are listed ' +
      'first; --yes to go on)',
  )
    .option('--again', 'retry it even when it was retried already')
    .option(
      '--wait',
      'one run: wait until the retry ends, print its output (stdout); exit 1 unless it succeeded',
    )
    .option('--input <json>', "one run: the retry's input instead of its own, JSON ('null': none)")
    .option(
      '--input-file <path>',
      "one run: the retry's input, JSON read from a file (- for stdin)",
    )
    .action(
      async (
        given: string[] | undefined,
        flags: ClientFlags & BulkFlags & Pick<AgentRunFlags, 'input' | 'inputFile' | 'wait'>,
      ) => {
        const ids = given ?? [];
        const client = clientFor(flags, io);
        const fixed = flags.input !== undefined || flags.inputFile !== undefined;
        if (ids.length !== 1 || hasRunFilter(flags) || flags.dryRun) {
          if (fixed || flags.wait)
            throw new CliError(
              '--input, --input-file and --wait take one run id, without filters',
              2,
            );
          return runBulk(client, io, 'retry', ids, flags);
        }
        if (flags.input !== undefined && flags.inputFile !== undefined)
          throw new CliError('give --input or --input-file, not both', 2);
        const input = fixed ? { input: (await runInput(flags, io)) ?? null } : {};
        const [id] = ids as [string];
        // a run retried already (a loop over failures run twice, a teammate): a second retry runs
        // the job's side effects twice, so it takes --again; the dashboard leads to the retry.
        // The server looks and queues in one step (`once`): two passes at once queue one retry
        const { status, body: run } = await client.exchange<Run>(
          'POST',
          `/api/v1/runs/${encodeURIComponent(id)}/retry`,
          undefined,
          { ...(flags.again ? {} : { once: true }), ...input },
        );
        if (status === 200)
          throw new CliError(
            `run ${id} was retried already as ${run.id} (attempt ${run.attempt}, ${run.status}): nothing queued; retry ${run.id} to try again, or add --again`,
          );
        if (flags.json && !flags.wait) return printJson(io, run);
        // with --wait, stdout is the retry's output: what it says on the way goes to stderr
        if (!flags.json)
          (flags.wait ? io.stderr : io.stdout).write(
            `queued run ${run.id} of project ${run.project_id} (attempt ${run.attempt}, retry of ${id}${fixed ? ', with the input given' : ''})\n`,
          );
        if (flags.wait) await followOne(client, run, flags.json);
      },
    );

  withClient(
    runs
      .command('start-now')
      .description(
        'let a worker take at once a queued run held back until later (--delay, --at, or an automatic retry waiting its delay)',
      )
      .argument('<id>', 'run id', runIdArg('<id>')),
  ).action(async (id: string, flags: ClientFlags) => {
    const client = clientFor(flags, io);
    const path = `/api/v1/runs/${encodeURIComponent(id)}`;
    const before = await client.request<Run>('GET', path);
    const run = await client.request<Run>('POST', `${path}/start-now`);
    if (flags.json) return printJson(io, run);
    io.stdout.write(
      run.queued_at === before.queued_at
        ? `run ${run.id} was due already (queued ${formatRelative(run.queued_at)}): it waits for a worker of ${run.agent_id}\n`
        : `run ${run.id} may start now: a worker of ${run.agent_id} takes it next (it was to start ${formatRelative(before.queued_at)})\n`,
    );
  });

  withClient(
    runs
      .command('score')
      .description('score a run or one of its steps: true or false, a number, or a label')
      .argument('<run-id>', 'run id', runIdArg('<run-id>'))
      .argument('<name>', 'what it scores: feedback, relevance, ...', textArg('<name>', 200))
      .argument(
        '<value>',
        'true or false, a number (0.8, -1), or else a label (1-200 characters)',
        scoreValueArg('<value>'),
      )
      .option('--comment <text>', 'why', textArg('--comment', 10_000))
      .option('--step <step-id>', 'score this step of the run', idArg('--step'))
      .option(
        '--id <id>',
        "the score's id: one the run has (see runs scores) is replaced",
        idArg('--id'),
      ),
  ).action(
    async (
      runId: string,
      name: string,
      value: Score['value'],
      flags: ClientFlags & { comment?: string; step?: string; id?: string },
    ) => {
      const body: PostScoreBody = {
        name,
        value,
        source: 'cli',
        ...(flags.comment !== undefined ? { comment: flags.comment } : {}),
        ...(flags.step !== undefined ? { step_id: flags.step } : {}),
        ...(flags.id !== undefined ? { id: flags.id } : {}),
      };
      const score = await clientFor(flags, io).request<Score>(
        'POST',
        `/api/v1/runs/${encodeURIComponent(runId)}/scores`,
        undefined,
        body,
      );
      if (flags.json) return printJson(io, score);
      const s = printable(score);
      io.stdout.write(
        `scored run ${s.run_id}${s.step_id ? ` (step ${s.step_id})` : ''}: ${s.name} ${scoreValueText(s.value)} (score ${s.id})\n`,
      );
    },
  );

  withClient(
    runs
      .command('scores')
      .description("a run's scores, oldest first")
      .argument('<run-id>', 'run id', runIdArg('<run-id>')),
  ).action(async (runId: string, flags: ClientFlags) => {
    const list = await clientFor(flags, io).request<ScoreList>(
      'GET',
      `/api/v1/runs/${encodeURIComponent(runId)}/scores`,
    );
    if (flags.json) return printJson(io, list);
    const shown = printable(list.scores);
    if (shown.length === 0) {
      io.stdout.write(`run ${runId} has no scores\n`);
      return;
    }
    const p = palette();
    // a STEP column once some score is of a step
    const ofSteps = shown.some((s) => s.step_id !== null);
    io.stdout.write(
      table(
        [
          { header: 'ID', whole: true, optional: 2 },
          { header: 'NAME' },
          { header: 'VALUE' },
          ...(ofSteps ? [{ header: 'STEP', optional: 1 }] : []),
          { header: 'COMMENT' },
          { header: 'SOURCE', optional: 3 },
          { header: 'WHEN', optional: 4 },
        ],
        shown.map((s) => [
          s.id,
          s.name,
          scoreValueText(s.value, p),
          ...(ofSteps ? [s.step_id ?? ''] : []),
          s.comment ? clip(s.comment, 200) : '',
          s.source ?? '',
          formatRelative(s.updated_at),
        ]),
        p,
      ),
    );
  });

  withClient(
    runs
      .command('unscore')
      .description('delete a score of a run')
      .argument('<run-id>', 'run id', runIdArg('<run-id>'))
      .argument('<score-id>', 'score id (from runs scores)', idArg('<score-id>')),
  ).action(async (runId: string, scoreId: string, flags: ClientFlags) => {
    await clientFor(flags, io).request(
      'DELETE',
      `/api/v1/runs/${encodeURIComponent(runId)}/scores/${encodeURIComponent(scoreId)}`,
    );
    if (flags.json) return printJson(io, { run_id: runId, score_id: scoreId, deleted: true });
    io.stdout.write(`deleted score ${scoreId} of run ${runId}\n`);
  });

  const threads = program
    .command('threads')
    .description('list and inspect threads: the runs of one conversation (a thread_id)');

  withClient(
    summedListOptions(
      threads
        .command('list')
        .description('threads, the latest active first: runs, failures, agents, tokens, cost')
        .option('--agent <ids>', 'only runs of these agents (comma list)', idListArg('--agent'))
        .option('--user <id>', "only this user's runs", textArg('--user', 200)),
      'threads',
    ).addHelpText(
      'after',
      '\nWith --agent, --user, --since or --until, each thread is summed up over the runs\n' +
        "they keep. A thread's runs: runlog threads show <thread-id>.",
    ),
  ).action(
    async (
      flags: ClientFlags & {
        agent?: string;
        user?: string;
        search?: string;
        since?: number;
        until?: number;
        limit: number;
        cursor?: string;
      },
    ) => {
      const list = await listPage<ThreadList>(clientFor(flags, io), '/api/v1/threads', {
        agent_id: flags.agent,
        user_id: flags.user,
        q: flags.search,
        ...timeWindow(flags),
        limit: flags.limit,
        cursor: flags.cursor,
      });
      if (flags.json) return printJson(io, list);
      const shown = printable(list.threads);
      if (shown.length === 0) {
        io.stdout.write(flags.cursor !== undefined ? 'no more threads\n' : 'no threads match\n');
        return;
      }
      const p = palette();
      io.stdout.write(
        table(
          [
            // copied whole into `threads show`
            { header: 'THREAD', whole: true },
            { header: 'RUNS', align: 'right' },
            { header: 'FAILED', align: 'right' },
            { header: 'ACTIVE', align: 'right', optional: 1 },
            { header: 'AGENTS', optional: 4 },
            { header: 'USER', optional: 3 },
            { header: 'TOKENS', align: 'right', optional: 2 },
            { header: 'COST', align: 'right', optional: 5 },
            { header: 'LAST' },
            { header: 'FIRST INPUT' },
          ],
          shown.map((t) => [
            t.thread_id,
            formatCount(t.runs),
            t.failed > 0 ? p.paint('red', formatCount(t.failed)) : '0',
            t.active > 0 ? p.paint('cyan', formatCount(t.active)) : '0',
            clip(t.agent_ids.join(','), 40),
            t.user_id ?? '-',
            formatTokens(t.total_tokens),
            costText(t),
            formatRelative(t.last_at),
            t.first_run.input !== null ? clip(t.first_run.input, TURN_PREVIEW_CHARS) : '',
          ]),
          p,
        ),
      );
      // no total: counting every thread would group every threaded run again
      io.stdout.write(
        p.paint(
          'dim',
          countOf(shown.length, 'thread') +
            (list.has_more && list.next_cursor !== null
              ? `; the next page: --cursor ${list.next_cursor}`
              : ''),
        ) + '\n',
      );
    },
  );

  withClient(
    threads
      .command('show')
      .alias('get')
      .description('a thread: its summary, then its turns (runs) oldest first')
      .argument(
        '<thread-id>',
        'thread id (as recorded: any text up to 200 characters)',
        textArg('<thread-id>', 200),
      )
      .option('--limit <n>', 'how many of its latest turns (1-500)', intArg('--limit', 1, 500), 20),
  ).action(async (threadId: string, flags: ClientFlags & { limit: number }) => {
    // a URL's path reads `.` and `..` (and their %2e spellings) as a step up, not as a name
    if (threadId === '.' || threadId === '..')
      throw new CliError(
        `thread ${threadId} cannot be named in a URL; runlog runs list --thread ${threadId} lists its runs`,
        2,
      );
    const client = clientFor(flags, io);
    const [thread, list] = await Promise.all([
      client.request<ThreadSummary>('GET', `/api/v1/threads/${encodeURIComponent(threadId)}`),
      // newest first: the latest turns, shown oldest first
      client.request<RunList>('GET', '/api/v1/runs', { thread_id: threadId, limit: flags.limit }),
    ]);
    const turns = list.runs.slice().reverse();
    // a turn recorded between the two reads counts: whichever count is higher is the later
    const earlier = list.has_more ? Math.max(thread.runs, list.total) - list.runs.length : 0;
    if (flags.json) return printJson(io, { ...thread, turns, earlier_turns: earlier });
    io.stdout.write(showThread(printable(thread), printable(turns), earlier, palette()));
  });

  const users = program
    .command('users')
    .description('list and inspect users: the runs made for each user (a user_id), summed up');

  withClient(
    summedListOptions(
      users
        .command('list')
        .description(
          'users, the latest active first: runs, failures, threads, agents, tokens, cost, latest run',
        )
        .option('--agent <ids>', 'only runs of these agents (comma list)', idListArg('--agent')),
      'users',
    ).addHelpText(
      'after',
      '\nWith --agent, --since or --until, each user is summed up over the runs they keep\n' +
        "(--since 7d: the last 7 days). A user's totals and latest runs: runlog users show <user-id>.",
    ),
  ).action(
    async (
      flags: ClientFlags & {
        agent?: string;
        search?: string;
        since?: number;
        until?: number;
        limit: number;
        cursor?: string;
      },
    ) => {
      const list = await listPage<UserList>(clientFor(flags, io), '/api/v1/users', {
        agent_id: flags.agent,
        q: flags.search,
        ...timeWindow(flags),
        limit: flags.limit,
        cursor: flags.cursor,
      });
      if (flags.json) return printJson(io, list);
      const shown = printable(list.users);
      if (shown.length === 0) {
        const filtered = [flags.agent, flags.search, flags.since, flags.until].some(
          (f) => f !== undefined,
        );
        io.stdout.write(
          flags.cursor !== undefined
            ? 'no more users\n'
            : filtered
              ? 'no users match\n'
              : // a project whose runs name no user: how a run gets one
                "no users yet: runs name the user they are made for with the SDK's userId option\n" +
                "(runlog.run(agent, fn, { userId })), the API's user_id or runlog agents run --user <id>\n",
        );
        return;
      }
      const p = palette();
      io.stdout.write(
        table(
          [
            // copied whole into `users show`
            { header: 'USER', whole: true },
            { header: 'RUNS', align: 'right' },
            { header: 'FAILED', align: 'right' },
            { header: 'THREADS', align: 'right', optional: 1 },
            { header: 'AGENTS', optional: 3 },
            { header: 'TOKENS', align: 'right', optional: 2 },
            { header: 'COST', align: 'right', optional: 4 },
            { header: 'LAST ACTIVE' },
            { header: 'LATEST RUN', whole: true },
          ],
          shown.map((u) => [
            u.user_id,
            formatCount(u.runs),
            u.failed > 0 ? p.paint('red', formatCount(u.failed)) : '0',
            formatCount(u.threads),
            clip(u.agent_ids.join(','), 40),
            formatTokens(u.total_tokens),
            costText(u),
            formatRelative(u.last_at),
            p.status(u.last_run.status),
          ]),
          p,
        ),
      );
      // no total: counting every user would group every run made for one again
      io.stdout.write(
        p.paint(
          'dim',
          countOf(shown.length, 'user') +
            (list.has_more && list.next_cursor !== null
              ? `; the next page: --cursor ${list.next_cursor}`
              : ''),
        ) + '\n',
      );
    },
  );

  withClient(
    users
      .command('show')
      .alias('get')
      .description(
        "a user's totals (runs, failures, threads, agents, tokens, cost), then its latest runs",
      )
      .argument(
        '<user-id>',
        'user id (as recorded: any text up to 200 characters)',
        textArg('<user-id>', 200),
      )
      .option('--limit <n>', 'how many of its latest runs (1-500)', intArg('--limit', 1, 500), 10),
  ).action(async (userId: string, flags: ClientFlags & { limit: number }) => {
    // a URL's path reads `.` and `..` (and their %2e spellings) as a step up, not as a name
    if (userId === '.' || userId === '..')
      throw new CliError(
        `user ${userId} cannot be named in a URL; runlog runs list --user ${userId} lists its runs`,
        2,
      );
    const client = clientFor(flags, io);
    const path = `/api/v1/users/${encodeURIComponent(userId)}`;
    if (flags.json) return printJson(io, await client.request<UserSummary>('GET', path));
    const [user, list] = await Promise.all([
      client.request<UserSummary>('GET', path),
      // newest first: the latest runs, shown oldest first
      client.request<RunList>('GET', '/api/v1/runs', { user_id: userId, limit: flags.limit }),
    ]);
    const latest = list.runs.slice().reverse();
    // a run recorded between the two reads counts: whichever count is higher is the later
    const earlier = list.has_more ? Math.max(user.runs, list.total) - list.runs.length : 0;
    io.stdout.write(showUser(printable(user), printable(latest), earlier, palette()));
  });

  const agents = program
    .command('agents')
    .description(
      'the agents that record runs: list them, run one, show and set their settings, pause their schedule',
    );
  withClient(
    agents.command('list').description('agents with their latest run and 24 h health'),
  ).action(async (flags: ClientFlags) => {
    const res = await clientFor(flags, io).request<{ agents: AgentSummary[] }>(
      'GET',
      '/api/v1/agents',
    );
    if (flags.json) return printJson(io, res);
    const p = palette();
    const shown = printable(res.agents);
    if (shown.length === 0) {
      io.stdout.write('no agents yet\n');
      return;
    }
    // a NEXT RUN column once some agent runs on a schedule (or has one paused, or is paused)
    const scheduled = shown.some((a) => a.next_run_at || a.schedule?.paused || a.paused_at);
    io.stdout.write(
      table(
        [
          { header: 'AGENT', whole: true },
          { header: 'NAME', optional: 1 },
          { header: 'LAST RUN' },
          { header: '' },
          { header: 'RUNS 24H', align: 'right' },
          { header: 'FAIL 24H', align: 'right' },
          { header: 'COST 24H', align: 'right', optional: 2 },
          ...(scheduled ? [{ header: 'NEXT RUN' }] : []),
          { header: 'LAST ERROR' },
        ],
        shown.map((a) => [
          a.id,
          a.name,
          a.latest_run ? p.status(a.latest_run.status) : '-',
          a.latest_run ? formatRelative(a.latest_run.started_at ?? a.latest_run.created_at) : '',
          formatCount(a.counts_24h.runs),
          formatPercent(a.counts_24h.fail_rate),
          // no usage, or tokens at no known price (the cost unknown, not $0); against its
          // budget when it has one, in yellow once the budget holds its runs back
          withBudget(
            a,
            a.counts_24h.total_tokens === 0 && a.counts_24h.cost_usd === 0
              ? '-'
              : costUnknown(a.counts_24h)
                ? 'no price'
                : costText(a.counts_24h),
            p,
          ),
          ...(scheduled
            ? [
                a.paused_at
                  ? p.paint('yellow', 'agent paused')
                  : a.schedule?.paused
                    ? p.paint('yellow', 'paused')
                    : a.next_run_at
                      ? // its slots pass without a run while it is over its budget
                        overBudgetNow(a)
                        ? p.paint('yellow', 'over budget')
                        : formatRelative(a.next_run_at)
                      : '',
              ]
            : []),
          // when, first: a last error of days ago is not the failure of now
          a.last_error
            ? `${a.last_error.at ? `${formatRelative(a.last_error.at)}: ` : ''}${clip(a.last_error.message, 50)}`
            : '',
        ]),
        p,
      ),
    );
  });

  withClient(
    agents
      .command('show')
      .alias('get')
      .description("an agent's settings: schedule, timeout, limits; its worker last seen")
      .argument('<agent-id>', 'agent id', idArg('<agent-id>')),
  ).action(async (agentId: string, flags: ClientFlags) => {
    const agent = await clientFor(flags, io).request<AgentSummary>(
      'GET',
      `/api/v1/agents/${encodeURIComponent(agentId)}`,
    );
    if (flags.json) return printJson(io, agent);
    io.stdout.write(showAgent(printable(agent), palette()));
  });

  /** `, to start at <time> (in 2h)` for a run queued to start later; '' for one due. */
  const startsText = (run: Run) =>
    isHeldBack(run) ? `, to start at ${run.queued_at} (${formatRelative(run.queued_at)})` : '';
  /**
   * Says on stderr why a run just queued will wait: its agent is paused or over its 24 h
   * budget, or no worker serves it now (none ever asked for its runs, or those that did
   * stopped or went away).
   */
  const noWorkerYet = (agentId: string, what: string, held: Unserved) =>
    io.stderr.write(
      palette().paint(
        'yellow',
        held.pausedAt
          ? `agent ${agentId} is paused (since ${formatRelative(held.pausedAt)}): ${what} until runlog agents resume ${agentId}`
          : held.overBudget
            ? `agent ${agentId} is over its budget: its runs of the last 24 hours cost ${formatMoney(held.overBudget.spentUsd)} of ${limitMoney(held.overBudget.capUsd)}; ${what} until that falls below it (runlog agents set ${agentId} --max-cost-24h raises it)`
            : held.seenAt === null
              ? `no worker has asked for ${agentId}'s runs yet: ${what} until one does (runlog.worker(...) in the SDK)`
              : `no worker serves ${agentId} now (one last asked for its runs ${formatRelative(held.seenAt)}): ${what} until one does (runlog workers lists them)`,
      ) + '\n',
    );

  /**
   * `--wait` on one run: follows it to its end through the retries its agent's retry policy
   * queues, saying on stderr when it starts and how an attempt retried ended, then prints its
   * output on stdout (`--json`: the ended run); a failure is the command's (exit 1, its error
   * on stderr). Ctrl-C stops waiting, the run going on.
   */
  const followOne = async (client: ApiClient, run: Run, json: boolean | undefined) => {
    const p = palette();
    const say = (line: string) => io.stderr.write(line + '\n');
    const outcome = (r: Run) => {
      const error = r.error ? readableError(r.error) : null;
      return (
        `run ${r.id} ${r.status} in ${formatDuration(r.duration_ms)}` +
        (error ? `: ${error.type ? `${error.type}: ` : ''}${error.message}` : '')
      );
    };
    // the run's outcome is its automatic retries': its agent's retry policy queues the next
    // attempt with the failure, in the same change, so it is there when the failure is seen
    let end: Run | undefined;
    for (let current = run; ;) {
      end = await waitForEnd(client, io, current.id, (r) => {
        if (!json && r.status === 'running')
          say(`running${r.started_at ? ` since ${r.started_at}` : ''}`);
      });
      if (!end)
        throw new CliError(
          `stopped waiting: run ${current.id} goes on (runlog runs cancel ${current.id} stops it)`,
        );
      if (end.status !== 'failed' && end.status !== 'timed_out') break;
      const { runs: retries } = await client.request<RunList>('GET', '/api/v1/runs', {
        retry_of: end.id,
        trigger: 'retry',
        limit: 1,
      });
      const retry = retries.find((r) => r.triggered_by === RETRY_POLICY_TRIGGER);
      if (!retry) break;
      if (!json)
        say(
          printable(
            `${outcome(end)}; its agent's retry policy retries it as ${retry.id} (attempt ${retry.attempt}), ` +
              `starting ${formatRelative(retry.queued_at)}`,
          ),
        );
      current = retry;
    }
    if (json) printJson(io, end);
    else if (end.output !== null && end.output !== undefined) {
      // text as it is, so that `$(runlog agents run ... --wait)` is the answer itself; on a
      // terminal, with its escape sequences made harmless as everywhere recorded text shows
      const text =
        typeof end.output === 'string' ? end.output : JSON.stringify(end.output, null, 2);
      io.stdout.write((io.stdout.isTTY ? printable(text) : text) + '\n');
    }
    // a failure is the command's: exit 1, its error on stderr
    if (end.status !== 'succeeded') throw new CliError(printable(outcome(end)));
    if (!json) say(p.paint('green', outcome(end)));
  };

  /**
   * `agents run --each`: a run for each input, queued in one change a thousand at a time
   * (`POST /runs/enqueue`); with `--wait`, each outcome as it comes (through its automatic
   * retries) and a summary, exit 1 unless every one succeeded.
   */
  const runEach = async (
    client: ApiClient,
    agentId: string,
    unserved: Unserved | undefined,
    inputs: unknown[],
    common: Record<string, unknown>,
    flags: ClientFlags & AgentRunFlags,
  ) => {
    const queued: Run[] = [];
    for (let i = 0; i < inputs.length; i += 1000) {
      const batch = inputs.slice(i, i + 1000).map((input) => ({
        agent_id: agentId,
        ...(input !== undefined ? { input } : {}),
        ...common,
      }));
      const res = await client
        .request<{ runs: Run[] }>('POST', '/api/v1/runs/enqueue', undefined, { runs: batch })
        .catch((err: unknown) => {
          // a batch is all or none, but the ones before it stay queued: say how many
          if (queued.length === 0 || !(err instanceof CliError)) throw err;
          throw new CliError(
            `queued the runs of the first ${queued.length} inputs, then: ${err.message}`,
          );
        });
      queued.push(...res.runs);
    }
    const p = palette();
    const say = (line: string) => (flags.json ? io.stderr : io.stdout).write(line + '\n');
    if (!flags.json || flags.wait)
      say(`queued ${formatCount(queued.length)} runs of ${agentId}${startsText(queued[0]!)}`);
    if (unserved && !flags.json) noWorkerYet(agentId, 'the runs wait', unserved);
    if (!flags.wait) {
      if (flags.json) printJson(io, { runs: queued });
      return;
    }
    const width = String(queued.length).length;
    const ended = await followRuns(client, io, agentId, queued, (run, index) => {
      if (flags.json) return;
      const error = run.error ? readableError(run.error) : null;
      say(
        `[${String(index + 1).padStart(width)}/${queued.length}] ${run.id} ${p.status(run.status)} in ${formatDuration(run.duration_ms)}` +
          (run.attempt > 1 ? ` (attempt ${run.attempt})` : '') +
          (error
            ? `: ${printable(error.type ? `${error.type}: ${error.message}` : error.message)}`
            : ''),
      );
    });
    if (!ended)
      throw new CliError(
        `stopped waiting: the runs go on (runlog runs cancel --agent ${agentId} --status queued,running stops them)`,
      );
    if (flags.json) printJson(io, { runs: ended });
    const summary = summarizeRuns(ended);
    const failed = ended.filter((r) => r.status !== 'succeeded').length;
    if (failed > 0) throw new CliError(summary);
    say(p.paint('green', summary));
  };

  withClient(
    agents
      .command('run')
      .description(
        'queue a run of the agent for its workers, now or later; --wait follows it to its end',
      )
      .argument('<agent-id>', 'agent id', idArg('<agent-id>'))
      .option('--input <json>', `its input, JSON: '{"pr": 42}' (text as JSON too: '"hi"')`)
      .option('--input-file <path>', 'its input, JSON read from a file (- for standard input)')
      .option(
        '--delay <span>',
        'no worker takes it before this long from now: 30s, 10m, 2h (at most a year)',
        durationArg('--delay', 0, MAX_RUN_DELAY_MS),
      )
      .option(
        '--at <time>',
        'no worker takes it before this time: 2026-03-01T10:00 (UTC) or 2026-03-01T10:00+01:00',
        atArg('--at'),
      )
      .option(
        '--thread <id>',
        'the conversation (thread_id) it belongs to',
        textArg('--thread', 200),
      )
      .option('--user <id>', 'the user (user_id) it runs for', textArg('--user', 200))
      .option(
        '--parent <run-id>',
        'the run it serves (parent_run_id): listed among its sub-runs, and stopped with it',
        runIdArg('--parent'),
      )
      .option('--tag <tag>', 'a tag; repeat for more', (v: string, all: string[] = []) => [
        ...all,
        textArg('--tag', 200)(v),
      ])
      .option(
        '--id <run-id>',
        "the new run's id: the same command again answers that run instead of queueing another",
        runIdArg('--id'),
      )
      .option(
        '--wait',
        'wait until it ends: print its output (stdout) or error; exit 1 unless it succeeded',
      )
      .option(
        '--each',
        'a run for each line of --input-file (JSON Lines); with --wait, each outcome and a summary',
      ),
  ).action(async (agentId: string, flags: ClientFlags & AgentRunFlags) => {
    if (flags.input !== undefined && flags.inputFile !== undefined)
      throw new CliError('give --input or --input-file, not both', 2);
    if (flags.delay !== undefined && flags.at !== undefined)
      throw new CliError('give --delay or --at, not both', 2);
    if (flags.each && flags.id !== undefined)
      throw new CliError('--id names one run: not with --each', 2);
    const inputs = flags.each ? await eachInputs(flags, io) : [await runInput(flags, io)];
    const input = inputs[0];
    const client = clientFor(flags, io);
    // a misspelt agent would be made, and its run wait for a worker that never comes: an
    // agent not recorded yet is queued for only when a worker serves it
    const agent = await client
      .request<AgentSummary>('GET', `/api/v1/agents/${encodeURIComponent(agentId)}`)
      .catch(async (err: unknown) => {
        if (!(err instanceof CliError) || err.status !== 404) throw err;
        const { workers } = await client.request<WorkerList>('GET', '/api/v1/workers');
        if (workers.some((w) => w.agents.includes(agentId))) return undefined;
        throw new CliError(
          `no agent ${agentId} in this project, and no worker serves it: runlog agents list and runlog workers show what there is`,
        );
      });
    const common = {
      trigger: 'manual',
      source: 'cli',
      ...(flags.thread !== undefined ? { thread_id: flags.thread } : {}),
      ...(flags.user !== undefined ? { user_id: flags.user } : {}),
      ...(flags.parent !== undefined ? { parent_run_id: flags.parent } : {}),
      ...(flags.tag !== undefined ? { tags: flags.tag } : {}),
      ...(flags.delay !== undefined ? { delay_ms: flags.delay } : {}),
      ...(flags.at !== undefined ? { run_at: flags.at } : {}),
    };
    // no worker online serves it: none ever asked for its runs, or those that did stopped
    // (a worker started a moment ago may not be noted on the agent yet: the workers list
    // says), so a run queued now would wait, and --wait with it, in silence
    // or it is paused, or over its 24 h budget, and no worker is handed its runs until then
    const budget = agent && agentBudget(agent);
    const overBudget = budget && budgetReached(budget) ? budget : undefined;
    const unserved: Unserved | undefined =
      agent !== undefined &&
      (agent.paused_at !== null ||
        overBudget !== undefined ||
        !(await client.request<WorkerList>('GET', '/api/v1/workers')).workers.some(
          (w) => w.online && w.agents.includes(agentId),
        ))
        ? { seenAt: agent.worker_seen_at, pausedAt: agent.paused_at, overBudget }
        : undefined;
    if (flags.each) return runEach(client, agentId, unserved, inputs, common, flags);
    const run = await client.request<Run>(
      'POST',
      `/api/v1/agents/${encodeURIComponent(agentId)}/runs`,
      undefined,
      {
        ...(flags.id !== undefined ? { id: flags.id } : {}),
        ...(input !== undefined ? { input } : {}),
        ...common,
      },
    );
    // with --wait, stdout is the run's output: what it says on the way goes to stderr
    const say = (line: string) => (flags.wait ? io.stderr : io.stdout).write(line + '\n');
    if (!flags.json) {
      // given --id, a run that exists already is answered as it is
      const queued = run.status === 'queued';
      say(
        queued
          ? `queued run ${run.id} of ${agentId}${startsText(run)}`
          : `run ${run.id} of ${agentId} (given --id: it is ${run.status})`,
      );
      if (unserved && queued) noWorkerYet(agentId, 'the run waits', unserved);
    }
    if (!flags.wait) {
      if (flags.json) printJson(io, run);
      return;
    }
    await followOne(client, run, flags.json);
  });

  withClient(
    agents
      .command('set')
      .description("set an agent's name, description, schedule, timeout or limits")
      .argument('<agent-id>', 'agent id', idArg('<agent-id>'))
      .option('--name <text>', 'the name the dashboard shows', textArg('--name', 200))
      .option('--description <text>', 'what it does', textArg('--description', 5000))
      .option('--no-description', 'remove the description')
      .option(
        '--schedule <cron>',
        'queue a run on this cron schedule: "0 9 * * 1-5" (the server checks it)',
        orNone(textArg('--schedule', 200)),
      )
      .option(
        '--timezone <tz>',
        "the schedule's time zone: Europe/Paris (default: the zone it has, else UTC)",
        textArg('--timezone', 100),
      )
      .option('--no-schedule', 'remove the schedule')
      .option(
        '--timeout <duration>',
        'end a run as timed out past this: 30s, 5m, 2h (1s to 7d)',
        orNone(durationArg('--timeout', 1000, MAX_TIMEOUT_MS)),
      )
      .option('--no-timeout', 'remove the timeout')
      .option(
        '--max-cost <usd>',
        'end a run failed once it costs more: 0.50 (US$)',
        orNone(usdArg('--max-cost', 1_000_000)),
      )
      .option(
        '--max-tokens <n>',
        'end a run failed once its input and output tokens pass n',
        orNone(intArg('--max-tokens', 1, 1e12)),
      )
      .option(
        '--max-steps <n>',
        'end a run failed once its steps pass n',
        orNone(intArg('--max-steps', 1, 1e9)),
      )
      .option('--no-limits', 'remove the cost, token and step limits')
      .option(
        '--max-cost-24h <usd>',
        'hold its queued runs back, and skip its schedule, while the runs it started in the last 24 hours cost this much: 20 (US$)',
        orNone(usdArg('--max-cost-24h', 1_000_000_000)),
      )
      .option(
        '--max-attempts <n>',
        'retry a failed run a worker executed on its own, until n runs in all (2 to 20)',
        orNone(intArg('--max-attempts', 2, MAX_RETRY_ATTEMPTS)),
      )
      .option(
        '--retry-delay <duration>',
        'how long the first retry waits for: 0s, 30s, 5m (default 10s; at most 1d)',
        durationArg('--retry-delay', 0, MAX_RETRY_DELAY_MS),
      )
      .option(
        '--retry-backoff <how>',
        'exponential (each retry waits twice as long; the default) or fixed',
        oneOf('--retry-backoff', ['exponential', 'fixed'] as const),
      )
      .option('--no-retry', 'retry no run on its own')
      .option(
        '--max-concurrency <n>',
        `let workers execute at most n of its runs at once, all of them together (1 to ${MAX_AGENT_CONCURRENCY})`,
        orNone(intArg('--max-concurrency', 1, MAX_AGENT_CONCURRENCY)),
      )
      .option('--no-max-concurrency', 'let workers execute any number of its runs at once')
      .option(
        '--max-concurrency-per-thread <n>',
        `let workers execute at most n runs of one thread at once (1: a conversation's turns one after another; 1 to ${MAX_AGENT_CONCURRENCY})`,
        orNone(intArg('--max-concurrency-per-thread', 1, MAX_AGENT_CONCURRENCY)),
      )
      .option(
        '--no-max-concurrency-per-thread',
        'let workers execute any number of runs of a thread at once',
      )
      .addHelpText(
        'after',
        '\nSettings left out keep their value; none clears one (--max-cost none), as\n' +
          '--no-schedule, --no-timeout, --no-limits and --no-retry do. A run past a limit is\n' +
          'ended failed (BudgetExceeded) and its agent told to stop. With --max-attempts, a\n' +
          'run a worker took that fails or times out is queued again (retry_of, attempt + 1)\n' +
          'after the retry delay; not one stopped or past a limit. With --max-concurrency, the\n' +
          'runs past n wait queued until one of those running ends; with\n' +
          "--max-concurrency-per-thread, a thread's next runs wait for its running ones. An\n" +
          'agent id not seen before makes a new agent. The settings: runlog agents show\n' +
          '<agent-id>.',
      ),
  ).action(
    async (
      agentId: string,
      flags: ClientFlags & {
        name?: string;
        description?: string | false;
        schedule?: string | typeof NONE | false;
        timezone?: string;
        timeout?: number | typeof NONE | false;
        maxCost?: number | typeof NONE;
        maxTokens?: number | typeof NONE;
        maxSteps?: number | typeof NONE;
        limits: boolean;
        maxCost24h?: number | typeof NONE;
        maxAttempts?: number | typeof NONE;
        retryDelay?: number;
        retryBackoff?: 'exponential' | 'fixed';
        retry: boolean;
        maxConcurrency?: number | typeof NONE | false;
        maxConcurrencyPerThread?: number | typeof NONE | false;
      },
    ) => {
      // `none` and a --no- flag both clear a setting: null, as the API takes it
      const cleared = <T>(v: T | typeof NONE | false | undefined) =>
        v === NONE || v === false ? null : v;
      const schedule = cleared(flags.schedule);
      if (flags.timezone !== undefined && schedule === null)
        throw new CliError(
          '--timezone is the zone of a schedule: leave it out with --no-schedule',
          2,
        );
      const limitFlags = [
        ['--max-cost', flags.maxCost],
        ['--max-tokens', flags.maxTokens],
        ['--max-steps', flags.maxSteps],
      ] as const;
      const given = limitFlags.filter(([, v]) => v !== undefined).map(([name]) => name);
      if (!flags.limits && given.length > 0)
        throw new CliError(`--no-limits removes every limit: leave out ${given.join(' and ')}`, 2);
      const body: AgentUpsertBody = {};
      if (flags.name !== undefined) body.name = flags.name;
      if (flags.description !== undefined) body.description = cleared(flags.description);
      if (flags.timeout !== undefined) body.timeout_ms = cleared(flags.timeout);
      if (!flags.limits) {
        body.max_cost_usd = null;
        body.max_tokens = null;
        body.max_steps = null;
      }
      if (flags.maxCost !== undefined) body.max_cost_usd = cleared(flags.maxCost);
      if (flags.maxTokens !== undefined) body.max_tokens = cleared(flags.maxTokens);
      if (flags.maxSteps !== undefined) body.max_steps = cleared(flags.maxSteps);
      if (flags.maxCost24h !== undefined) body.max_cost_usd_24h = cleared(flags.maxCost24h);
      if (schedule === null) body.schedule = null;
      const changesSchedule = typeof schedule === 'string' || flags.timezone !== undefined;
      const retryGiven = [
        ['--max-attempts', flags.maxAttempts],
        ['--retry-delay', flags.retryDelay],
        ['--retry-backoff', flags.retryBackoff],
      ] as const;
      const retryFlags = retryGiven.filter(([, v]) => v !== undefined).map(([name]) => name);
      const noRetry = !flags.retry || flags.maxAttempts === NONE;
      if (noRetry && retryFlags.some((name) => name !== '--max-attempts'))
        throw new CliError(
          `--no-retry (or --max-attempts none) removes the retry policy: leave out ${retryFlags.filter((n) => n !== '--max-attempts').join(' and ')}`,
          2,
        );
      if (noRetry && !flags.retry && flags.maxAttempts !== undefined)
        throw new CliError('--no-retry removes the retry policy: leave out --max-attempts', 2);
      if (noRetry) body.retry = null;
      if (flags.maxConcurrency !== undefined) body.max_concurrency = cleared(flags.maxConcurrency);
      if (flags.maxConcurrencyPerThread !== undefined)
        body.max_concurrency_per_thread = cleared(flags.maxConcurrencyPerThread);
      const changesRetry = !noRetry && retryFlags.length > 0;
      if (Object.keys(body).length === 0 && !changesSchedule && !changesRetry)
        throw new CliError(
          'nothing to set: give --name, --description, --schedule, --timezone, --timeout, ' +
            '--max-cost, --max-tokens, --max-steps, --max-cost-24h, --max-attempts, --max-concurrency or ' +
            '--max-concurrency-per-thread (or a --no- flag to remove one)',
          2,
        );
      const client = clientFor(flags, io);
      const path = `/api/v1/agents/${encodeURIComponent(agentId)}`;
      // an id not known yet makes a new agent: read first, to say so (a typo would
      // otherwise leave the intended agent as it was, quietly)
      const before = await client.request<AgentSummary>('GET', path).catch((err: unknown) => {
        if (err instanceof CliError && err.status === 404) return undefined;
        throw err;
      });
      if (changesSchedule) {
        // the API takes a schedule whole: what is not given of it is the one it has
        const cron = typeof schedule === 'string' ? schedule : before?.schedule?.cron;
        if (cron === undefined)
          throw new CliError(
            `--timezone needs --schedule <cron>: agent ${agentId} has no schedule`,
            2,
          );
        body.schedule = { cron, timezone: flags.timezone ?? before?.schedule?.timezone ?? 'UTC' };
      }
      if (changesRetry) {
        // the API takes a policy whole: what is not given of it is the one the agent has
        const attempts = flags.maxAttempts ?? before?.retry?.max_attempts;
        if (attempts === undefined || attempts === NONE)
          throw new CliError(
            `${retryFlags.join(' and ')} need${retryFlags.length === 1 ? 's' : ''} --max-attempts <n>: agent ${agentId} retries no run on its own`,
            2,
          );
        body.retry = {
          max_attempts: attempts,
          delay_ms: flags.retryDelay ?? before?.retry?.delay_ms ?? DEFAULT_RETRY_DELAY_MS,
          backoff: flags.retryBackoff ?? before?.retry?.backoff ?? 'exponential',
        };
      }
      const agent = await client
        .request<Agent>('PUT', path, undefined, body)
        .catch((err: unknown) => {
          throw flagError(err, AGENT_FLAGS);
        });
      if (flags.json) return printJson(io, agent);
      if (!before) io.stdout.write(`created agent ${agentId}: no agent had this id\n`);
      // with its 24 h cost as read before: a budget set under it says its runs wait from now
      const shown = before?.counts_24h ? { ...agent, counts_24h: before.counts_24h } : agent;
      io.stdout.write(showAgent(printable(shown), palette()));
    },
  );

  for (const pause of [true, false]) {
    const verb = pause ? 'pause' : 'resume';
    withClient(
      agents
        .command(verb)
        .description(
          pause
            ? 'pause an agent: no worker is handed its queued runs (they wait) and its schedule queues none; runs under way go on'
            : 'resume an agent (and its schedule, if paused): workers take its queued runs again, its schedule goes on from its next slot',
        )
        .argument('<agent-id>', 'agent id', idArg('<agent-id>'))
        .option(
          '--schedule-only',
          pause
            ? 'pause only its schedule (no run is queued; workers still take the queued ones)'
            : 'resume only its paused schedule',
        ),
    ).action(async (agentId: string, flags: ClientFlags & { scheduleOnly?: boolean }) => {
      const client = clientFor(flags, io);
      const path = `/api/v1/agents/${encodeURIComponent(agentId)}`;
      const put = (body: AgentUpsertBody) => client.request<Agent>('PUT', path, undefined, body);
      if (!flags.scheduleOnly) {
        // a PUT makes an agent that is not there: a misspelt id is said instead
        const before = await client.request<Agent>('GET', path);
        // resumed: its schedule too, when it was paused on its own
        const agent = await put({
          paused: pause,
          ...(!pause && before.schedule?.paused ? { schedule: { paused: false } } : {}),
        });
        if (flags.json) return printJson(io, agent);
        const shown = printable(agent);
        io.stdout.write(
          pause
            ? `agent ${shown.id} paused: no worker is handed its queued runs, and its schedule queues none, until runlog agents resume ${shown.id}; runs under way go on (runlog runs cancel --agent ${shown.id} stops them)\n`
            : `agent ${shown.id} resumed: workers take its queued runs${
                shown.schedule
                  ? `; its schedule ${shown.next_run_at ? `queues the next run ${timeText(shown.next_run_at)}` : 'fires no more'}`
                  : ''
              }\n`,
        );
        return;
      }
      // `{paused}` alone: the server keeps the cron and zone it has (a change made meanwhile
      // elsewhere stays), and refuses an agent without a schedule
      const agent = await put({ schedule: { paused: pause } }).catch(async (err: unknown) => {
        // refused for want of a schedule: an id no agent has (a typo) is said so instead
        if (err instanceof CliError && err.status === 400) await client.request<Agent>('GET', path);
        throw err;
      });
      if (flags.json) return printJson(io, agent);
      const shown = printable(agent);
      const schedule = shown.schedule ? `${shown.schedule.cron} (${shown.schedule.timezone})` : '';
      io.stdout.write(
        pause
          ? `schedule ${schedule} of agent ${shown.id} paused: it queues no run until resumed (runlog agents resume ${shown.id})\n`
          : `schedule ${schedule} of agent ${shown.id} resumed: ${
              shown.next_run_at
                ? `next run ${timeText(shown.next_run_at)}`
                : shown.paused_at
                  ? `the agent is paused, so it queues none until runlog agents resume ${shown.id}`
                  : 'it fires no more'
            }\n`,
      );
    });
  }

  withClient(
    program
      .command('workers')
      .description('the workers seen in the last 24 hours: their agents, online, runs held'),
  ).action(async (flags: ClientFlags) => {
    const res = await clientFor(flags, io).request<WorkerList>('GET', '/api/v1/workers');
    if (flags.json) return printJson(io, res);
    const p = palette();
    const shown = printable(res.workers);
    if (shown.length === 0) {
      // a worker that stopped (worker.stop(), a drained SIGTERM) took itself off the list
      io.stdout.write(
        'no worker running (a worker that stops leaves this list; one that died stays 24 hours): queued runs start when one does\n',
      );
      return;
    }
    io.stdout.write(
      table(
        [
          { header: 'WORKER', whole: true },
          { header: 'STATUS' },
          { header: 'AGENTS' },
          { header: 'RUNNING', align: 'right' },
          { header: 'LAST SEEN', optional: 1 },
          { header: 'FIRST SEEN', optional: 2 },
        ],
        shown.map((w) => [
          w.id,
          w.online ? p.paint('green', 'online') : p.paint('dim', 'quiet'),
          w.agents.length > 0 ? clip(w.agents.join(','), 40) : '-',
          formatCount(w.running),
          formatRelative(w.last_seen_at),
          formatRelative(w.first_seen_at),
        ]),
        p,
      ),
    );
  });

  withClient(
    withZone(
      program
        .command('stats')
        .description(
          'totals, fail rate, durations, tokens and cost, per agent and per model; the scores given',
        )
        .option('--agent <id>', 'only this agent', idArg('--agent'))
        .option(
          '--days <n>',
          'over the last N days, today the last',
          intArg('--days', 1, 3650),
          30,
        ),
    ),
  ).action(async (flags: ClientFlags & { agent?: string; days: number; tz?: string }) => {
    const zone = zoneFor(flags, io);
    const client = clientFor(flags, io);
    const stats = await client.request<StatsResponse>('GET', '/api/v1/runs/stats', {
      agent_id: flags.agent,
      ...lastDays(flags.days, zone),
    });
    await agentExists(client, flags.agent, stats);
    if (flags.json) return printJson(io, stats);
    const p = palette();
    const t = stats.totals;
    io.stdout.write(
      `${p.paint('bold', `Last ${countOf(flags.days, 'day')}`)} (${localDate(zone, Date.parse(stats.from))} to ${localDate(zone, Date.parse(stats.to) - 1)}${zone === 'UTC' ? '' : `, ${zone}`})\n` +
        `  runs       ${formatCount(t.runs)}${t.runs > 0 ? statusSummary(t, p, 13 + formatCount(t.runs).length) : ''}\n` +
        `  fail rate  ${formatPercent(t.fail_rate)}\n` +
        // percentiles come from log-scale histograms, within 5%
        `  duration   p50 ${formatApproxDuration(t.p50_duration_ms)}  p95 ${formatApproxDuration(t.p95_duration_ms)}  avg ${formatDuration(t.avg_duration_ms)}\n` +
        `  tokens     ${formatTokens(t.total_tokens)}  (in ${formatTokens(t.input_tokens)}, out ${formatTokens(t.output_tokens)})\n` +
        `  cost       ${costText(t)}\n\n`,
    );
    const tables: string[] = [];
    if (stats.by_agent.length > 0)
      tables.push(
        table(
          [
            { header: 'AGENT', whole: true },
            { header: 'RUNS', align: 'right' },
            // on a narrow terminal what the others tell or matters less goes first
            { header: 'FAILED', align: 'right', optional: 1 },
            { header: 'FAIL RATE', align: 'right' },
            { header: 'P50', align: 'right', optional: 2 },
            { header: 'P95', align: 'right', optional: 4 },
            { header: 'TOKENS', align: 'right', optional: 3 },
            { header: 'COST', align: 'right' },
          ],
          stats.by_agent.map((a) => [
            a.agent_id,
            formatCount(a.runs),
            formatCount(a.by_status.failed + a.by_status.timed_out),
            formatPercent(a.fail_rate),
            formatDuration(a.p50_duration_ms),
            formatDuration(a.p95_duration_ms),
            formatTokens(a.total_tokens),
            costText(a),
          ]),
          p,
        ),
      );
    // what each model took of the range's cost: most first, steps naming none as "(no model)"
    const spent = stats.by_model.reduce((sum, m) => sum + m.cost_usd, 0);
    if (stats.by_model.length > 0)
      tables.push(
        table(
          [
            { header: 'MODEL' },
            { header: 'RUNS', align: 'right', optional: 2 },
            { header: 'CALLS', align: 'right' },
            { header: 'IN', align: 'right', optional: 3 },
            { header: 'OUT', align: 'right', optional: 4 },
            { header: 'TOKENS', align: 'right' },
            { header: 'COST', align: 'right' },
            { header: 'SHARE', align: 'right', optional: 1 },
          ],
          printable(stats.by_model).map((m) => [
            m.model ?? '(no model)',
            formatCount(m.runs),
            formatCount(m.calls),
            formatTokens(m.input_tokens),
            formatTokens(m.output_tokens),
            formatTokens(m.total_tokens),
            costText(m),
            spent > 0 ? formatPercent(m.cost_usd / spent) : '-',
          ]),
          p,
        ),
      );
    // the scores given in the range (to runs of any time), most given first
    if (stats.by_score.length > 0) tables.push(scoreTable(printable(stats.by_score), p));
    io.stdout.write(tables.join('\n'));
  });

  withClient(
    withZone(
      program
        .command('metrics')
        .description("one agent's performance over time: a daily table and a chart")
        .requiredOption('--agent <id>', 'the agent', idArg('--agent'))
        .option('--days <n>', 'over the last N days, today the last', intArg('--days', 1, 366), 30),
    ),
  ).action(async (flags: ClientFlags & { agent: string; days: number; tz?: string }) => {
    const zone = zoneFor(flags, io);
    const client = clientFor(flags, io);
    const stats = await client.request<StatsResponse>('GET', '/api/v1/runs/stats', {
      agent_id: flags.agent,
      ...lastDays(flags.days, zone),
      bucket: 'day',
    });
    await agentExists(client, flags.agent, stats);
    if (flags.json) return printJson(io, { agent_id: flags.agent, ...stats });
    const p = palette();
    const series = stats.series;
    const maxRuns = Math.max(0, ...series.map((s) => s.runs));
    io.stdout.write(
      `${p.paint('bold', flags.agent)}: ${countOf(stats.totals.runs, 'run')} in ${countOf(flags.days, 'day')}${zone === 'UTC' ? '' : ` (${zone})`}, ` +
        `fail rate ${formatPercent(stats.totals.fail_rate)}, p95 ${formatApproxDuration(stats.totals.p95_duration_ms)}, ` +
        `cost ${costText(stats.totals)}\n\n`,
    );
    io.stdout.write(
      table(
        [
          // a day cut to "2026-12…" could not be told from the next
          { header: 'DAY', whole: true },
          { header: 'RUNS', align: 'right' },
          { header: 'FAIL RATE', align: 'right' },
          { header: 'P50', align: 'right', optional: 2 },
          { header: 'P95', align: 'right', optional: 4 },
          { header: 'TOKENS', align: 'right', optional: 3 },
          { header: 'COST', align: 'right' },
          { header: '', optional: 1 },
        ],
        series.map((s) => [
          localDate(zone, Date.parse(s.t)),
          formatCount(s.runs),
          formatPercent(s.fail_rate),
          formatDuration(s.p50_duration_ms),
          formatDuration(s.p95_duration_ms),
          formatTokens(s.total_tokens),
          costText(s),
          p.paint((s.fail_rate ?? 0) > 0.2 ? 'red' : 'green', bar(s.runs, maxRuns, 20)),
        ]),
        p,
      ),
    );
    // the charts fit the terminal after their 13-character label
    const chart = p.width !== undefined ? Math.max(10, p.width - 13) : Infinity;
    io.stdout.write(
      `\n  runs       ${sparkline(
        series.map((s) => s.runs),
        chart,
      )}\n` +
        `  fail rate  ${sparkline(
          series.map((s) => s.fail_rate),
          chart,
        )}\n` +
        `  p95        ${sparkline(
          series.map((s) => s.p95_duration_ms),
          chart,
        )}\n`,
    );
  });
}

function clip(text: string, max: number): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return cutText(line, max);
}

/** "  (3 succeeded, 1 failed)" after text `start` columns wide, wrapped to the terminal. */
function statusSummary(t: StatsTotals, p: Palette, start: number): string {
  const items = Object.entries(t.by_status)
    .filter(([, n]) => n > 0)
    .map(([s, n]) => `${formatCount(n)} ${p.status(s)}`);
  items[0] = `(${items[0]}`;
  items[items.length - 1] += ')';
  return '  ' + wrapList(items, start + 2, start + 3, p.width);
}

/**
 * An agent asked for by name that has no runs in the range may not exist at all: a typo
 * would read as a quiet agent. Only then is the agent looked up; a 404 is the error.
 */
async function agentExists(
  client: ApiClient,
  agent: string | undefined,
  stats: StatsResponse,
): Promise<void> {
  if (agent === undefined || stats.totals.runs > 0) return;
  await client.request('GET', `/api/v1/agents/${encodeURIComponent(agent)}`);
}

/** Most characters of an input, an output or an error a thread's line or turn previews. */
const TURN_PREVIEW_CHARS = 100;

/** `threads show`: the thread's summary, then its turns (runs) oldest first. */
export function showThread(
  thread: ThreadSummary,
  /** Its latest runs, oldest first. */
  turns: readonly Run[],
  /** How many of its runs came before the first of `turns`. */
  earlier: number,
  p: Palette,
): string {
  const lines: string[] = [];
  const field = fieldWriter(lines);
  lines.push(p.paint('bold', `Thread ${oneLine(thread.thread_id)}`));
  const states = [
    ...(thread.failed > 0 ? [p.paint('red', `${formatCount(thread.failed)} failed`)] : []),
    ...(thread.active > 0 ? [p.paint('cyan', `${formatCount(thread.active)} active`)] : []),
  ];
  field('runs', formatCount(thread.runs) + (states.length ? ` (${states.join(', ')})` : ''));
  field('agents', thread.agent_ids.join(', '));
  field('user', thread.user_id);
  field('first', `${thread.first_at} (${formatRelative(thread.first_at)})`);
  field('last', `${thread.last_at} (${formatRelative(thread.last_at)})`);
  field('tokens', formatTokens(thread.total_tokens));
  field('cost', costText(thread));
  if (turns.length === 0) return lines.join('\n') + '\n';
  lines.push(
    '',
    p.paint('bold', 'Turns') +
      (earlier > 0
        ? p.paint(
            'dim',
            ` (${countOf(earlier, 'earlier turn')} not shown; --limit ${Math.min(500, earlier + turns.length)} shows ${earlier + turns.length <= 500 ? 'all' : 'more'})`,
          )
        : ''),
  );
  return lines.join('\n') + '\n' + turnTable(turns, p);
}

/**
 * Runs one a line, as `threads show` prints a thread's turns (`users show` a user's runs):
 * when, the run, its status and agent, then its input and output (or error), two spaces in.
 * With `threads`, a THREAD column tells the conversations apart.
 */
function turnTable(runs: readonly Run[], p: Palette, threads = false): string {
  const body = table(
    [
      { header: 'WHEN' },
      { header: 'RUN', whole: true },
      { header: 'STATUS', whole: true },
      { header: 'AGENT', whole: true, optional: 1 },
      ...(threads ? [{ header: 'THREAD', optional: 2 }] : []),
      { header: 'INPUT → OUTPUT' },
    ],
    runs.map((run) => [
      runWhen(run, p),
      run.id,
      p.status(run.status),
      run.agent_id,
      ...(threads ? [run.thread_id ?? '-'] : []),
      turnText(run, p),
    ]),
    p,
    // printed two spaces in
    p.width !== undefined ? p.width - 2 : undefined,
  );
  return body.replace(/^/gm, '  ').replace(/ +$/, '');
}

/**
 * `users show`: the user's totals and latest run, then its latest runs oldest first (as a
 * thread's turns), then the commands that list all its runs and threads.
 */
export function showUser(
  user: UserSummary,
  /** Its latest runs, oldest first. */
  runs: readonly Run[],
  /** How many of its runs came before the first of `runs`. */
  earlier: number,
  p: Palette,
): string {
  const lines: string[] = [p.paint('bold', `User ${oneLine(user.user_id)}`)];
  // `last active` is the longest name: the values line up after it
  const field = fieldWriter(lines, 11);
  const states = [
    ...(user.failed > 0 ? [p.paint('red', `${formatCount(user.failed)} failed`)] : []),
    ...(user.active > 0 ? [p.paint('cyan', `${formatCount(user.active)} active`)] : []),
  ];
  field('runs', formatCount(user.runs) + (states.length ? ` (${states.join(', ')})` : ''));
  field('threads', formatCount(user.threads));
  field('agents', user.agent_ids.join(', '));
  field('tokens', formatTokens(user.total_tokens));
  field('cost', costText(user));
  field('first seen', timeText(user.first_at));
  field('last active', timeText(user.last_at));
  const last = user.last_run;
  field('latest run', `${last.id} ${p.status(last.status)} (${last.agent_id})`);
  if (last.error !== null) field('its error', p.paint('red', clip(last.error, 300)));
  let out = lines.join('\n') + '\n';
  if (runs.length > 0) {
    const heading =
      p.paint('bold', 'Latest runs') +
      (earlier > 0
        ? p.paint(
            'dim',
            ` (${countOf(earlier, 'earlier run')} not shown; --limit ${Math.min(500, earlier + runs.length)} shows ${earlier + runs.length <= 500 ? 'all' : 'more'})`,
          )
        : '');
    // a user's runs are of several conversations: which is which, once some are of one
    const threads = runs.some((r) => r.thread_id !== null);
    out += `\n${heading}\n` + turnTable(runs, p, threads);
  }
  const id = shellWord(user.user_id);
  return (
    out +
    p.paint(
      'dim',
      `its runs: runlog runs list --user ${id}` +
        (user.threads > 0 ? `; its threads: runlog threads list --user ${id}` : ''),
    ) +
    '\n'
  );
}

/**
 * `text` as one word of a shell command line, for a command to copy: as it is when it needs
 * no quoting, else single-quoted.
 * @example shellWord("o'brien b") // "'o'\\''brien b'"
 */
function shellWord(text: string): string {
  return /^[\w.,:@%+=/-]+$/.test(text) ? text : `'${text.replace(/'/g, "'\\''")}'`;
}

/** A turn in one line: its input, then its output, or its error's message in red. */
function turnText(run: Run, p: Palette): string {
  const input = previewText(run.input, TURN_PREVIEW_CHARS);
  const output = run.error
    ? p.paint('red', clip(readableError(run.error).message, TURN_PREVIEW_CHARS))
    : previewText(run.output, TURN_PREVIEW_CHARS);
  if (output === null) return input ?? '';
  return input === null ? `→ ${output}` : `${input} → ${output}`;
}

/**
 * Adds `  name       value` lines to a summary block; an empty value adds none. A value of
 * several lines (an error's message, a description) goes on under its first, not at the margin
 * where it could pass for another field.
 */
function fieldWriter(lines: string[], width = 10) {
  return (name: string, value: string | null | undefined): void => {
    if (value !== null && value !== undefined && value !== '')
      lines.push(`  ${name.padEnd(width)} ${value.replace(/\n/g, `\n${' '.repeat(width + 3)}`)}`);
  };
}

/** The longest timeout the API takes: 7 days. */
const MAX_TIMEOUT_MS = 7 * 86_400_000;

/** A time as `runs show` gives one: ISO, then how long ago (or until). */
function timeText(iso: string | null): string | null {
  return iso ? `${iso} (${formatRelative(iso)})` : null;
}

/** Whether a read agent (a summary, with its 24 h cost) is at or over its 24 h budget. */
function overBudgetNow(agent: Agent | AgentSummary): boolean {
  return 'counts_24h' in agent && budgetReached(agentBudget(agent));
}

/**
 * An agent's budget over 24 hours (`max_cost_usd_24h`), with what its runs of the last 24
 * hours cost when the agent read is a summary (`GET /agents/:id`), and whether that holds its
 * runs back.
 */
function budgetText(agent: Agent | AgentSummary, p: Palette): string {
  const cap = agent.max_cost_usd_24h ?? null;
  if (cap === null) return p.paint('dim', 'none');
  const text = `${limitMoney(cap)} per 24 hours`;
  if (!('counts_24h' in agent)) return text;
  const spent = agent.counts_24h.cost_usd;
  if (!overBudgetNow(agent)) return `${text} (${formatMoney(spent)} spent)`;
  // when the budget watch saw it reach the budget (a second or so after it did)
  const since = agent.over_budget_since;
  const held = since ? `, reached ${formatRelative(since)}` : '';
  return `${text}; ${p.paint('yellow', `${formatMoney(spent)} spent${held}: no worker is handed its queued runs and its schedule skips its slots until that falls below it`)}`;
}

/** A limit in US dollars, exact: `$5`, `$0.50`, `$0.125`, `$1,000,000`. */
function limitMoney(usd: number): string {
  return `$${usd.toLocaleString('en-US', {
    minimumFractionDigits: Number.isInteger(usd) ? 0 : 2,
    maximumFractionDigits: 10,
  })}`;
}

/**
 * A retry policy as `agents show` says it: "up to 3 attempts, the first retry after 10s,
 * each next one twice as long" or "up to 5 attempts, 30s apart".
 */
export function retryText(policy: RetryPolicy): string {
  const delay = policy.delay_ms === 0 ? 'at once' : `after ${formatSpan(policy.delay_ms)}`;
  if (policy.backoff === 'fixed' || policy.delay_ms === 0)
    return `up to ${policy.max_attempts} attempts, each retry ${delay}`;
  return `up to ${policy.max_attempts} attempts, the first retry ${delay}, each next one twice as long`;
}

/** `agents show` (and `agents set` after saving): an agent's settings, one per line. */
export function showAgent(agent: Agent, p: Palette): string {
  const lines: string[] = [p.paint('bold', `Agent ${agent.id}`)];
  // `description` is the longest name: the values line up after it
  const field = fieldWriter(lines, 11);
  field('name', agent.name);
  field('description', agent.description);
  if (agent.paused_at)
    field(
      'paused',
      p.paint(
        'yellow',
        `${timeText(agent.paused_at)}: no worker is handed its queued runs and its schedule queues none (runlog agents resume ${agent.id})`,
      ),
    );
  field(
    'schedule',
    agent.schedule ? `${agent.schedule.cron} (${agent.schedule.timezone})` : p.paint('dim', 'none'),
  );
  if (agent.schedule && agent.paused_at)
    field('next run', p.paint('yellow', 'the agent is paused: no run is queued until resumed'));
  else if (agent.schedule?.paused)
    field('next run', p.paint('yellow', 'paused: no run is queued until resumed'));
  else if (agent.schedule) {
    const next = timeText(agent.next_run_at);
    field(
      'next run',
      next === null
        ? 'never: the schedule fires no more'
        : overBudgetNow(agent)
          ? `${next}; ${p.paint('yellow', 'skipped while the agent is over its budget')}`
          : next,
    );
  }
  field(
    'timeout',
    agent.timeout_ms !== null ? formatSpan(agent.timeout_ms) : p.paint('dim', 'none'),
  );
  const limits = [
    ...(agent.max_cost_usd !== null ? [`${limitMoney(agent.max_cost_usd)} cost`] : []),
    ...(agent.max_tokens !== null ? [countOf(agent.max_tokens, 'token')] : []),
    ...(agent.max_steps !== null ? [countOf(agent.max_steps, 'step')] : []),
  ];
  field('limits', limits.length > 0 ? limits.join(', ') : p.paint('dim', 'none'));
  field('budget', budgetText(agent, p));
  field('retry', agent.retry ? retryText(agent.retry) : p.paint('dim', 'none'));
  const concurrency = [
    ...(agent.max_concurrency !== null
      ? [`at most ${countOf(agent.max_concurrency, 'run')} at once on workers`]
      : []),
    ...(agent.max_concurrency_per_thread !== null
      ? [`at most ${countOf(agent.max_concurrency_per_thread, 'run')} of a thread at once`]
      : []),
  ];
  field('concurrency', concurrency.length > 0 ? concurrency.join('; ') : p.paint('dim', 'no cap'));
  field(
    'worker',
    agent.worker_seen_at
      ? `last seen ${timeText(agent.worker_seen_at)}`
      : p.paint('dim', 'none seen yet: queued runs wait for one'),
  );
  field('created', timeText(agent.created_at));
  field('updated', timeText(agent.updated_at));
  return lines.join('\n') + '\n';
}

function tailLine(run: Run, p: Palette): string {
  const at = new Date().toISOString().slice(11, 19);
  const parts = [
    p.paint('dim', at),
    run.id,
    run.agent_id,
    // a Stop pressed while it runs is the change this line is about
    run.cancel_requested_at && (run.status === 'running' || run.status === 'queued')
      ? `${p.status(run.status)} (stop requested)`
      : p.status(run.status),
    formatDuration(run.duration_ms),
    countOf(run.step_count, 'step'),
    formatTokens(run.total_tokens) + ' tok',
    costText(run),
  ];
  if (run.error) parts.push(p.paint('red', clip(readableError(run.error).message, 60)));
  return parts.join('  ');
}

/** The `agents set` flag that gives each field of `PUT /agents/:agent_id`. */
const AGENT_FLAGS: Record<string, string> = {
  'body.name': '--name',
  'body.description': '--description',
  'body.schedule': '--schedule',
  'body.schedule.cron': '--schedule',
  'body.schedule.timezone': '--timezone',
  'body.timeout_ms': '--timeout',
  'body.max_cost_usd': '--max-cost',
  'body.max_cost_usd_24h': '--max-cost-24h',
  'body.max_tokens': '--max-tokens',
  'body.max_steps': '--max-steps',
  'body.retry': '--max-attempts',
  'body.retry.max_attempts': '--max-attempts',
  'body.retry.delay_ms': '--retry-delay',
  'body.retry.backoff': '--retry-backoff',
  'body.max_concurrency': '--max-concurrency',
  'body.max_concurrency_per_thread': '--max-concurrency-per-thread',
};

/** A cursor the server does not take (mistyped, cut short) is the flag's bad usage. */
const CURSOR_FLAG: Record<string, string> = { 'query.cursor': '--cursor' };

/** A page of a list (`runs`, `threads`, `users`); a cursor it refuses is `--cursor`'s fault. */
function listPage<T>(client: ApiClient, path: string, query: RunFilterQuery): Promise<T> {
  return client.request<T>('GET', path, query).catch((err: unknown) => {
    throw flagError(err, CURSOR_FLAG);
  });
}

/**
 * A 400 whose every field a flag gave, said by those flags (`--schedule: never fires: ...`)
 * and as bad usage (exit 2), as the CLI's own checks of a flag are; any other error as it is.
 * @example await client.request('PUT', path, undefined, body).catch((e) => { throw flagError(e, AGENT_FLAGS) })
 */
function flagError(err: unknown, flagOf: Record<string, string>): unknown {
  if (!(err instanceof CliError) || err.status !== 400 || !err.details?.length) return err;
  const named = err.details.map((d) => (flagOf[d.field] ? `${flagOf[d.field]}: ${d.message}` : ''));
  if (named.includes('')) return err;
  return new CliError(named.join('; '), 2, false, err.status, err.details, err.code);
}

/** What says a run queued now waits: its agent paused or over its budget, or no worker serving it now. */
interface Unserved {
  /** When a worker last asked for the agent's runs (`Agent.worker_seen_at`). */
  seenAt: string | null;
  /** When the agent was paused (`Agent.paused_at`). */
  pausedAt: string | null;
  /** Its runs of the last 24 hours cost its budget or more. */
  overBudget?: { spentUsd: number; capUsd: number } | undefined;
}

/** `agents list`'s cost cell: `$12.40 of $20` for an agent with a 24 h budget, yellow at it. */
function withBudget(agent: AgentSummary, cost: string, p: Palette): string {
  if (agent.max_cost_usd_24h === null) return cost;
  const text = `${cost} of ${limitMoney(agent.max_cost_usd_24h)}`;
  return overBudgetNow(agent) ? p.paint('yellow', text) : text;
}

/** Why a queued run waits, as `runs show` says it on its worker line. */
function waitText(wait: WorkerWait, p: Palette): string {
  switch (wait.kind) {
    case 'paused':
      return p.paint(
        'yellow',
        `none is handed its runs: its agent is paused (since ${formatRelative(wait.since)}); runlog agents resume starts this run`,
      );
    case 'budget':
      return p.paint(
        'yellow',
        `none is handed its runs: its agent's runs of the last 24 hours cost ${formatMoney(wait.spentUsd)}, at or over its budget of ${limitMoney(wait.capUsd)} (max_cost_usd_24h); this run starts once that falls below it, or the budget is raised`,
      );
    case 'capped':
      return `at its agent's cap: ${countOf(wait.running, 'run')} of at most ${wait.cap} running; this run starts when one ends`;
    case 'thread':
      return `at its thread's cap: ${countOf(wait.running, 'run')} of thread ${wait.threadId} running (at most ${wait.cap} at once); this run starts when one ends`;
    case 'none':
      return p.paint('yellow', 'none seen yet: this run waits for one');
    case 'busy':
      // a hung run holds its slot: the worker is there, it has no room for this run
      return `busy: online, holding ${countOf(wait.held, 'run')}, and not asking for more since ${formatRelative(wait.seenAt)}`;
    // as the dashboard says it: a worker seen once is no worker there now
    case 'late':
      return p.paint(
        'yellow',
        `none has asked for its agent's runs since ${formatRelative(wait.seenAt)}: this run waits for one`,
      );
    case 'stopped':
      return p.paint(
        'yellow',
        `none running: the last one asked for its agent's runs ${formatRelative(wait.seenAt)} and has stopped; this run waits for one`,
      );
    case 'seen':
      return `last seen ${formatRelative(wait.seenAt)}`;
    default:
      return assertNever(wait);
  }
}

/** `runs show`: the summary block and the steps as an indented tree. */
export function showRun(
  run: RunWithSteps,
  p: Palette,
  /** The runs nested in this one (its sub-agents), newest first, when read. */
  subRuns?: RunList,
  /** For a queued run: why it waits (`workerWait`), when its agent and workers were read. */
  wait?: WorkerWait,
): string {
  const lines: string[] = [];
  const field = fieldWriter(lines);
  lines.push(`${p.paint('bold', `Run ${run.id}`)}`);
  field('agent', run.agent_id);
  const stopping = run.cancel_requested_at && (run.status === 'running' || run.status === 'queued');
  field('status', p.status(run.status) + (stopping ? ' (stop requested)' : ''));
  if (wait && run.status === 'queued') field('worker', waitText(wait, p));
  field(
    'trigger',
    run.trigger +
      (run.source ? ` from ${run.source}` : '') +
      (run.triggered_by ? ` by ${run.triggered_by}` : ''),
  );
  field(
    'attempt',
    run.attempt > 1 || run.retry_of ? `${run.attempt} (retry of ${run.retry_of ?? '?'})` : null,
  );
  field('thread', run.thread_id);
  field('user', run.user_id);
  field('parent', run.parent_run_id);
  if (subRuns && subRuns.runs.length > 0)
    field(
      'sub-runs',
      subRuns.runs.map((r) => `${r.id} (${r.agent_id}, ${p.status(r.status)})`).join(', ') +
        (subRuns.has_more ? `, and ${formatCount(subRuns.total - subRuns.runs.length)} more` : ''),
    );
  const held = isHeldBack(run);
  field(
    'queued',
    run.queued_at
      ? `${run.queued_at} (${formatRelative(run.queued_at)})` +
          // an automatic retry waiting its delay, or a run queued to start later: no worker
          // takes it before then
          (held
            ? p.paint(
                'yellow',
                run.trigger === 'retry'
                  ? ": held back by its agent's retry policy until then"
                  : ': queued to start then; no worker takes it before',
              )
            : '')
      : null,
  );
  field('started', run.started_at ? `${run.started_at} (${formatRelative(run.started_at)})` : null);
  field('ended', run.ended_at);
  field('duration', formatDuration(run.duration_ms));
  field(
    'steps',
    `${run.step_count} (${run.llm_calls} LLM, ${run.tool_calls} tool${run.error_count ? `, ${run.error_count} failed` : ''})`,
  );
  field(
    'tokens',
    `${formatTokens(run.total_tokens)} (in ${formatTokens(run.input_tokens)}, out ${formatTokens(run.output_tokens)})`,
  );
  const unpriced = unpricedModels(run.steps);
  field(
    'cost',
    costText(run) +
      (costUnknown(run)
        ? ' (no price known for its model)'
        : unpriced.length > 0
          ? ` and the tokens of ${unpriced.join(', ')}, which have no known price`
          : ''),
  );
  // what each model took, when there is more to say than the run's one model
  const models = usageByModel(run.steps);
  if (models.length > 1 || (models[0] && models[0].model !== run.model)) {
    models.forEach((m, i) => {
      const calls = `${m.calls} ${m.calls === 1 ? 'call' : 'calls'}`;
      const tokens = m.input_tokens + m.output_tokens;
      const rest = `  ${calls}  ${formatTokens(tokens)} tok  ${costText({ cost_usd: m.cost_usd, total_tokens: tokens })}`;
      const room = p.width === undefined ? Infinity : Math.max(8, p.width - 13 - rest.length);
      const name = clip(m.model ?? '(no model)', room);
      lines.push(`  ${(i === 0 ? 'models' : '').padEnd(10)} ${name}${rest}`);
    });
  } else field('model', run.model);
  field('tags', run.tags.length ? run.tags.join(', ') : null);
  lines.push(...scoreLines(run.scores, p));
  if (run.error) {
    const error = readableError(run.error);
    field('error', p.paint('red', `${error.type ? `${error.type}: ` : ''}${error.message}`));
    // where it was thrown: the stack's first lines, under the message. A stack starts with
    // the message, every line of it: those are printed above, and would push the frames out
    const message = error.message.split('\n');
    const all = (error.stack ?? '').split('\n');
    const skip = message.length > 1 && all[0]!.endsWith(message[0]!) ? message.length : 1;
    const stack = all.slice(skip, skip + STACK_LINES);
    for (const line of stack) lines.push(`             ${p.paint('dim', line.trim())}`);
  }
  const steps = run.steps ?? [];
  if (steps.length === 0) return lines.join('\n') + '\n';
  lines.push('', p.paint('bold', 'Steps'));
  // time to first token: a column only where streamed model calls recorded one
  const streamed = steps.some((s) => s.time_to_first_token_ms !== null);
  const rows = stepTree(steps).map(({ step, prefix }) => [
    `${p.paint('dim', prefix)}${step.type} ${step.name ?? ''}`.trimEnd(),
    p.status(step.status),
    formatDuration(step.duration_ms),
    ...(streamed
      ? [step.time_to_first_token_ms !== null ? formatDuration(step.time_to_first_token_ms) : '']
      : []),
    step.input_tokens !== null || step.output_tokens !== null
      ? formatTokens((step.input_tokens ?? 0) + (step.output_tokens ?? 0)) + ' tok'
      : '',
    step.cost_usd !== null ? formatMoney(step.cost_usd) : '',
    step.model ?? '',
    step.error ? p.paint('red', clip(readableError(step.error).message, 60)) : '',
  ]);
  const body = table(
    [
      { header: 'STEP' },
      { header: 'STATUS', whole: true },
      { header: 'DURATION', align: 'right' },
      ...(streamed ? [{ header: 'TTFT', align: 'right' as const, optional: 0 }] : []),
      { header: 'TOKENS', align: 'right', optional: 2 },
      { header: 'COST', align: 'right', optional: 3 },
      { header: 'MODEL', optional: 1 },
      { header: 'ERROR' },
    ],
    rows,
    p,
    // printed two spaces in
    p.width !== undefined ? p.width - 2 : undefined,
  );
  return lines.join('\n') + '\n' + body.replace(/^/gm, '  ').replace(/ +$/, '');
}

/** Deeper steps are drawn at this depth, marked, so a deep chain's output stays linear. */
export const MAX_DRAWN_DEPTH = 12;

/**
 * Steps in the dashboard's tree order (`orderStepTree` in core) with box-drawing prefixes;
 * steps nested deeper than MAX_DRAWN_DEPTH are drawn at that depth after a `… `.
 */
export function stepTree(steps: readonly Step[]): { step: Step; prefix: string }[] {
  // lastAt[d]: whether the latest step drawn at depth d was its parent's last child
  const lastAt: boolean[] = [];
  return orderStepTree(steps).map(({ step, depth, last }) => {
    lastAt[depth] = last;
    if (depth === 0) return { step, prefix: '' };
    const drawn = Math.min(depth, MAX_DRAWN_DEPTH);
    let prefix = '';
    for (let d = 1; d < drawn; d++) prefix += lastAt[d] ? '   ' : '│  ';
    if (depth > drawn) prefix += '… ';
    return { step, prefix: `${prefix}${last ? '└─ ' : '├─ '}` };
  });
}

/**
 * A cost (a run's, or a sum of runs'): `-` when tokens were used at no recorded cost (a model
 * with no price), where `$0` would understate it.
 */
function costText(run: Pick<Run, 'cost_usd' | 'total_tokens'>): string {
  return costUnknown(run) ? '-' : formatMoney(run.cost_usd);
}

/** How often `runs tail` pings the server: a connection silent for longer is given up. */
const HEARTBEAT_MS = 30_000;

/** Lines of a run's error stack `runs show` prints under its message. */
const STACK_LINES = 8;

/** A score's value as read: `true`/`false` (green and red), the number, or the label. */
function scoreValueText(value: Score['value'], p?: Palette): string {
  if (typeof value === 'boolean')
    return p ? p.paint(value ? 'green' : 'red', String(value)) : String(value);
  return String(value);
}

/** A mean or a bound of scores, to three significant digits: `0.853`, `4.5`, `1,234`. */
function scoreNumber(n: number): string {
  return Math.abs(n) >= 1000 ? formatCount(Math.round(n)) : String(Number(n.toPrecision(3)));
}

/** Labels given, most first: `polite 2, curt 1`. */
function labelsText(labels: Record<string, number>): string {
  return Object.entries(labels)
    .sort(([a, m], [b, n]) => n - m || a.localeCompare(b))
    .map(([label, n]) => `${label} ${formatCount(n)}`)
    .join(', ');
}

/**
 * What scores of one name come to: `avg 0.5`, `66.7% true` (one boolean score: `true` or
 * `false`), labels, or both.
 */
function scoreSummaryText(s: Pick<ScoreSummary, 'type' | 'n' | 'avg' | 'labels'>): string {
  const parts: string[] = [];
  if (s.avg !== null)
    // a boolean score's mean is the share of true; of one score, its value
    parts.push(
      s.type !== 'boolean'
        ? `avg ${scoreNumber(s.avg)}`
        : s.n === 1
          ? String(s.avg === 1)
          : `${formatPercent(s.avg)} true`,
    );
  const labels = labelsText(s.labels);
  if (labels) parts.push(labels);
  return parts.join('; ');
}

/** `runs show`'s lines of a run's scores: one per name, after `scores`, cut to the terminal. */
function scoreLines(scores: Record<string, ScoreSummary>, p: Palette): string[] {
  const names = Object.keys(scores).sort();
  const counts = names.map((n) => countOf(scores[n]!.n, 'score'));
  const countWidth = Math.max(0, ...counts.map((c) => c.length));
  // a long name leaves room for what its scores come to: it is cut first
  const nameRoom = p.width === undefined ? Infinity : Math.max(8, p.width - 13 - countWidth - 14);
  const shownNames = names.map((n) => clip(n, Infinity));
  const nameWidth = Math.min(nameRoom, Math.max(0, ...shownNames.map(visibleWidth)));
  return names.map((name, i) => {
    const cut = cutToWidth(shownNames[i]!, nameWidth);
    const head = `  ${(i === 0 ? 'scores' : '').padEnd(10)} ${cut}${' '.repeat(nameWidth - visibleWidth(cut))}  ${counts[i]!.padEnd(countWidth)}  `;
    const room = p.width === undefined ? Infinity : Math.max(8, p.width - visibleWidth(head));
    return (head + clip(scoreSummaryText(scores[name]!), room)).trimEnd();
  });
}

/** `stats`' scores: by name, how many, on how many runs, their mean, bounds and labels. */
function scoreTable(scores: StatsScore[], p: Palette): string {
  return table(
    [
      { header: 'SCORE' },
      { header: 'TYPE', optional: 2 },
      { header: 'N', align: 'right' },
      { header: 'RUNS', align: 'right', optional: 3 },
      { header: 'AVG', align: 'right' },
      { header: 'MIN', align: 'right', optional: 1 },
      { header: 'MAX', align: 'right', optional: 1 },
      { header: 'LABELS' },
    ],
    scores.map((s) => [
      s.name,
      s.type,
      formatCount(s.n),
      formatCount(s.runs),
      s.avg === null
        ? '-'
        : s.type === 'boolean'
          ? `${formatPercent(s.avg)} true`
          : scoreNumber(s.avg),
      s.min === null || s.type === 'boolean' ? '-' : scoreNumber(s.min),
      s.max === null || s.type === 'boolean' ? '-' : scoreNumber(s.max),
      labelsText(s.labels),
    ]),
    p,
  );
}
