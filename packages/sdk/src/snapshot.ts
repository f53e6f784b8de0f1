/**
 * A JSON-safe copy of `value` as it is now: what the agent mutates later does not change what
 * was recorded, and nothing the agent hands us can make a request fail later. The plain
 * JSON round trip is the fast path; a value JSON refuses (a BigInt, a cycle, a throwing
 * `toJSON`) is copied with BigInts as strings and cycles as "[Circular]". Never throws.
 * @example snapshot({ n: 1n, f() {} }) // { n: '1' }
 */
export function snapshot(value: unknown): unknown {
  if (value === undefined || value === null) return value;
  if (typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  try {
    const text = JSON.stringify(value, keepErrors);
    return text === undefined ? undefined : (JSON.parse(text) as unknown);
  } catch {
    return safeCopy(value);
  }
}

/**
 * An Error inside a recorded value (`{ ok: false, error }`): JSON writes it as `{}`, its
 * message and stack being no own enumerable properties; it is kept as the API stores errors.
 * Looked up on the holder: `value` is what a `toJSON` made of it (an HTTP client's error
 * writes out its request, headers included).
 */
function keepErrors(this: unknown, key: string, value: unknown): unknown {
  const original = (this as Record<string, unknown>)[key];
  return original instanceof Error ? errorValue(original) : value;
}

/**
 * The fields by which code tells errors apart (`code: 'ECONNRESET'`, an API's `status: 429`,
 * its `request_id`), when they are plain values. Not every own field: an HTTP client's error
 * can carry the request's headers, API key included.
 */
const ERROR_FIELDS = [
  'code',
  'status',
  'statusCode',
  'errno',
  'syscall',
  'type',
  'param',
  'requestID',
  'request_id',
  'address',
  'port',
] as const;

/** The error's own `ERROR_FIELDS` that hold plain values, in that order. */
export function errorFields(err: Error): [string, string | number | boolean][] {
  const fields: [string, string | number | boolean][] = [];
  for (const key of ERROR_FIELDS) {
    if (!Object.hasOwn(err, key)) continue;
    const field: unknown = (err as unknown as Record<string, unknown>)[key];
    if (typeof field === 'string' || typeof field === 'number' || typeof field === 'boolean')
      fields.push([key, field]);
  }
  return fields;
}

/** An Error as a recorded value: its type, message, stack and `errorFields`, as thrown ones are. */
function errorValue(err: Error): Record<string, unknown> {
  const { name, message, stack } = err;
  // its own `type` field does not replace the type its name gives
  return {
    ...Object.fromEntries(errorFields(err)),
    type: name,
    message,
    ...(stack ? { stack } : {}),
  };
}

/** The fields of an event that hold the agent's own values, copied by `snapshotFields`. */
interface AgentValues {
  input?: unknown;
  output?: unknown;
  metadata?: unknown;
  tags?: unknown;
}

/**
 * `fields` (an event's, built just now) with the agent's own values replaced by snapshots.
 * Only those: the rest is ours (ids, times, statuses, errors from `toRunError`), and copying
 * whole events would cost several times more per step.
 */
export function snapshotFields<T extends AgentValues>(fields: T): T {
  if (fields.input !== undefined) fields.input = snapshot(fields.input);
  if (fields.output !== undefined) fields.output = snapshot(fields.output);
  if (fields.metadata !== undefined) fields.metadata = snapshot(fields.metadata);
  if (fields.tags !== undefined) fields.tags = snapshot(fields.tags);
  return fields;
}

/**
 * The slow path of `snapshot`, what `JSON.stringify` would keep: BigInt becomes its decimal
 * string, an object met again inside itself "[Circular]" (a shared, non-circular one is
 * copied), functions and symbols are left out, and a `toJSON` or getter that throws, or a
 * value nested too deep, becomes "[Unserializable]".
 */
function safeCopy(value: unknown, ancestors: object[] = []): unknown {
  switch (typeof value) {
    case 'bigint':
      return value.toString();
    case 'number':
      return Number.isFinite(value) ? value : null;
    case 'string':
    case 'boolean':
      return value;
    case 'object':
      break;
    default:
      return undefined; // functions, symbols, undefined
  }
  if (value === null) return null;
  if (ancestors.includes(value)) return '[Circular]';
  ancestors.push(value);
  try {
    if (value instanceof Error) return safeCopy(errorValue(value), ancestors);
    const toJSON = (value as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') return safeCopy(toJSON.call(value), ancestors);
    if (Array.isArray(value)) return value.map((v) => safeCopy(v, ancestors) ?? null);
    const copy: Record<string, unknown> = {};
    for (const key of Object.keys(value)) {
      const v = safeCopy((value as Record<string, unknown>)[key], ancestors);
      if (v !== undefined) copy[key] = v;
    }
    return copy;
  } catch {
    return '[Unserializable]';
  } finally {
    ancestors.pop();
  }
}
