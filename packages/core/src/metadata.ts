/**
 * What `GET /runs?metadata[key]=value` keeps, as a predicate: the dashboard checks a live run
 * against its filter with it, and the CLI and the SDK write the filter with `metadataQuery`.
 */

/** The longest key and value a `GET /runs` metadata filter takes. */
export const METADATA_KEY_MAX = 200;
export const METADATA_VALUE_MAX = 500;

/** A JSON number as a filter value may mean one (`42`, `-1.5`, `4.2e1`). */
const JSON_NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/;

/**
 * Whether a filter value may mean a number: JSON's way of writing one, and finite as a double
 * (`1e400` is no number a run holds).
 */
export function isJsonNumber(value: string): boolean {
  return JSON_NUMBER.test(value) && Number.isFinite(Number(value));
}

/**
 * Whether `GET /runs` can filter on this key and value: within its lengths, no NUL, not
 * `__proto__` (an object's parse drops it), the value not empty (an empty one is no filter).
 * @example filterableMetadata('env', 'prod') === true
 */
export function filterableMetadata(key: string, value: string): boolean {
  return (
    key.length > 0 &&
    key.length <= METADATA_KEY_MAX &&
    value.length > 0 &&
    value.length <= METADATA_VALUE_MAX &&
    key !== '__proto__' &&
    !key.includes('\u0000') &&
    !value.includes('\u0000')
  );
}

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
  if (typeof held !== 'number' || !isJsonNumber(value)) return false;
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
 * The `GET /runs` parameter of one metadata key.
 * @example metadataParam('env') // 'metadata[env]'
 */
export function metadataParam(key: string): string {
  return `metadata[${key}]`;
}

/**
 * A metadata filter as `GET /runs` takes it, `metadata[key]` parameters.
 * @example metadataQuery({ env: 'prod' }) // { 'metadata[env]': 'prod' }
 */
export function metadataQuery(
  filter: Readonly<Record<string, string>> | undefined,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(filter ?? {})) out[metadataParam(key)] = value;
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
