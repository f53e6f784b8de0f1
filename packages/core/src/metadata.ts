/**
 * What `GET /runs?metadata[key]=value` keeps, as a predicate: the dashboard checks a live run
 * against its filter with it, and the CLI and the SDK write the filter with `metadataQuery`.
 */

/** A JSON number as a filter value may mean one (`42`, `-1.5`, `4.2e1`). */
const JSON_NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/;

/**
 * Whether `metadata` holds `key` with `value`, as the server reads it: a string equal to it,
 * a number equal to it read as a number (an integer exactly), or the boolean it names. An
 * object, an array or null never matches; only top-level keys are looked at.
 * @example metadataHolds({ pr: 42 }, 'pr', '42') === true
 */
export function metadataHolds(metadata: unknown, key: string, value: string): boolean {
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) return false;
  if (!Object.hasOwn(metadata, key)) return false;
  const held: unknown = (metadata as Record<string, unknown>)[key];
  if (typeof held === 'string') return held === value;
  if (typeof held === 'boolean') return String(held) === value;
  if (typeof held !== 'number' || !JSON_NUMBER.test(value)) return false;
  if (Number.isInteger(held) && /^-?\d+$/.test(value)) return BigInt(held) === BigInt(value);
  return Number(value) === held;
}

/** Whether `metadata` holds every key of `filter` with its value (`metadataHolds`). */
export function metadataMatches(
  metadata: unknown,
  filter: Readonly<Record<string, string>>,
): boolean {
  return Object.entries(filter).every(([key, value]) => metadataHolds(metadata, key, value));
}

/**
 * A metadata filter as `GET /runs` takes it, `metadata[key]` parameters.
 * @example metadataQuery({ env: 'prod' }) // { 'metadata[env]': 'prod' }
 */
export function metadataQuery(
  filter: Readonly<Record<string, string>> | undefined,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(filter ?? {})) out[`metadata[${key}]`] = value;
  return out;
}

/**
 * `key=value` as a user types a metadata filter (the CLI's `--metadata`, the dashboard's
 * field): the key ends at the first `=`, so a value may hold one. `undefined` without a
 * `=` or a key.
 * @example parseMetadataPair('env=prod') // ['env', 'prod']
 */
export function parseMetadataPair(text: string): [string, string] | undefined {
  const at = text.indexOf('=');
  if (at <= 0) return undefined;
  return [text.slice(0, at), text.slice(at + 1)];
}
