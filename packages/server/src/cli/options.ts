import { InvalidArgumentError, type Command } from 'commander';
import { formatSpan } from './format.js';
import {
  ID_HELP,
  ID_PATTERN,
  RUN_STATUSES,
  RUN_TRIGGERS,
  RunId,
  ScoreValue,
  parseDuration,
  type Score,
} from '@runlog/core';

/** A whole number between `min` and `max`, for an option's parser. */
export function intArg(name: string, min = 0, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`${name} must be a whole number`);
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`${name} must be ${min} to ${max}`);
    return n;
  };
}

/**
 * A point in time: a span back from now (`30m`, `24h`, `7d`) or a date (`2026-03-01`,
 * `2026-03-01T10:00:00Z`), in UTC unless it names a zone; epoch ms.
 */
export function parseWhen(name: string, now = () => Date.now()) {
  return (value: string): number => {
    const span = parseDuration(value);
    if (span !== undefined) return now() - span;
    const ms = parseDate(value);
    if (ms !== undefined) return ms;
    throw new InvalidArgumentError(
      `${name} must be a span like 24h or 7d, or a date like 2026-03-01 or 2026-03-01T10:00:00Z`,
    );
  };
}

/**
 * A time to come, for `--at`: a date (`2026-03-01T10:00`, `2026-03-01T10:00+01:00`), in UTC
 * unless it names a zone, as the CLI prints times; epoch ms.
 */
export function atArg(name: string) {
  return (value: string): number => {
    const ms = parseDate(value);
    if (ms !== undefined) return ms;
    throw new InvalidArgumentError(
      `${name} must be a date and time like 2026-03-01T10:00 (UTC) or 2026-03-01T10:00:00+01:00`,
    );
  };
}

