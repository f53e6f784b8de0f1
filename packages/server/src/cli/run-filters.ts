import { InvalidArgumentError, type Command } from 'commander';
import {
  MAX_METADATA_FILTERS,
  METADATA_KEY_MAX,
  METADATA_VALUE_MAX,
  filterableMetadata,
  metadataQuery,
  parseMetadataPair,
} from '@runlog/core';
import { CliError, type ApiClient } from './client.js';
import { idArg, parseWhen, scoreNumberArg, statusArg, textArg, triggerArg } from './options.js';

/** The filters of `runs list` as commander hands them over (`withRunFilters`). */
export interface RunFilterFlags {
  agent?: string;
  status?: string;
  trigger?: string;
  source?: string;
  user?: string;
  thread?: string;
  tag?: string;
  /** `--metadata env=prod`, repeatable: runs whose metadata holds each key with its value. */
  metadata?: Record<string, string>;
  model?: string;
  score?: string;
  scoreMin?: number;
  scoreMax?: number;
  scoreLabel?: string;
  parent?: string;
  retryOf?: string;
  /** `--retried`: runs retried already; `--not-retried`: runs not retried yet. */
  retried?: boolean;
  notRetried?: boolean;
  search?: string;
  since?: number;
  until?: number;
}

/** What `GET /runs` takes for `RunFilterFlags`, parameter by parameter. */
export type RunFilterQuery = Record<string, string | number | undefined>;

/**
 * Adds the filters `runs list` takes (`--agent`, `--status`, `--since`, ...) to `cmd`: the
 * commands that act on the runs a filter matches (`runs cancel`, `runs retry`) take the same.
 * `statusHelp` says what `--status` means for the command (its default, when it has one).
 * @example withRunFilters(runs.command('list')).action((flags: RunFilterFlags) => ...)
 */
export function withRunFilters(
  cmd: Command,
  statusHelp = 'only these statuses (comma list)',
): Command {
  return cmd
    .option('--agent <id>', 'only this agent', idArg('--agent'))
    .option('--status <list>', statusHelp, statusArg)
    .option('--trigger <list>', 'only these triggers (comma list)', triggerArg)
    .option('--source <name>', 'only runs from this source (n8n, cli...)', textArg('--source', 200))
    .option('--user <id>', "only this user's runs", textArg('--user', 200))
    .option('--thread <id>', 'only runs of this conversation (thread_id)', textArg('--thread', 200))
    .option('--tag <tag>', 'only runs with this tag', textArg('--tag', 200))
    .option(
      '--metadata <key=value>',
      'only runs whose metadata holds this (a string, number or true/false); repeat for more keys',
      metadataArg,
    )
    .option('--model <name>', 'only runs with a step naming this model', textArg('--model', 200))
    .option('--score <name>', 'only runs with a score of this name', textArg('--score', 200))
    .option(
      '--score-min <n>',
      'with --score: such a score of at least n (true counts 1, false 0)',
      scoreNumberArg('--score-min'),
    )
    .option(
      '--score-max <n>',
      'with --score: such a score of at most n (--score-max 0: the thumbs down)',
      scoreNumberArg('--score-max'),
    )
    .option(
      '--score-label <label>',
      'with --score: such a score of this label',
      textArg('--score-label', 200),
    )
    .option('--parent <run-id>', 'only the runs nested in this run (sub-agents)', idArg('--parent'))
    .option('--retry-of <run-id>', 'only the retries of this run', idArg('--retry-of'))
    .option('--retried', 'only runs retried already')
    .option('--not-retried', 'only runs not retried yet')
    .option('--search <text>', 'text in the input, output or error', textArg('--search', 500))
    .option(
      '--since <when>',
      'runs queued, started or recorded since: 24h, 7d or a date',
      parseWhen('--since'),
    )
    .option('--until <when>', 'and until: 24h (ago), 7d or a date', parseWhen('--until'));
}

/**
 * One `--metadata key=value` into the filter of those given before it: a key up to the first
 * `=`, each key once, at most `MAX_METADATA_FILTERS`, within the API's lengths.
 */
function metadataArg(text: string, given: Record<string, string> = {}): Record<string, string> {
  const pair = parseMetadataPair(text);
  if (!pair || pair[1] === '')
    throw new InvalidArgumentError(`--metadata takes key=value (got ${JSON.stringify(text)})`);
  const [key, value] = pair;
  if (!filterableMetadata(key, value))
    throw new InvalidArgumentError(
      `--metadata: a key is 1 to ${METADATA_KEY_MAX} characters, a value 1 to ${METADATA_VALUE_MAX}, without a NUL; __proto__ cannot be filtered on`,
    );
  if (Object.hasOwn(given, key))
    throw new InvalidArgumentError(`--metadata: ${key} given twice; a run holds one value a key`);
  if (Object.keys(given).length >= MAX_METADATA_FILTERS)
    throw new InvalidArgumentError(`--metadata: at most ${MAX_METADATA_FILTERS} keys`);
  return { ...given, [key]: value };
}

/** Whether any of `withRunFilters`' filters was given. */
export function hasRunFilter(flags: RunFilterFlags): boolean {
  return Object.values(runFilterQuery(flags)).some((v) => v !== undefined);
}

/**
 * `from` and `to` of `--since` and `--until` (epoch ms) for a list's query; exits 2 when
 * `--since` is after `--until`.
 */
export function timeWindow(flags: { since?: number; until?: number }): {
  from: number | undefined;
  to: number | undefined;
} {
  if (flags.since !== undefined && flags.until !== undefined && flags.since > flags.until)
    throw new CliError('--since must not be after --until', 2);
  return { from: flags.since, to: flags.until };
}

/**
 * The `GET /runs` parameters of the filters given; exits 2 on those that contradict each
 * other (`--since` after `--until`, a score bound without `--score`).
 */
export function runFilterQuery(flags: RunFilterFlags): RunFilterQuery {
  const window = timeWindow(flags);
  if (
    flags.score === undefined &&
    (flags.scoreMin ?? flags.scoreMax ?? flags.scoreLabel) !== undefined
  )
    throw new CliError('--score-min, --score-max and --score-label need --score <name>', 2);
  if (
    flags.scoreMin !== undefined &&
    flags.scoreMax !== undefined &&
    flags.scoreMin > flags.scoreMax
  )
    throw new CliError('--score-min must not be above --score-max', 2);
  if (flags.retried && flags.notRetried)
    throw new CliError('give --retried or --not-retried, not both', 2);
  return {
    agent_id: flags.agent,
    status: flags.status,
    trigger: flags.trigger,
    source: flags.source,
    user_id: flags.user,
    thread_id: flags.thread,
    tag: flags.tag,
    ...metadataQuery(flags.metadata),
    model: flags.model,
    score: flags.score,
    score_min: flags.scoreMin,
    score_max: flags.scoreMax,
    score_label: flags.scoreLabel,
    parent_run_id: flags.parent,
    retry_of: flags.retryOf,
    retried: flags.retried ? 'true' : flags.notRetried ? 'false' : undefined,
    q: flags.search,
    ...window,
  };
}

/**
 * Whether `agent` is unknown to the project: no run has named it yet. Asked only when a
 * filter on it matched nothing, where a misspelt agent would read as a quiet one.
 */
export async function agentUnknown(client: ApiClient, agent: string): Promise<boolean> {
  return client.request('GET', `/api/v1/agents/${encodeURIComponent(agent)}`).then(
    () => false,
    (err: unknown) => {
      if (err instanceof CliError && err.status === 404) return true;
      throw err;
    },
  );
}

/**
 * The line that says `agent` is unknown to the project, then `more`, and where to see the
 * agents there are.
 */
export function unknownAgentLine(agent: string, more = ''): string {
  return `no agent ${agent} in this project${more} (runlog agents list shows the agents there are)`;
}

/**
 * What a list that matched nothing says: `none`, and, when `--agent` names an agent the
 * project does not know, that as well.
 */
export async function noneMatched(
  client: ApiClient,
  flags: RunFilterFlags,
  none: string,
): Promise<string> {
  if (flags.agent === undefined || !(await agentUnknown(client, flags.agent))) return none;
  return `${none}; ${unknownAgentLine(flags.agent)}`;
}