/** `2026-03-01`, `2026-03-01T10:00[:00[.000]]` with a zone or in UTC; undefined otherwise. */
function parseDate(value: string): number | undefined {
  const date = /^(\d{4})-(\d{2})-(\d{2})([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.exec(value);
  if (!date || !isCalendarDay(Number(date[1]), Number(date[2]), Number(date[3]))) return undefined;
  // UTC without a zone, a time as a date alone is and as the CLI prints times: Date.parse
  // read `2026-03-01T10:00` in the machine's zone but `2026-03-01` in UTC
  const ms = Date.parse(
    value.length === 10 ? `${value}T00:00:00Z` : `${value.replace(' ', 'T')}${date[5] ? '' : 'Z'}`,
  );
  return Number.isFinite(ms) ? ms : undefined;
}

/** Whether the month has that day: `Date.parse` reads 2026-02-30 as 2026-03-02. */
function isCalendarDay(year: number, month: number, day: number): boolean {
  const d = new Date(Date.UTC(year, month - 1, day));
  return d.getUTCMonth() === month - 1 && d.getUTCDate() === day;
}

/** Text as the API takes it: 1 to `max` characters, no NUL. */
export function textArg(name: string, max: number) {
  return (value: string): string => {
    if (value.length === 0 || value.length > max)
      throw new InvalidArgumentError(`${name} must be 1 to ${max} characters`);
    if (value.includes('\u0000')) throw new InvalidArgumentError(`${name} must not contain a NUL`);
    return value;
  };
}

/** A decimal number as people type one: `3`, `-0.5`, `1e3`; not `0x10`, `Infinity` or ``. */
const DECIMAL = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

/** A number as the API takes a score (negative and fractional too), for an option's parser. */
export function scoreNumberArg(name: string) {
  return (value: string): number => {
    if (!DECIMAL.test(value)) throw new InvalidArgumentError(`${name} must be a number`);
    // the bounds of the API's numeric scores, which its score filters share
    const checked = ScoreValue.options[0].safeParse(Number(value));
    if (!checked.success)
      throw new InvalidArgumentError(`${name}: ${checked.error.issues[0]?.message ?? 'no number'}`);
    return checked.data;
  };
}

/**
 * A score's value as typed: `true` or `false` a boolean, a number a number, anything else a
 * label (1 to 200 characters).
 * @example scoreValueArg('<value>')('0.8') // 0.8
 */
export function scoreValueArg(name: string) {
  const number = scoreNumberArg(name);
  const label = textArg(name, 200);
  return (value: string): Score['value'] => {
    if (value === 'true') return true;
    if (value === 'false') return false;
    return DECIMAL.test(value) ? number(value) : label(value);
  };
}

/**
 * A span of time, as `30s`, `5m`, `2h`, `1d` or plain milliseconds, from `min` to `max` ms.
 * @example durationArg('--timeout', 1000, 604_800_000)('5m') // 300000
 */
export function durationArg(name: string, min: number, max: number) {
  return (value: string): number => {
    const ms = /^\d+$/.test(value) ? Number(value) : parseDuration(value);
    if (ms === undefined)
      throw new InvalidArgumentError(`${name} must be a span like 30s, 5m or 2h, or milliseconds`);
    if (ms < min || ms > max)
      throw new InvalidArgumentError(`${name} must be ${formatSpan(min)} to ${formatSpan(max)}`);
    return ms;
  };
}

/**
 * An amount of US dollars above 0 and at most `max`, as `5`, `0.25` or `$5`.
 * @example usdArg('--max-cost', 1e6)('$2.50') // 2.5
 */
export function usdArg(name: string, max: number) {
  return (value: string): number => {
    const amount = value.replace(/^\$/, '');
    const n = DECIMAL.test(amount) ? Number(amount) : NaN;
    if (!(n > 0 && n <= max))
      throw new InvalidArgumentError(
        `${name} must be an amount of US dollars above 0 and at most ${max}`,
      );
    return n;
  };
}

/** What `orNone` gives for `none`: a commander parser's null would read as an empty value. */
export const NONE: unique symbol = Symbol('none');

/**
 * `parse`, or `none` for NONE: a setting cleared. Its refusals say that `none` clears it.
 * @example orNone(intArg('--max-steps', 1))('none') // NONE
 */
export function orNone<T>(parse: (value: string) => T) {
  return (value: string): T | typeof NONE => {
    if (value === 'none') return NONE;
    try {
      return parse(value);
    } catch (err) {
      if (err instanceof InvalidArgumentError)
        throw new InvalidArgumentError(`${err.message}, or none to clear it`);
      throw err;
    }
  };
}

export function idArg(name: string) {
  return (value: string): string => {
    if (!ID_PATTERN.test(value)) throw new InvalidArgumentError(`${name} ${ID_HELP}`);
    return value;
  };
}

/**
 * A run id as `idArg` takes an id, but not `stats`: `GET /runs/stats` answers the stats, so
 * `runs show stats` would fail on a parameter of the stats it never asked for.
 */
export function runIdArg(name: string) {
  const id = idArg(name);
  return (value: string): string => {
    const checked = RunId.safeParse(id(value));
    if (!checked.success)
      throw new InvalidArgumentError(`${name}: ${checked.error.issues[0]?.message ?? ID_HELP}`);
    return checked.data;
  };
}

/**
 * Run ids given one after another (a variadic argument such as `[ids...]`), each as
 * `runIdArg` takes it.
 * @example runs.command('retry').argument('[ids...]', 'run ids', runIdsArg('[ids...]'))
 */
export function runIdsArg(name: string) {
  const one = runIdArg(name);
  return (value: string, previous: string[] | undefined): string[] => [
    ...(previous ?? []),
    one(value),
  ];
}

/** A comma list of ids (`support,triager`), each as `idArg` takes it. */
export function idListArg(name: string) {
  const one = idArg(name);
  return (value: string): string => {
    const items = value
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    if (items.length === 0)
      throw new InvalidArgumentError(`${name} must be one or more ids, comma-separated`);
    return items.map(one).join(',');
  };
}

function listArg(name: string, allowed: readonly string[]) {
  return (value: string): string => {
    const items = value
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const bad = items.find((s) => !allowed.includes(s));
    if (items.length === 0 || bad !== undefined)
      throw new InvalidArgumentError(`${name} must be one or more of ${allowed.join(', ')}`);
    return items.join(',');
  };
}

export const statusArg = listArg('--status', RUN_STATUSES);
export const triggerArg = listArg('--trigger', RUN_TRIGGERS);

export function oneOf<T extends string>(name: string, allowed: readonly T[]) {
  return (value: string): T => {
    if (!(allowed as readonly string[]).includes(value))
      throw new InvalidArgumentError(`${name} must be one of ${allowed.join(', ')}`);
    return value as T;
  };
}

/** `--json` for scripts. */
export function withJson(cmd: Command): Command {
  return cmd.option('--json', 'print JSON (for scripts) instead of text');
}
